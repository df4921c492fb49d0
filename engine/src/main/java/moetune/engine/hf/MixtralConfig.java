package moetune.engine.hf;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * A HuggingFace Mixtral {@code config.json}: every field transformers 5.x's {@code MixtralConfig}
 * defines, with its defaults, read from either the v5 form ({@code rope_parameters: {rope_theta,
 * rope_type}}) or the older one ({@code rope_theta} at the top level, {@code rope_scaling}).
 *
 * <p>Values moetune does not implement are refused by name (one line naming the file and the
 * field): another {@code model_type}, a rope type other than {@code default} or any rope scaling,
 * {@code hidden_act} other than {@code silu}, nonzero {@code attention_dropout}, {@code
 * router_jitter_noise} outside [0, 1) (the model applies it in training), {@code
 * quantization_config}, {@code num_experts_per_tok > num_local_experts}, heads not divisible by kv
 * heads, an odd head dimension. Fields transformers does not define for Mixtral are kept and
 * written back unchanged.
 *
 * <p>{@link #toJson()} writes the form transformers 5.17 writes: keys sorted, two-space indent,
 * {@code rope_parameters} instead of a top-level {@code rope_theta}, {@code dtype} instead of
 * {@code torch_dtype}. A config.json transformers 5.17 wrote comes back byte for byte.
 */
public final class MixtralConfig {
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

  /** Keys this class reads; everything else round-trips through {@link #extra()}. */
  private static final Set<String> KNOWN =
      Set.of(
          "model_type",
          "vocab_size",
          "hidden_size",
          "intermediate_size",
          "num_hidden_layers",
          "num_attention_heads",
          "num_key_value_heads",
          "head_dim",
          "hidden_act",
          "max_position_embeddings",
          "initializer_range",
          "rms_norm_eps",
          "use_cache",
          "pad_token_id",
          "bos_token_id",
          "eos_token_id",
          "tie_word_embeddings",
          "rope_theta",
          "rope_parameters",
          "rope_scaling",
          "sliding_window",
          "attention_dropout",
          "num_experts_per_tok",
          "num_local_experts",
          "num_experts",
          "output_router_logits",
          "router_aux_loss_coef",
          "router_jitter_noise",
          "dtype",
          "torch_dtype",
          "architectures",
          "transformers_version");

  public final int vocabSize; // V
  public final int hiddenSize; // D
  public final int intermediateSize; // F
  public final int numHiddenLayers; // L
  public final int numAttentionHeads; // H
  public final int numKeyValueHeads; // Hkv

  /** head_dim as written (null: hidden_size / num_attention_heads); see {@link #headDim()}. */
  public final Integer headDimField;

  public final String hiddenAct;
  public final int maxPositionEmbeddings;
  public final double initializerRange;
  public final double rmsNormEps;
  public final boolean useCache;
  public final Integer padTokenId;
  public final Integer bosTokenId;

  /** eos_token_id: empty for null, one entry for an int, several for a list. */
  public final List<Integer> eosTokenIds;

  /** True when eos_token_id was written as a list (kept so that it is written back the same). */
  public final boolean eosIsList;

  public final boolean tieWordEmbeddings;
  public final double ropeTheta;
  public final Integer slidingWindow; // null: full causal attention
  public final double attentionDropout;
  public final int numExpertsPerTok; // K
  public final int numLocalExperts; // E
  public final boolean outputRouterLogits;
  public final double routerAuxLossCoef;
  public final double routerJitterNoise;

  /** dtype (or the older torch_dtype): "float32", "bfloat16", ...; null when absent. */
  public final String dtype;

  /** architectures; null when written as null. */
  public final List<String> architectures;

  public final String transformersVersion;
  private final ObjectNode extra; // unknown fields, written back unchanged

  private MixtralConfig(Builder b) {
    vocabSize = b.vocabSize;
    hiddenSize = b.hiddenSize;
    intermediateSize = b.intermediateSize;
    numHiddenLayers = b.numHiddenLayers;
    numAttentionHeads = b.numAttentionHeads;
    numKeyValueHeads = b.numKeyValueHeads == null ? b.numAttentionHeads : b.numKeyValueHeads;
    headDimField = b.headDim;
    hiddenAct = b.hiddenAct;
    maxPositionEmbeddings = b.maxPositionEmbeddings;
    initializerRange = b.initializerRange;
    rmsNormEps = b.rmsNormEps;
    useCache = b.useCache;
    padTokenId = b.padTokenId;
    bosTokenId = b.bosTokenId;
    eosTokenIds = List.copyOf(b.eosTokenIds);
    eosIsList = b.eosIsList;
    tieWordEmbeddings = b.tieWordEmbeddings;
    ropeTheta = b.ropeTheta;
    slidingWindow = b.slidingWindow;
    attentionDropout = b.attentionDropout;
    numExpertsPerTok = b.numExpertsPerTok;
    numLocalExperts = b.numLocalExperts;
    outputRouterLogits = b.outputRouterLogits;
    routerAuxLossCoef = b.routerAuxLossCoef;
    routerJitterNoise = b.routerJitterNoise;
    dtype = b.dtype;
    architectures = b.architectures == null ? null : List.copyOf(b.architectures);
    transformersVersion = b.transformersVersion;
    extra = b.extra.deepCopy();
  }

  /** The attention head dimension: head_dim, or hidden_size / num_attention_heads when null. */
  public int headDim() {
    return headDimField != null ? headDimField : hiddenSize / numAttentionHeads;
  }

  /** Unknown fields kept for round-tripping (a copy). */
  public ObjectNode extra() {
    return extra.deepCopy();
  }

  /** A builder holding this config's values (to derive a changed config). */
  public Builder toBuilder() {
    return new Builder(this);
  }

  /** A builder with transformers' MixtralConfig defaults (Mixtral-8x7B). */
  public static Builder builder() {
    return new Builder();
  }

  /** Reads and validates {@code dir/config.json} or a config file. */
  public static MixtralConfig load(Path file) {
    if (Files.isDirectory(file)) {
      file = file.resolve("config.json");
    }
    String text;
    try {
      text = Files.readString(file, StandardCharsets.UTF_8);
    } catch (NoSuchFileException e) {
      throw new CheckpointException(
          file, null, "file not found; a model directory needs config.json", e);
    } catch (IOException e) {
      throw new CheckpointException(file, null, "cannot read: " + e, e);
    }
    return parse(text, file);
  }

  /** Parses and validates config.json text; {@code file} is only used in error messages. */
  public static MixtralConfig parse(String json, Path file) {
    JsonNode root;
    try {
      root = JSON.readTree(json);
    } catch (JsonProcessingException e) {
      throw new CheckpointException(file, null, "not valid JSON: " + e.getOriginalMessage(), e);
    }
    if (root == null || !root.isObject()) {
      throw new CheckpointException(file, null, "config.json must hold a JSON object");
    }
    return MixtralConfigReader.read((ObjectNode) root, file, KNOWN).build(file);
  }

  /** config.json text as transformers 5.17 writes it (with a trailing newline). */
  public String toJson() {
    ObjectNode o = extra.deepCopy();
    JsonNodeFactory f = JsonNodeFactory.instance;
    if (architectures == null) {
      o.putNull("architectures");
    } else {
      ArrayNode arch = o.putArray("architectures");
      architectures.forEach(arch::add);
    }
    o.put("attention_dropout", attentionDropout);
    putNullable(o, "bos_token_id", bosTokenId);
    if (dtype != null) {
      o.put("dtype", dtype);
    }
    if (eosIsList) {
      ArrayNode eos = o.putArray("eos_token_id");
      eosTokenIds.forEach(eos::add);
    } else {
      putNullable(o, "eos_token_id", eosTokenIds.isEmpty() ? null : eosTokenIds.get(0));
    }
    putNullable(o, "head_dim", headDimField);
    o.put("hidden_act", hiddenAct);
    o.put("hidden_size", hiddenSize);
    o.put("initializer_range", initializerRange);
    o.put("intermediate_size", intermediateSize);
    o.put("max_position_embeddings", maxPositionEmbeddings);
    o.put("model_type", "mixtral");
    o.put("num_attention_heads", numAttentionHeads);
    o.put("num_experts_per_tok", numExpertsPerTok);
    o.put("num_hidden_layers", numHiddenLayers);
    o.put("num_key_value_heads", numKeyValueHeads);
    o.put("num_local_experts", numLocalExperts);
    o.put("output_router_logits", outputRouterLogits);
    putNullable(o, "pad_token_id", padTokenId);
    o.put("rms_norm_eps", rmsNormEps);
    ObjectNode rope = o.putObject("rope_parameters");
    rope.put("rope_theta", ropeTheta);
    rope.put("rope_type", "default");
    o.put("router_aux_loss_coef", routerAuxLossCoef);
    o.put("router_jitter_noise", routerJitterNoise);
    putNullable(o, "sliding_window", slidingWindow);
    o.put("tie_word_embeddings", tieWordEmbeddings);
    o.set(
        "transformers_version",
        transformersVersion == null ? f.nullNode() : f.textNode(transformersVersion));
    o.put("use_cache", useCache);
    o.put("vocab_size", vocabSize);
    return PyJson.dumps(o) + "\n";
  }

  private static void putNullable(ObjectNode o, String key, Integer v) {
    if (v == null) {
      o.putNull(key);
    } else {
      o.put(key, v);
    }
  }

  @Override
  public String toString() {
    return "MixtralConfig(V="
        + vocabSize
        + ", D="
        + hiddenSize
        + ", F="
        + intermediateSize
        + ", L="
        + numHiddenLayers
        + ", H="
        + numAttentionHeads
        + ", Hkv="
        + numKeyValueHeads
        + ", hd="
        + headDim()
        + ", E="
        + numLocalExperts
        + ", K="
        + numExpertsPerTok
        + ")";
  }

  /**
   * Mutable values with transformers' defaults; {@link #build} validates. Public fields keep it
   * short: {@code MixtralConfig.builder().set(b -> b.hiddenSize = 32)}.
   */
  public static final class Builder {
    public int vocabSize = 32000;
    public int hiddenSize = 4096;
    public int intermediateSize = 14336;
    public int numHiddenLayers = 32;
    public int numAttentionHeads = 32;
    public Integer numKeyValueHeads = 8; // null: equal to numAttentionHeads
    public Integer headDim = null;
    public String hiddenAct = "silu";
    public int maxPositionEmbeddings = 4096 * 32;
    public double initializerRange = 0.02;
    public double rmsNormEps = 1e-5;
    public boolean useCache = true;
    public Integer padTokenId = null;
    public Integer bosTokenId = 1;
    public List<Integer> eosTokenIds = List.of(2);
    public boolean eosIsList = false;
    public boolean tieWordEmbeddings = false;
    public double ropeTheta = 1e6;
    public Integer slidingWindow = null;
    public double attentionDropout = 0.0;
    public int numExpertsPerTok = 2;
    public int numLocalExperts = 8;
    public boolean outputRouterLogits = false;
    public double routerAuxLossCoef = 0.001;
    public double routerJitterNoise = 0.0;
    public String dtype = null;
    public List<String> architectures = List.of("MixtralForCausalLM");
    public String transformersVersion = "5.17.0";
    public ObjectNode extra = JsonNodeFactory.instance.objectNode();

    Builder() {}

    private Builder(MixtralConfig c) {
      vocabSize = c.vocabSize;
      hiddenSize = c.hiddenSize;
      intermediateSize = c.intermediateSize;
      numHiddenLayers = c.numHiddenLayers;
      numAttentionHeads = c.numAttentionHeads;
      numKeyValueHeads = c.numKeyValueHeads;
      headDim = c.headDimField;
      hiddenAct = c.hiddenAct;
      maxPositionEmbeddings = c.maxPositionEmbeddings;
      initializerRange = c.initializerRange;
      rmsNormEps = c.rmsNormEps;
      useCache = c.useCache;
      padTokenId = c.padTokenId;
      bosTokenId = c.bosTokenId;
      eosTokenIds = c.eosTokenIds;
      eosIsList = c.eosIsList;
      tieWordEmbeddings = c.tieWordEmbeddings;
      ropeTheta = c.ropeTheta;
      slidingWindow = c.slidingWindow;
      attentionDropout = c.attentionDropout;
      numExpertsPerTok = c.numExpertsPerTok;
      numLocalExperts = c.numLocalExperts;
      outputRouterLogits = c.outputRouterLogits;
      routerAuxLossCoef = c.routerAuxLossCoef;
      routerJitterNoise = c.routerJitterNoise;
      dtype = c.dtype;
      architectures = c.architectures;
      transformersVersion = c.transformersVersion;
      extra = c.extra.deepCopy();
    }

    /** Applies a change and returns this builder. */
    public Builder set(java.util.function.Consumer<Builder> change) {
      change.accept(this);
      return this;
    }

    /** Validates and builds; problems name the field (and {@code file}, which may be null). */
    public MixtralConfig build(Path file) {
      MixtralConfigReader.validate(this, file);
      return new MixtralConfig(this);
    }

    public MixtralConfig build() {
      return build(null);
    }
  }
}
