package moetune.engine.backend.cpu;

import java.util.Arrays;
import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.Tensor;

/**
 * Dense products on the CPU: {@link #matmul} and the tile kernel that the ScatterMoE ops reuse.
 *
 * <p>The kernel computes a tile of C = A' B' as a sum of rank-1 updates: for every row i and every
 * p (ascending), C[i, :] += A'(i, p) * B'[p, :], four rows of C per pass so each load of B' feeds
 * four multiply-adds. B' is first packed into column panels whose rows are separate arrays starting
 * at index 0, and the accumulator rows too: the innermost loop then indexes both operands by the
 * same j, which C2 vectorises (two arrays indexed at different offsets might alias, and C2 leaves
 * such loops scalar: measured 4 vs 28 GFLOP/s per core). k is walked in blocks of BLOCK_K so a
 * panel block stays in L2 while the tile's rows reuse it.
 *
 * <p>Every element is summed by one task over p in ascending order, starting from 0, whatever the
 * thread count and whichever pass (four rows or one) computes it.
 */
final class CpuMatmul {
  static final int TILE_M = 16;
  static final int TILE_N = 128;
  static final int BLOCK_K = 128;

  private final Parallel par;

  CpuMatmul(Parallel par) {
    this.par = par;
  }

  /** Number of TILE_N-wide column panels for n columns. */
  static int panelCount(int n) {
    return (n + TILE_N - 1) / TILE_N;
  }

  /**
   * Panels of a row-major B' (k, n) stored at src[off + p * ld + j]: result[t][p] holds B'[p,
   * t*TILE_N .. min(n, (t+1)*TILE_N)).
   */
  static float[][][] packRows(float[] src, int off, int ld, int k, int n) {
    float[][][] panels = new float[panelCount(n)][k][];
    for (int t = 0; t < panels.length; t++) {
      int n0 = t * TILE_N;
      int n1 = Math.min(n, n0 + TILE_N);
      for (int p = 0; p < k; p++) {
        panels[t][p] = Arrays.copyOfRange(src, off + p * ld + n0, off + p * ld + n1);
      }
    }
    return panels;
  }

  /** Panels of B' = S^T where S (n, k) is row-major at src[off]: B'[p, j] = S[j, p]. */
  static float[][][] packTransposed(float[] src, int off, int k, int n) {
    float[][][] panels = new float[panelCount(n)][k][];
    for (int t = 0; t < panels.length; t++) {
      int n0 = t * TILE_N;
      int w = Math.min(n, n0 + TILE_N) - n0;
      for (int p = 0; p < k; p++) {
        panels[t][p] = new float[w];
      }
      // 16 panel rows at a time: short contiguous reads of S, writes to 16 live cache lines.
      for (int p0 = 0; p0 < k; p0 += 16) {
        int p1 = Math.min(k, p0 + 16);
        for (int j = 0; j < w; j++) {
          int sRow = off + (n0 + j) * k;
          for (int p = p0; p < p1; p++) {
            panels[t][p][j] = src[sRow + p];
          }
        }
      }
    }
    return panels;
  }

  /**
   * acc[i - i0][j] = sum over p in [0, k) of A'(i, p) * panel[p][j] for i in [i0, i1), where A'(i,
   * p) = a[aRow[i] + p * aStride]. acc rows must be zero and as wide as the panel rows.
   */
  static void tile(
      float[] a, int[] aRow, int aStride, int k, float[][] panel, int i0, int i1, float[][] acc) {
    int w = acc[0].length;
    for (int p0 = 0; p0 < k; p0 += BLOCK_K) {
      int p1 = Math.min(k, p0 + BLOCK_K);
      int i = i0;
      for (; i + 4 <= i1; i += 4) {
        float[] c0 = acc[i - i0];
        float[] c1 = acc[i - i0 + 1];
        float[] c2 = acc[i - i0 + 2];
        float[] c3 = acc[i - i0 + 3];
        int r0 = aRow[i];
        int r1 = aRow[i + 1];
        int r2 = aRow[i + 2];
        int r3 = aRow[i + 3];
        for (int p = p0; p < p1; p++) {
          float a0 = a[r0 + p * aStride];
          float a1 = a[r1 + p * aStride];
          float a2 = a[r2 + p * aStride];
          float a3 = a[r3 + p * aStride];
          float[] b = panel[p];
          for (int j = 0; j < w; j++) {
            float bv = b[j];
            c0[j] += a0 * bv;
            c1[j] += a1 * bv;
            c2[j] += a2 * bv;
            c3[j] += a3 * bv;
          }
        }
      }
      for (; i < i1; i++) {
        float[] c = acc[i - i0];
        int r = aRow[i];
        for (int p = p0; p < p1; p++) {
          float av = a[r + p * aStride];
          float[] b = panel[p];
          for (int j = 0; j < w; j++) {
            c[j] += av * b[j];
          }
        }
      }
    }
  }

  /** Zeroed accumulator rows for a tile of `rows` rows of panel t of an n-column product. */
  static float[][] accumulator(int rows, int n, int t) {
    return new float[rows][Math.min(n, (t + 1) * TILE_N) - t * TILE_N];
  }

  /** Backend#matmul: C = alpha * op(A) @ op(B) + beta * C. */
  void matmul(
      Tensor at, boolean transA, Tensor bt, boolean transB, Tensor ct, float alpha, float beta) {
    String op = "matmul";
    CpuTensor a = Args.f32(op, "A", at);
    CpuTensor b = Args.f32(op, "B", bt);
    CpuTensor c = Args.f32(op, "C", ct);
    long[] mnk = OpShapes.matmul(a, transA, b, transB, c);
    int m = Math.toIntExact(mnk[0]), n = Math.toIntExact(mnk[1]), k = Math.toIntExact(mnk[2]);
    checkNoOverlap(op, c, a, "A");
    checkNoOverlap(op, c, b, "B");

    // A'(i, p): row i of A, or column i of A when transposed (a strided read, once per axpy).
    int[] aRow = new int[m];
    for (int i = 0; i < m; i++) {
      aRow[i] = a.offset() + (transA ? i : i * k);
    }
    int aStride = transA ? m : 1;
    float[][][] panels =
        transB
            ? packTransposed(b.floats(), b.offset(), k, n)
            : packRows(b.floats(), b.offset(), n, k, n);
    float[] cData = c.floats();
    int cOff = c.offset();
    int tilesN = panelCount(n);
    int tilesM = (m + TILE_M - 1) / TILE_M;
    par.forEach(
        tilesM * tilesN,
        task -> {
          int i0 = (task / tilesN) * TILE_M;
          int i1 = Math.min(m, i0 + TILE_M);
          int t = task % tilesN;
          float[][] acc = accumulator(i1 - i0, n, t);
          tile(a.floats(), aRow, aStride, k, panels[t], i0, i1, acc);
          int n0 = t * TILE_N;
          for (int i = i0; i < i1; i++) {
            float[] row = acc[i - i0];
            int ci = cOff + i * n + n0;
            if (beta == 0f) {
              // beta = 0 overwrites: C may hold NaN and must not leak into the result.
              for (int j = 0; j < row.length; j++) {
                cData[ci + j] = alpha * row[j];
              }
            } else {
              for (int j = 0; j < row.length; j++) {
                cData[ci + j] = alpha * row[j] + beta * cData[ci + j];
              }
            }
          }
        });
  }

  /** Rejects an output that shares storage with an input: the tiles would read what they wrote. */
  static void checkNoOverlap(String op, CpuTensor out, CpuTensor in, String inName) {
    boolean same =
        out.dtype() == in.dtype()
            && (out.floats() != null ? out.floats() == in.floats() : out.ints() == in.ints());
    if (same && out.offset() < in.offset() + in.size() && in.offset() < out.offset() + out.size()) {
      throw new IllegalArgumentException(
          op + ": output " + out.describe() + " overlaps input " + inName + " " + in.describe());
    }
  }
}
