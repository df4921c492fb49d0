package moetune.engine.model;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;

/**
 * LoRA (Hu et al. 2021) with PEFT's semantics: for a target weight W (out, in), the layer computes
 * {@code y = x W^T + scaling * dropout(x) A^T B^T} with A (r, in) initialised Kaiming-uniform as
 * {@code nn.Linear} does (bound 1/sqrt(in)), B (out, r) zero, and scaling = alpha / r (rsLoRA:
 * alpha / sqrt(r)). Every base weight is frozen while adapters are trained, as with PEFT's
 * defaults.
 *
 * <p>Targets (PEFT's names, transformers 5 layout):
 *
 * <ul>
 *   <li>{@code q_proj, k_proj, v_proj, o_proj}: PEFT {@code target_modules}, plain {@code
 *       lora.Linear}.
 *   <li>{@code gate}: the router weight (E, D); transformers 5's {@code MixtralTopKRouter} holds it
 *       as an {@code nn.Parameter}, so PEFT targets it with {@code target_parameters:
 *       mlp.gate.weight} (a {@code ParamWrapper} with one expert).
 *   <li>{@code w1, w3}: transformers 5 fuses them into {@code mlp.experts.gate_up_proj} (E, 2F, D),
 *       one PEFT {@code ParamWrapper} with per-expert A (r, D) and B (2F, r); w1 and w3 therefore
 *       come together. {@code w2}: {@code mlp.experts.down_proj} (E, D, F), A (r, F), B (D, r).
 * </ul>
 *
 * PEFT's {@code ParamWrapper} refuses lora_dropout != 0 (its LoRA is folded into the weight), so a
 * dropout is accepted only when every target is an attention projection.
 *
 * @param r rank, >= 1
 * @param alpha lora_alpha
 * @param dropout probability of zeroing an element of the A branch's input in training, in [0, 1)
 * @param targets a subset of {@link #ALL_TARGETS}
 * @param rslora scaling alpha / sqrt(r) instead of alpha / r
 * @param seed seeds A's initialisation and the dropout masks
 */
public record LoraConfig(
    int r, double alpha, double dropout, Set<String> targets, boolean rslora, long seed) {

  /** Every target name, in the order adapters are laid out. */
  public static final List<String> ALL_TARGETS =
      List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate", "w1", "w2", "w3");

  /** Attention projections only: PEFT's {@code target_modules}. */
  public static final Set<String> ATTENTION = Set.of("q_proj", "k_proj", "v_proj", "o_proj");

  public LoraConfig {
    if (r < 1) {
      throw new IllegalArgumentException("lora r must be >= 1, got " + r);
    }
    if (!(alpha > 0) || Double.isInfinite(alpha)) {
      throw new IllegalArgumentException("lora alpha must be finite and > 0, got " + alpha);
    }
    if (!(dropout >= 0 && dropout < 1)) {
      throw new IllegalArgumentException("lora dropout must be in [0, 1), got " + dropout);
    }
    if (targets.isEmpty()) {
      throw new IllegalArgumentException(
          "lora targets are empty; name some of " + String.join(",", ALL_TARGETS));
    }
    Set<String> ordered = new LinkedHashSet<>();
    for (String t : ALL_TARGETS) {
      if (targets.contains(t)) {
        ordered.add(t);
      }
    }
    for (String t : targets) {
      if (!ordered.contains(t)) {
        throw new IllegalArgumentException(
            "lora target '" + t + "' is not one of " + String.join(",", ALL_TARGETS));
      }
    }
    if (ordered.contains("w1") != ordered.contains("w3")) {
      throw new IllegalArgumentException(
          "lora targets: w1 and w3 share transformers 5's fused mlp.experts.gate_up_proj, which"
              + " PEFT adapts as one tensor; name both or neither");
    }
    if (dropout > 0 && !ATTENTION.containsAll(ordered)) {
      throw new IllegalArgumentException(
          "lora dropout "
              + dropout
              + " with targets "
              + String.join(",", ordered)
              + ": PEFT's target_parameters adapters (gate, w1, w2, w3) do not support dropout;"
              + " set the dropout to 0 or target only q_proj,k_proj,v_proj,o_proj");
    }
    targets = java.util.Collections.unmodifiableSet(ordered);
  }

  /** These settings with another initialisation seed. */
  public LoraConfig withSeed(long newSeed) {
    return new LoraConfig(r, alpha, dropout, targets, rslora, newSeed);
  }

  /** The number of adapter parameters these settings add to a model of this config. */
  public long parameterCount(MixtralConfig c) {
    long d = c.hiddenSize;
    long q = (long) c.numAttentionHeads * c.headDim();
    long kv = (long) c.numKeyValueHeads * c.headDim();
    long e = c.numLocalExperts;
    long f = c.intermediateSize;
    long perLayer = 0;
    perLayer += targets("q_proj") ? r * (d + q) : 0;
    perLayer += targets("k_proj") ? r * (d + kv) : 0;
    perLayer += targets("v_proj") ? r * (d + kv) : 0;
    perLayer += targets("o_proj") ? r * (q + d) : 0;
    perLayer += targets("gate") ? r * (d + e) : 0;
    perLayer += gateUp() ? e * r * (d + 2 * f) : 0;
    perLayer += down() ? e * r * (f + d) : 0;
    return perLayer * c.numHiddenLayers;
  }

  /** Parses a comma-separated target list ("q_proj,k_proj,v_proj,o_proj"). */
  public static Set<String> parseTargets(String list) {
    Set<String> out = new LinkedHashSet<>();
    for (String t : list.split(",")) {
      if (!t.isBlank()) {
        out.add(t.trim());
      }
    }
    return out;
  }

  /** The factor of the low-rank product: alpha / r, or alpha / sqrt(r) with rsLoRA. */
  public float scaling() {
    return (float) (rslora ? alpha / Math.sqrt(r) : alpha / r);
  }

  public boolean targets(String t) {
    return targets.contains(t);
  }

  /** Whether the experts' gate_up_proj (w1 and w3) carries an adapter. */
  public boolean gateUp() {
    return targets.contains("w1");
  }

  /** Whether the experts' down_proj (w2) carries an adapter. */
  public boolean down() {
    return targets.contains("w2");
  }

  /** PEFT's target_modules (the attention projections targeted). */
  public List<String> peftTargetModules() {
    List<String> out = new ArrayList<>();
    for (String t : targets) {
      if (ATTENTION.contains(t)) {
        out.add(t);
      }
    }
    return out;
  }

  /**
   * PEFT's target_parameters, in the order PEFT nests the wrappers of one module: the first listed
   * parameter of a module becomes the innermost wrapper (its keys gain {@code .base_layer}).
   */
  public List<String> peftTargetParameters() {
    List<String> out = new ArrayList<>();
    if (gateUp()) {
      out.add(MixtralNames.GATE_UP_PARAMETER);
    }
    if (down()) {
      out.add(MixtralNames.DOWN_PARAMETER);
    }
    if (targets.contains("gate")) {
      out.add(MixtralNames.ROUTER_PARAMETER);
    }
    return out;
  }
}
