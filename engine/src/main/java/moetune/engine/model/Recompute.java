package moetune.engine.model;

import java.util.Locale;

/**
 * Activation recomputation in the training backward: what the forward keeps of each decoder layer,
 * and what the backward recomputes from it. Every mode computes the same numbers (bit-equal on the
 * CPU backend: the recomputation repeats the forward's ops on the same inputs and draws the same
 * dropout and jitter noise, from a seed kept per layer).
 *
 * <ul>
 *   <li>{@link #NONE}: the forward keeps every layer's activations (fastest, most memory).
 *   <li>{@link #ATTENTION}: the attention sublayer's inner state (q, k, v after RoPE, the attention
 *       output and its log-sum-exp, its LoRA branches) is dropped and recomputed from the layer's
 *       normed input in the backward; the MoE sublayer's state is kept. Costs one attention forward
 *       per layer.
 *   <li>{@link #LAYER}: only each layer's input (the residual stream) is kept; the backward reruns
 *       the whole layer's forward before its backward (gradient checkpointing per layer, as
 *       transformers' {@code gradient_checkpointing_enable}). Costs one more forward.
 * </ul>
 */
public enum Recompute {
  NONE,
  ATTENTION,
  LAYER;

  /** The names a run config and the command line use: none, attention, layer. */
  public static final String NAMES = "none, attention, layer";

  /** The mode of a name (case-insensitive); the error names the accepted values. */
  public static Recompute parse(String name) {
    for (Recompute r : values()) {
      if (r.name().equalsIgnoreCase(name.trim())) {
        return r;
      }
    }
    throw new IllegalArgumentException(
        "recompute must be one of " + NAMES + ", got '" + name + "'");
  }

  /** The lower-case name, as a run config writes it. */
  public String key() {
    return name().toLowerCase(Locale.ROOT);
  }
}
