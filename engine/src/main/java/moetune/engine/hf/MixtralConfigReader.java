package moetune.engine.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads config.json fields into a {@link MixtralConfig.Builder} with type checks, and validates a
 * builder. Each problem is one {@link CheckpointException} naming the file and the field.
 */
final class MixtralConfigReader {
  private MixtralConfigReader() {}

  static MixtralConfig.Builder read(ObjectNode o, Path file, Set<String> known) {
    MixtralConfig.Builder b = MixtralConfig.builder();
    JsonNode mt = o.get("model_type");
    if (mt != null && !(mt.isTextual() && mt.textValue().equals("mixtral"))) {
      throw err(
          file, "model_type", "is " + mt + "; moetune loads only Mixtral (\"mixtral\") models");
    }
    if (o.has("quantization_config") && !o.get("quantization_config").isNull()) {
      throw err(
          file,
          "quantization_config",
          "quantized checkpoints are not supported; use an unquantized (float) checkpoint");
    }
    b.vocabSize = posInt(o, "vocab_size", b.vocabSize, file);
    b.hiddenSize = posInt(o, "hidden_size", b.hiddenSize, file);
    b.intermediateSize = posInt(o, "intermediate_size", b.intermediateSize, file);
    b.numHiddenLayers = posInt(o, "num_hidden_layers", b.numHiddenLayers, file);
    b.numAttentionHeads = posInt(o, "num_attention_heads", b.numAttentionHeads, file);
    b.numKeyValueHeads = nullableInt(o, "num_key_value_heads", b.numKeyValueHeads, file);
    b.headDim = nullableInt(o, "head_dim", null, file);
    b.hiddenAct = string(o, "hidden_act", b.hiddenAct, file);
    b.maxPositionEmbeddings = posInt(o, "max_position_embeddings", b.maxPositionEmbeddings, file);
    b.initializerRange = number(o, "initializer_range", b.initializerRange, file);
    b.rmsNormEps = number(o, "rms_norm_eps", b.rmsNormEps, file);
    b.useCache = bool(o, "use_cache", b.useCache, file);
    b.padTokenId = nullableInt(o, "pad_token_id", b.padTokenId, file);
    b.bosTokenId = nullableInt(o, "bos_token_id", b.bosTokenId, file);
    readEos(o, b, file);
    b.tieWordEmbeddings = bool(o, "tie_word_embeddings", b.tieWordEmbeddings, file);
    readRope(o, b, file);
    b.slidingWindow = nullableInt(o, "sliding_window", b.slidingWindow, file);
    b.attentionDropout = number(o, "attention_dropout", b.attentionDropout, file);
    b.numExpertsPerTok = posInt(o, "num_experts_per_tok", b.numExpertsPerTok, file);
    // transformers maps the alias num_experts onto num_local_experts (attribute_map)
    String expertsKey =
        o.has("num_local_experts") || !o.has("num_experts") ? "num_local_experts" : "num_experts";
    b.numLocalExperts = posInt(o, expertsKey, b.numLocalExperts, file);
    b.outputRouterLogits = bool(o, "output_router_logits", b.outputRouterLogits, file);
    b.routerAuxLossCoef = number(o, "router_aux_loss_coef", b.routerAuxLossCoef, file);
    b.routerJitterNoise = number(o, "router_jitter_noise", b.routerJitterNoise, file);
    String dtypeKey = o.has("dtype") ? "dtype" : "torch_dtype";
    b.dtype = nullableString(o, dtypeKey, null, file);
    b.architectures = stringList(o, "architectures", b.architectures, file);
    b.transformersVersion = nullableString(o, "transformers_version", null, file);
    for (Map.Entry<String, JsonNode> f : o.properties()) {
      if (!known.contains(f.getKey())) {
        b.extra.set(f.getKey(), f.getValue().deepCopy());
      }
    }
    return b;
  }

  /** rope_parameters (v5) and the older rope_theta / rope_scaling; only "default" rope. */
  private static void readRope(ObjectNode o, MixtralConfig.Builder b, Path file) {
    JsonNode scaling = o.get("rope_scaling");
    if (scaling != null && !scaling.isNull()) {
      JsonNode type =
          scaling.isObject() ? firstNonNull(scaling.get("rope_type"), scaling.get("type")) : null;
      boolean isDefault = type != null && type.isTextual() && type.textValue().equals("default");
      if (!isDefault || scaling.size() > (scaling.has("rope_theta") ? 2 : 1)) {
        throw err(
            file,
            "rope_scaling",
            "is "
                + scaling
                + "; moetune implements only the default rotary embedding, without scaling; set"
                + " it to null");
      }
    }
    Double topTheta = o.has("rope_theta") ? number(o, "rope_theta", 0, file) : null;
    JsonNode rp = o.get("rope_parameters");
    Double rpTheta = null;
    if (rp != null && !rp.isNull()) {
      if (!rp.isObject()) {
        throw err(file, "rope_parameters", "must be an object {rope_theta, rope_type}, got " + rp);
      }
      for (Iterator<String> it = rp.fieldNames(); it.hasNext(); ) {
        String k = it.next();
        if (!k.equals("rope_theta") && !k.equals("rope_type")) {
          throw err(
              file,
              "rope_parameters." + k,
              "is set; moetune implements only the default rotary embedding (rope_theta,"
                  + " rope_type \"default\"), not per-layer-type or scaled rope");
        }
      }
      JsonNode type = rp.get("rope_type");
      if (type != null && !(type.isTextual() && type.textValue().equals("default"))) {
        throw err(
            file,
            "rope_parameters.rope_type",
            "is " + type + "; moetune implements only \"default\" rotary embeddings");
      }
      if (rp.has("rope_theta")) {
        rpTheta = number((ObjectNode) rp, "rope_theta", 0, file);
      }
    }
    if (topTheta != null && rpTheta != null && !topTheta.equals(rpTheta)) {
      throw err(
          file,
          "rope_theta",
          "is "
              + topTheta
              + " but rope_parameters.rope_theta is "
              + rpTheta
              + "; keep one of them");
    }
    b.ropeTheta = rpTheta != null ? rpTheta : topTheta != null ? topTheta : b.ropeTheta;
  }

  private static JsonNode firstNonNull(JsonNode a, JsonNode b) {
    return a != null && !a.isNull() ? a : b;
  }

  private static void readEos(ObjectNode o, MixtralConfig.Builder b, Path file) {
    JsonNode v = o.get("eos_token_id");
    if (v == null) {
      return;
    }
    if (v.isNull()) {
      b.eosTokenIds = List.of();
      b.eosIsList = false;
    } else if (v.isArray()) {
      List<Integer> ids = new ArrayList<>();
      for (JsonNode x : v) {
        if (!x.isIntegralNumber() || !x.canConvertToInt()) {
          throw err(file, "eos_token_id", "must be an integer or a list of integers, got " + v);
        }
        ids.add(x.intValue());
      }
      b.eosTokenIds = ids;
      b.eosIsList = true;
    } else if (v.isIntegralNumber() && v.canConvertToInt()) {
      b.eosTokenIds = List.of(v.intValue());
      b.eosIsList = false;
    } else {
      throw err(file, "eos_token_id", "must be an integer or a list of integers, got " + v);
    }
  }

  /** Checks a builder's values together; used for parsed and hand-built configs alike. */
  static void validate(MixtralConfig.Builder b, Path file) {
    positive(file, "vocab_size", b.vocabSize);
    positive(file, "hidden_size", b.hiddenSize);
    positive(file, "intermediate_size", b.intermediateSize);
    positive(file, "num_hidden_layers", b.numHiddenLayers);
    positive(file, "num_attention_heads", b.numAttentionHeads);
    positive(file, "max_position_embeddings", b.maxPositionEmbeddings);
    positive(file, "num_local_experts", b.numLocalExperts);
    positive(file, "num_experts_per_tok", b.numExpertsPerTok);
    int kv = b.numKeyValueHeads == null ? b.numAttentionHeads : b.numKeyValueHeads;
    positive(file, "num_key_value_heads", kv);
    if (b.numAttentionHeads % kv != 0) {
      throw err(
          file,
          "num_key_value_heads",
          "is "
              + kv
              + ", which does not divide num_attention_heads "
              + b.numAttentionHeads
              + "; grouped-query attention needs heads = groups x kv heads");
    }
    int headDim = b.headDim != null ? b.headDim : b.hiddenSize / b.numAttentionHeads;
    String hdField = b.headDim != null ? "head_dim" : "hidden_size";
    if (headDim <= 0 || headDim % 2 != 0) {
      throw err(
          file,
          hdField,
          "gives head dimension "
              + headDim
              + "; rotary embeddings need a positive even head dimension");
    }
    if (b.numExpertsPerTok > b.numLocalExperts) {
      throw err(
          file,
          "num_experts_per_tok",
          "is " + b.numExpertsPerTok + ", more than num_local_experts " + b.numLocalExperts);
    }
    if (!"silu".equals(b.hiddenAct)) {
      throw err(
          file,
          "hidden_act",
          "is \""
              + b.hiddenAct
              + "\"; Mixtral experts use \"silu\" (SwiGLU), the only one moetune implements");
    }
    if (!(b.rmsNormEps > 0) || Double.isInfinite(b.rmsNormEps)) {
      throw err(file, "rms_norm_eps", "is " + b.rmsNormEps + "; it must be a positive number");
    }
    if (!(b.ropeTheta > 0) || Double.isInfinite(b.ropeTheta)) {
      throw err(file, "rope_theta", "is " + b.ropeTheta + "; it must be a positive number");
    }
    if (b.slidingWindow != null && b.slidingWindow <= 0) {
      throw err(
          file, "sliding_window", "is " + b.slidingWindow + "; use a positive window or null");
    }
    if (b.attentionDropout != 0.0) {
      throw err(
          file,
          "attention_dropout",
          "is "
              + b.attentionDropout
              + "; moetune does not implement attention dropout, set it to 0.0");
    }
    if (!(b.routerJitterNoise >= 0 && b.routerJitterNoise < 1)) {
      throw err(
          file,
          "router_jitter_noise",
          "is "
              + b.routerJitterNoise
              + "; it must be in [0, 1) (the noise multiplies by 1 +- this)");
    }
    if (!(b.routerAuxLossCoef >= 0) || Double.isInfinite(b.routerAuxLossCoef)) {
      throw err(file, "router_aux_loss_coef", "is " + b.routerAuxLossCoef + "; it must be >= 0");
    }
    for (int id : b.eosTokenIds) {
      tokenId(file, "eos_token_id", id, b.vocabSize);
    }
    if (b.bosTokenId != null) {
      tokenId(file, "bos_token_id", b.bosTokenId, b.vocabSize);
    }
    if (b.padTokenId != null) {
      tokenId(file, "pad_token_id", b.padTokenId, b.vocabSize);
    }
  }

  private static void tokenId(Path file, String field, int id, int vocab) {
    if (id < 0 || id >= vocab) {
      throw err(file, field, "is " + id + ", outside the vocabulary [0, " + vocab + ")");
    }
  }

  private static void positive(Path file, String field, int v) {
    if (v <= 0) {
      throw err(file, field, "is " + v + "; it must be a positive integer");
    }
  }

  private static CheckpointException err(Path file, String field, String problem) {
    return new CheckpointException(file, CheckpointException.field(field), problem);
  }

  private static int posInt(ObjectNode o, String key, int dflt, Path file) {
    Integer v = nullableInt(o, key, dflt, file);
    if (v == null) {
      throw err(file, key, "is null; it must be a positive integer");
    }
    return v;
  }

  private static Integer nullableInt(ObjectNode o, String key, Integer dflt, Path file) {
    JsonNode v = o.get(key);
    if (v == null) {
      return dflt;
    }
    if (v.isNull()) {
      return null;
    }
    if (!v.isIntegralNumber() || !v.canConvertToInt()) {
      throw err(file, key, "must be an integer, got " + v);
    }
    return v.intValue();
  }

  private static double number(ObjectNode o, String key, double dflt, Path file) {
    JsonNode v = o.get(key);
    if (v == null) {
      return dflt;
    }
    if (!v.isNumber()) {
      throw err(file, key, "must be a number, got " + v);
    }
    return v.doubleValue();
  }

  private static boolean bool(ObjectNode o, String key, boolean dflt, Path file) {
    JsonNode v = o.get(key);
    if (v == null) {
      return dflt;
    }
    if (!v.isBoolean()) {
      throw err(file, key, "must be true or false, got " + v);
    }
    return v.booleanValue();
  }

  private static String string(ObjectNode o, String key, String dflt, Path file) {
    String s = nullableString(o, key, dflt, file);
    if (s == null) {
      throw err(file, key, "is null; it must be a string");
    }
    return s;
  }

  private static String nullableString(ObjectNode o, String key, String dflt, Path file) {
    JsonNode v = o.get(key);
    if (v == null) {
      return dflt;
    }
    if (v.isNull()) {
      return null;
    }
    if (!v.isTextual()) {
      throw err(file, key, "must be a string, got " + v);
    }
    return v.textValue();
  }

  private static List<String> stringList(ObjectNode o, String key, List<String> dflt, Path file) {
    JsonNode v = o.get(key);
    if (v == null || v.isNull()) {
      return v == null ? dflt : null;
    }
    if (!v.isArray()) {
      throw err(file, key, "must be a list of strings, got " + v);
    }
    List<String> out = new ArrayList<>();
    for (JsonNode x : v) {
      if (!x.isTextual()) {
        throw err(file, key, "must be a list of strings, got " + v);
      }
      out.add(x.textValue());
    }
    return out;
  }
}
