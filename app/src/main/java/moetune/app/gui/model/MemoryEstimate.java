package moetune.app.gui.model;

/**
 * An estimate of GPU memory for full finetuning (every parameter trained with AdamW), at a
 * micro-batch of B sequences of T tokens. It is an estimate for choosing batch and sequence length,
 * not an allocator trace: the engine's caching allocator reports the real peak.
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
        (double) m.totalParams() * perParam
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
