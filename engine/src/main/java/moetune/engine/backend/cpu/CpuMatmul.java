package moetune.engine.backend.cpu;

import java.util.Arrays;
import moetune.engine.tensor.Tensor;

/**
 * Dense products on the CPU: {@link #matmul} and the tile kernel that the ScatterMoE ops reuse.
 *
 * <p>The kernel computes a tile of C = A' B' as a sum of rank-1 updates: for every row i and
 * every p (ascending), C[i, :] += A'(i, p) * B'[p, :]. B' rows are contiguous, so the innermost
 * loop is an axpy over contiguous memory that the JIT vectorises. Tiles are TILE_M rows by TILE_N
 * columns and k is walked in blocks of BLOCK_K so the B' block stays in cache while the tile's
 * rows reuse it. Every element is summed over p in ascending order by one task, whatever the
 * thread count.
 */
final class CpuMatmul {
  static final int TILE_M = 16;
  static final int TILE_N = 256;
  static final int BLOCK_K = 128;

  private final Parallel par;

  CpuMatmul(Parallel par) {
    this.par = par;
  }

  /**
   * acc[(i - i0) * (n1 - n0) + (j - n0)] = sum over p in [0, k) of A'(i, p) * B'(p, j), for i in
   * [i0, i1) and j in [n0, n1), where A'(i, p) = a[aRow[i] + p * aStride] and B'(p, j) = b[bOff
   * + p * ldb + j]. acc needs (i1 - i0) * (n1 - n0) elements; it is overwritten.
   */
  static void tile(
      float[] a, int[] aRow, int aStride, int k, float[] b, int bOff, int ldb,
      int i0, int i1, int n0, int n1, float[] acc) {
    int w = n1 - n0;
    Arrays.fill(acc, 0, (i1 - i0) * w, 0f);
    for (int p0 = 0; p0 < k; p0 += BLOCK_K) {
      int p1 = Math.min(k, p0 + BLOCK_K);
      for (int i = i0; i < i1; i++) {
        int ci = (i - i0) * w;
        int ar = aRow[i];
        for (int p = p0; p < p1; p++) {
          float av = a[ar + p * aStride];
          int bj = bOff + p * ldb + n0;
          for (int j = 0; j < w; j++) {
            acc[ci + j] += av * b[bj + j];
          }
        }
      }
    }
  }

  /** Backend#matmul: C = alpha * op(A) @ op(B) + beta * C. */
  void matmul(Tensor at, boolean transA, Tensor bt, boolean transB, Tensor ct, float alpha, float beta) {
    String op = "matmul";
    CpuTensor a = Args.f32(op, "A", at);
    CpuTensor b = Args.f32(op, "B", bt);
    CpuTensor c = Args.f32(op, "C", ct);
    int aRows = Math.toIntExact(a.rows());
    int aCols = Math.toIntExact(a.cols());
    int bRows = Math.toIntExact(b.rows());
    int bCols = Math.toIntExact(b.cols());
    int m = transA ? aCols : aRows;
    int k = transA ? aRows : aCols;
    int kb = transB ? bCols : bRows;
    int n = transB ? bRows : bCols;
    if (k != kb || c.numel() != (long) m * n) {
      throw new IllegalArgumentException(
          "matmul: op(A) is (" + m + ", " + k + ") from A " + a.describe() + (transA ? "^T" : "")
              + ", op(B) is (" + kb + ", " + n + ") from B " + b.describe() + (transB ? "^T" : "")
              + ", C " + c.describe() + " must be (" + m + ", " + n + ")");
    }
    checkNoOverlap(op, c, a, "A");
    checkNoOverlap(op, c, b, "B");

    // A'(i, p): row i of A, or column i of A when transposed (a strided read, once per axpy).
    int[] aRow = new int[m];
    for (int i = 0; i < m; i++) {
      aRow[i] = a.offset() + (transA ? i : i * k);
    }
    int aStride = transA ? m : 1;
    // B' must have contiguous rows: use B as stored, or a packed transpose of it.
    float[] bData;
    int bOff;
    if (transB) {
      bData = transpose(b.floats(), b.offset(), n, k);
      bOff = 0;
    } else {
      bData = b.floats();
      bOff = b.offset();
    }
    float[] cData = c.floats();
    int cOff = c.offset();
    int tilesN = (n + TILE_N - 1) / TILE_N;
    int tilesM = (m + TILE_M - 1) / TILE_M;
    par.forEach(tilesM * tilesN, t -> {
      int i0 = (t / tilesN) * TILE_M;
      int i1 = Math.min(m, i0 + TILE_M);
      int n0 = (t % tilesN) * TILE_N;
      int n1 = Math.min(n, n0 + TILE_N);
      int w = n1 - n0;
      float[] acc = new float[(i1 - i0) * w];
      tile(a.floats(), aRow, aStride, k, bData, bOff, n, i0, i1, n0, n1, acc);
      for (int i = i0; i < i1; i++) {
        int ci = cOff + i * n + n0;
        int ai = (i - i0) * w;
        if (beta == 0f) {
          // beta = 0 overwrites: C may hold NaN and must not leak into the result.
          for (int j = 0; j < w; j++) {
            cData[ci + j] = alpha * acc[ai + j];
          }
        } else {
          for (int j = 0; j < w; j++) {
            cData[ci + j] = alpha * acc[ai + j] + beta * cData[ci + j];
          }
        }
      }
    });
  }

  /** The (cols, rows) transpose of a row-major (rows, cols) matrix, as a new array. */
  float[] transpose(float[] src, int off, int rows, int cols) {
    float[] dst = new float[rows * cols];
    // Blocks of 32 source rows keep both the reads and the writes within a few cache lines.
    par.forChunks(rows, 32, (r0, r1) -> {
      for (int c = 0; c < cols; c++) {
        for (int r = r0; r < r1; r++) {
          dst[c * rows + r] = src[off + r * cols + c];
        }
      }
    });
    return dst;
  }

  /** Rejects an output that shares storage with an input: the tiles would read what they wrote. */
  static void checkNoOverlap(String op, CpuTensor out, CpuTensor in, String inName) {
    boolean same = out.dtype() == in.dtype()
        && (out.floats() != null ? out.floats() == in.floats() : out.ints() == in.ints());
    if (same && out.offset() < in.offset() + in.size() && in.offset() < out.offset() + out.size()) {
      throw new IllegalArgumentException(
          op + ": output " + out.describe() + " overlaps input " + inName + " " + in.describe());
    }
  }
}
