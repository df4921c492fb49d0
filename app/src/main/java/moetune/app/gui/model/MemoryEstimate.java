package moetune.app.gui.model;

import java.util.Set;

/**
 * An estimate of GPU memory for full finetuning (every parameter trained with AdamW) or LoRA
 * ({@link #loraBytes}: adapters trained, the base frozen and stored once), at a micro-batch of B
 * sequences of T tokens. It is an estimate for choosing batch and sequence length, not an allocator
 * trace: the engine's caching allocator reports the real peak.
 *
 * <pre>
 * bytes = P * perParam                          weights, grads, optimizer state
 *       + B * T * L * A * actBytes              activations kept for the backward
 *       + B * T * V * 4 * 2                     float32 logits and their gradient
 *   (then + 10% for allocator slack and workspaces)
 *
 * perParam: bf16 = 2 (bf16 weights) + 4 (fp32 master) + 4 (fp32 grad) + 4 + 4 (Adam m, v) = 18
 *           fp32 = 4 (weights) + 4 (grad) + 4 + 4 (Adam m, v)                            = 16
 * A (activation elements kept per token and layer, without recomputation):
 *       2D   the two RMSNorm inputs (residual stream)   + 2D  the two RMSNorm outputs
 *     + H*hd + 2*Hkv*hd   q, k, v                        + D   attention output before o_proj
 *     + E    router logits
 *     + K * (3F + D)   per routed expert: gate and up projections, SwiGLU output, expert output
 * actBytes: 2 for bf16 activations, 4 for fp32.
 * </pre>
 */
public final class MemoryEstimate {

  /** Fraction added for the caching allocator's rounding and cuBLAS workspaces. */
  static final double SLACK = 0.10;

  private MemoryEstimate() {}

  /** Estimated bytes; {@code bf16} selects mixed precision, else float32 throughout. */
  public static long bytes(ModelFacts m, int batch, int seqLen, boolean bf16) {
    return bytes(m, batch, seqLen, bf16, m.totalParams(), 0);
  }

  /**
   * As {@link #bytes(ModelFacts, int, int, boolean)} for LoRA: the adapters' {@link #loraParams}
   * are trained (perParam bytes each), every base weight is frozen and stored once (2 bytes in
   * bf16, 4 in float32; no master, gradient or optimizer state). The activation term is the same.
   */
  public static long loraBytes(
      ModelFacts m, int batch, int seqLen, boolean bf16, int rank, Set<String> targets) {
    return bytes(m, batch, seqLen, bf16, loraParams(m, rank, targets), m.totalParams());
  }

  /**
   * The adapter parameters LoRA of this rank adds on these targets (the engine's {@code
   * LoraConfig.parameterCount}): r * (in + out) per adapted matrix, per expert for w1+w3 (one
   * adapter on the fused gate_up_proj) and w2.
   */
  public static long loraParams(ModelFacts m, int rank, Set<String> targets) {
    long r = rank;
    long d = m.hidden();
    long q = (long) m.heads() * m.headDim();
    long kv = (long) m.kvHeads() * m.headDim();
    long e = m.experts();
    long f = m.intermediate();
    long perLayer = 0;
    perLayer += targets.contains("q_proj") ? r * (d + q) : 0;
    perLayer += targets.contains("k_proj") ? r * (d + kv) : 0;
    perLayer += targets.contains("v_proj") ? r * (d + kv) : 0;
    perLayer += targets.contains("o_proj") ? r * (q + d) : 0;
    perLayer += targets.contains("gate") ? r * (d + e) : 0;
    perLayer += targets.contains("w1") || targets.contains("w3") ? e * r * (d + 2 * f) : 0;
    perLayer += targets.contains("w2") ? e * r * (f + d) : 0;
    return perLayer * m.layers();
  }

  private static long bytes(
      ModelFacts m, int batch, int seqLen, boolean bf16, long trainable, long frozen) {
    if (batch < 1 || seqLen < 1) {
      throw new IllegalArgumentException("batch and sequence length must be at least 1");
    }
    long perParam = bf16 ? 18 : 16;
    long actBytes = bf16 ? 2 : 4;
    long d = m.hidden();
    long perTokenLayer =
        2 * d
            + 2 * d
            + (long) m.heads() * m.headDim()
            + 2L * m.kvHeads() * m.headDim()
            + d
            + m.experts()
            + (long) m.topK() * (3L * m.intermediate() + d);
    long tokens = (long) batch * seqLen;
    double raw =
        (double) trainable * perParam
            + (double) frozen * (bf16 ? 2 : 4)
            + (double) tokens * m.layers() * perTokenLayer * actBytes
            + (double) tokens * m.vocab() * 4 * 2;
    return (long) Math.ceil(raw * (1 + SLACK));
  }

  /** "1.23 GiB", "456.0 MiB", "12.0 KiB": binary units, as nvidia-smi counts. */
  public static String human(long bytes) {
    String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = bytes;
    int u = 0;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    return u == 0 ? bytes + " B" : String.format(java.util.Locale.ROOT, "%.2f %s", v, units[u]);
  }
}
