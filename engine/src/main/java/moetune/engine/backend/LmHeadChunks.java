package moetune.engine.backend;

import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * The LM head and the cross-entropy fused and chunked ({@link Backend#lmHeadCrossEntropy}): the (N,
 * V) logits are never held whole. For each chunk of at most {@code chunkRows} rows of x:
 *
 * <pre>
 *   logits   = x[chunk] @ w^T                      into one (chunkRows, V) buffer of x's dtype
 *   losses[chunk], and with a gradient asked for:
 *   dlogits  = dScale (softmax - onehot)           crossEntropy, in place in that buffer
 *   dx[chunk] = dlogits @ w                        overwrite
 *   dw      += dlogits^T @ x[chunk]                accumulated chunk after chunk
 * </pre>
 *
 * Built from the backend's own matmul and crossEntropy on row views, so each backend computes the
 * losses and dx rows with the same kernels and the same per-row arithmetic as the unfused path
 * (matmul of all N rows, crossEntropy, two products); only dw's sum over rows is split at the chunk
 * boundaries (one float32 partial sum per chunk, then added), the one difference from the unfused
 * numbers. The peak holds one chunk buffer (chunkRows x V) instead of N x V logits.
 */
public final class LmHeadChunks {
  /** The chunk buffer {@link #rows} aims at: 64 MiB (1024 rows of 32000 bf16 logits). */
  public static final long TARGET_BYTES = 64L << 20;

  private LmHeadChunks() {}

  /**
   * Rows per chunk for vocabulary v in dtype: as many as fit {@link #TARGET_BYTES}, a multiple of
   * 64 when that is at least 64 (aligned row views, whole GEMM tiles), at least 1.
   */
  public static int rows(long v, DType dtype) {
    long r = TARGET_BYTES / Math.max(1, v * dtype.bytes());
    if (r >= 64) {
      r -= r % 64;
    }
    return (int) Math.max(1, Math.min(Integer.MAX_VALUE, r));
  }

  /** Backend#lmHeadCrossEntropy, on any backend. */
  public static void run(
      Backend be,
      Tensor x,
      Tensor w,
      Tensor targets,
      Tensor losses,
      Tensor dx,
      Tensor dw,
      float dScale,
      int chunkRows) {
    String op = "lmHeadCrossEntropy";
    long n = x.rows(), d = x.cols(), v = w.rows();
    check(
        w.cols() == d, op, "w " + w.describe() + " is not (V, D=" + d + ") for x " + x.describe());
    check(
        targets.numel() == n && targets.dtype() == DType.I32,
        op,
        "targets " + targets.describe() + " is not I32 (N=" + n + ")");
    check(
        losses.numel() == n && losses.dtype() == DType.F32,
        op,
        "losses " + losses.describe() + " is not F32 (N=" + n + ")");
    check(
        dx == null || dx.numel() == n * d,
        op,
        "dx " + (dx == null ? "" : dx.describe()) + " does not match x " + x.describe());
    check(
        dw == null || dw.numel() == v * d,
        op,
        "dw " + (dw == null ? "" : dw.describe()) + " does not match w " + w.describe());
    check(chunkRows >= 1, op, "chunkRows " + chunkRows + " must be at least 1");
    boolean grad = dx != null || dw != null;
    long rows = Math.min(n, chunkRows);
    if (n == 0) {
      return;
    }
    try (Tensor buf = be.empty(x.dtype(), rows, v)) {
      for (long r0 = 0; r0 < n; r0 += rows) {
        long r = Math.min(rows, n - r0);
        Tensor logits = r == rows ? buf : buf.view(0, r, v);
        Tensor xc = x.view(r0 * d, r, d);
        Tensor t = targets.view(r0, r);
        Tensor l = losses.view(r0, r);
        be.matmul(xc, false, w, true, logits, 1f, 0f);
        be.crossEntropy(logits, t, l, grad ? logits : null, dScale);
        if (dx != null) {
          be.matmul(logits, false, w, false, dx.view(r0 * d, r, d), 1f, 0f);
        }
        if (dw != null) {
          be.matmul(logits, true, xc, false, dw, 1f, 1f);
        }
      }
    }
  }

  private static void check(boolean ok, String op, String message) {
    if (!ok) {
      throw new IllegalArgumentException(op + ": " + message);
    }
  }
}
