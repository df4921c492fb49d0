package moetune.engine.hf;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import moetune.engine.tensor.HostTensor;

/**
 * The tensor names of a Mixtral checkpoint and the shapes a config implies.
 *
 * <p>The canonical names are the hub layout's, in the order transformers lists parameters: {@code
 * model.embed_tokens.weight}; per layer N: {@code self_attn.q/k/v/o_proj.weight}, {@code
 * block_sparse_moe.gate.weight} (E, D), {@code block_sparse_moe.experts.e.w1.weight} (F, D) (gate
 * projection), {@code .w2.weight} (D, F) (down), {@code .w3.weight} (F, D) (up), {@code
 * input_layernorm.weight} (D), {@code post_attention_layernorm.weight} (D); {@code
 * model.norm.weight} (D); {@code lm_head.weight} (V, D) unless the embeddings are tied.
 *
 * <p>The transformers-v5 fused layout replaces a layer's router and experts with {@code
 * mlp.gate.weight} (E, D), {@code mlp.experts.gate_up_proj} (E, 2F, D) whose rows [0, F) are w1 and
 * [F, 2F) are w3, and {@code mlp.experts.down_proj} (E, D, F) = w2.
 */
public final class MixtralNames {
  private MixtralNames() {}

  public static final String EMBED = "model.embed_tokens.weight";
  public static final String NORM = "model.norm.weight";
  public static final String LM_HEAD = "lm_head.weight";

  /**
   * The attention projections in transformers' order: q_proj (H*hd, D), k_proj and v_proj (Hkv*hd,
   * D), o_proj (D, H*hd).
   */
  public static final List<String> ATTENTION_PROJECTIONS =
      List.of("q_proj", "k_proj", "v_proj", "o_proj");

  private static final Pattern HUB_EXPERT =
      Pattern.compile(
          "model\\.layers\\.(\\d+)\\.block_sparse_moe\\.experts\\.(\\d+)\\.(w[123])\\.weight");
  private static final Pattern HUB_ROUTER =
      Pattern.compile("model\\.layers\\.(\\d+)\\.block_sparse_moe\\.gate\\.weight");
  private static final Pattern HUB_ATTENTION =
      Pattern.compile("model\\.layers\\.(\\d+)\\.self_attn\\.([qkvo]_proj)\\.weight");

  /** The fused layout's expert module of a layer, which PEFT wraps once per adapted array. */
  public static final String EXPERTS = "mlp.experts";

  /** The (E, 2F, D) array as PEFT's target_parameters names it (relative to the layer). */
  public static final String GATE_UP_PARAMETER = EXPERTS + ".gate_up_proj";

  /** The (E, D, F) array as PEFT's target_parameters names it. */
  public static final String DOWN_PARAMETER = EXPERTS + ".down_proj";

  /** The fused router weight as PEFT's target_parameters names it. */
  public static final String ROUTER_PARAMETER = "mlp.gate.weight";

  /** What PEFT puts before every key of adapter_model.safetensors. */
  public static final String PEFT_PREFIX = "base_model.model.";

  public static String layer(int layer) {
    return "model.layers." + layer + ".";
  }

  /** The layer a {@code model.layers.N.} name belongs to, or -1 (embeddings, final norm, head). */
  public static int layerOf(String name) {
    String prefix = "model.layers.";
    if (!name.startsWith(prefix)) {
      return -1;
    }
    int end = name.indexOf('.', prefix.length());
    return Integer.parseInt(name.substring(prefix.length(), end));
  }

  /**
   * Whether the name is a router weight in either layout (hub {@code block_sparse_moe.gate}, fused
   * {@code mlp.gate}), or an adapter of one.
   */
  public static boolean isRouter(String name) {
    return name.contains(".block_sparse_moe.gate.") || name.contains(".mlp.gate.");
  }

  /** Whether the name belongs to an attention block. */
  public static boolean isAttention(String name) {
    return name.contains(".self_attn.");
  }

  /** Rotary inv_freq buffers, which old checkpoints carry and transformers ignores on load. */
  public static boolean isRotaryBuffer(String name) {
    return name.endsWith(".self_attn.rotary_emb.inv_freq");
  }

  /** A module's weight: {@code module + ".weight"}. */
  public static String weight(String module) {
    return module + ".weight";
  }

  /** An attention projection module (its weight is {@link #weight} of it); proj is q/k/v/o_proj. */
  public static String attention(int layer, String proj) {
    return layer(layer) + "self_attn." + proj;
  }

  /** The RMSNorm weight before attention (D). */
  public static String inputNorm(int layer) {
    return layer(layer) + "input_layernorm.weight";
  }

  /** The RMSNorm weight before the experts (D). */
  public static String postAttentionNorm(int layer) {
    return layer(layer) + "post_attention_layernorm.weight";
  }

  /** The router module of the fused layout; its weight is {@link #fusedRouter}. */
  public static String fusedRouterModule(int layer) {
    return layer(layer) + "mlp.gate";
  }

  /** A LoRA adapter tensor of a module: {@code which} is "A" or "B" ({@code .lora_A.weight}). */
  public static String lora(String module, String which) {
    return module + ".lora_" + which + ".weight";
  }

  /** A fused expert array's adapter (E, r, in) or (E, out, r): no {@code .weight}, as the array. */
  public static String fusedLora(String fusedArray, String which) {
    return fusedArray + ".lora_" + which;
  }

  /** Whether a tensor name is a LoRA adapter's, A or B (module or fused expert array). */
  public static boolean isLora(String name) {
    return name.contains(".lora_A") || name.contains(".lora_B");
  }

  /** Whether a LoRA adapter name is an A (in -> r); a B (r -> out) otherwise. */
  public static boolean isLoraA(String name) {
    return name.contains(".lora_A");
  }

  /** Whether a LoRA adapter name is a fused expert array's ({@link #fusedLora}), not a module's. */
  public static boolean isExpertLora(String name) {
    return name.contains("." + EXPERTS + ".");
  }

  /**
   * The key in PEFT's adapter_model.safetensors of a moetune adapter tensor ({@link #lora} or
   * {@link #fusedLora} name). A module's adapter keeps its name under {@link #PEFT_PREFIX}. The
   * expert arrays are PEFT target_parameters, each a wrapper around the one {@link #EXPERTS}
   * module: with both arrays adapted the first listed (gate_up_proj) is the inner wrapper and its
   * keys read {@code mlp.experts.base_layer.lora_A.weight}, the outer (down_proj) {@code
   * mlp.experts.lora_A.weight}; alone, either reads {@code mlp.experts.lora_A.weight}.
   *
   * @param downAdapted whether the layer's down_proj carries an adapter too
   */
  public static String peftKey(String loraName, boolean downAdapted) {
    if (!isExpertLora(loraName)) {
      return PEFT_PREFIX + loraName;
    }
    int l = layerOf(loraName);
    boolean inner = loraName.startsWith(fusedGateUp(l) + ".") && downAdapted;
    String which = isLoraA(loraName) ? "A" : "B";
    return PEFT_PREFIX + lora(layer(l) + EXPERTS + (inner ? ".base_layer" : ""), which);
  }

  /** The projection (q_proj, k_proj, v_proj or o_proj) of a hub attention weight name, or null. */
  public static String parseAttention(String name) {
    Matcher m = HUB_ATTENTION.matcher(name);
    return m.matches() ? m.group(2) : null;
  }

  /** The layer of a hub router name ({@code block_sparse_moe.gate.weight}), or -1. */
  public static int parseRouter(String name) {
    Matcher m = HUB_ROUTER.matcher(name);
    return m.matches() ? Integer.parseInt(m.group(1)) : -1;
  }

  /** Hub router weight (E, D). */
  public static String router(int layer) {
    return layer(layer) + "block_sparse_moe.gate.weight";
  }

  /** Hub expert weight; {@code w} is "w1" (F, D), "w2" (D, F) or "w3" (F, D). */
  public static String expert(int layer, int e, String w) {
    return layer(layer) + "block_sparse_moe.experts." + e + "." + w + ".weight";
  }

  /** Fused-layout router weight (E, D). */
  public static String fusedRouter(int layer) {
    return weight(fusedRouterModule(layer));
  }

  /** Fused-layout (E, 2F, D) = concat(w1, w3) along rows. */
  public static String fusedGateUp(int layer) {
    return layer(layer) + GATE_UP_PARAMETER;
  }

  /** Fused-layout (E, D, F) = w2. */
  public static String fusedDown(int layer) {
    return layer(layer) + DOWN_PARAMETER;
  }

  /** Every canonical (hub) name with its shape, in transformers' parameter order. */
  public static Map<String, long[]> hubShapes(MixtralConfig c) {
    Map<String, long[]> m = new LinkedHashMap<>();
    long v = c.vocabSize;
    long d = c.hiddenSize;
    long f = c.intermediateSize;
    long q = (long) c.numAttentionHeads * c.headDim();
    long kv = (long) c.numKeyValueHeads * c.headDim();
    m.put(EMBED, new long[] {v, d});
    for (int l = 0; l < c.numHiddenLayers; l++) {
      m.put(weight(attention(l, "q_proj")), new long[] {q, d});
      m.put(weight(attention(l, "k_proj")), new long[] {kv, d});
      m.put(weight(attention(l, "v_proj")), new long[] {kv, d});
      m.put(weight(attention(l, "o_proj")), new long[] {d, q});
      m.put(router(l), new long[] {c.numLocalExperts, d});
      for (int e = 0; e < c.numLocalExperts; e++) {
        m.put(expert(l, e, "w1"), new long[] {f, d});
        m.put(expert(l, e, "w2"), new long[] {d, f});
        m.put(expert(l, e, "w3"), new long[] {f, d});
      }
      m.put(inputNorm(l), new long[] {d});
      m.put(postAttentionNorm(l), new long[] {d});
    }
    m.put(NORM, new long[] {d});
    if (!c.tieWordEmbeddings) {
      m.put(LM_HEAD, new long[] {v, d});
    }
    return m;
  }

  /** The shapes of one layer's fused-layout tensors. */
  public static Map<String, long[]> fusedShapes(MixtralConfig c, int l) {
    Map<String, long[]> m = new LinkedHashMap<>();
    long e = c.numLocalExperts;
    long d = c.hiddenSize;
    long f = c.intermediateSize;
    m.put(fusedRouter(l), new long[] {e, d});
    m.put(fusedGateUp(l), new long[] {e, 2 * f, d});
    m.put(fusedDown(l), new long[] {e, d, f});
    return m;
  }

  /** A parsed hub expert name, or null if {@code name} is not one. */
  public static ExpertWeight parseExpert(String name) {
    Matcher m = HUB_EXPERT.matcher(name);
    if (!m.matches()) {
      return null;
    }
    return new ExpertWeight(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)), m.group(3));
  }

  /**
   * One hub expert tensor cut out of a layer's fused arrays (the inverse of {@link
   * moetune.engine.io.MixtralCheckpoint#expertsGateUp} / {@link
   * moetune.engine.io.MixtralCheckpoint#expertsDown}): w1 is rows [0, F) of expert e's (2F, D)
   * block of {@code gateUp}, w3 rows [F, 2F), w2 expert e's (D, F) block of {@code down}. For
   * saving a model whose experts are held fused.
   *
   * @param gateUp (E, 2F, D)
   * @param down (E, D, F)
   * @return (F, D) for w1 and w3, (D, F) for w2
   */
  public static HostTensor expertFromFused(
      MixtralConfig c, ExpertWeight w, float[] gateUp, float[] down) {
    int f = c.intermediateSize;
    int d = c.hiddenSize;
    int fd = f * d;
    long efd = (long) c.numLocalExperts * fd;
    if (gateUp.length != 2 * efd || down.length != efd) {
      throw new IllegalArgumentException(
          "expertFromFused: gateUp has "
              + gateUp.length
              + " and down "
              + down.length
              + " values; (E, 2F, D) and (E, D, F) need "
              + 2 * efd
              + " and "
              + efd);
    }
    int e = w.expert();
    return switch (w.w()) {
      case "w1" ->
          HostTensor.ofFloats(Arrays.copyOfRange(gateUp, 2 * e * fd, (2 * e + 1) * fd), f, d);
      case "w3" ->
          HostTensor.ofFloats(Arrays.copyOfRange(gateUp, (2 * e + 1) * fd, (2 * e + 2) * fd), f, d);
      default -> HostTensor.ofFloats(Arrays.copyOfRange(down, e * fd, (e + 1) * fd), d, f);
    };
  }

  /** Layer, expert and which of w1/w2/w3 a hub expert tensor is. */
  public record ExpertWeight(int layer, int expert, String w) {}
}
