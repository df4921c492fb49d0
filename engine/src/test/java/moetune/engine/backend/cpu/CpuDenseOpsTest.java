package moetune.engine.backend.cpu;

import static moetune.engine.backend.cpu.CpuTesting.assertClose;
import static moetune.engine.backend.cpu.CpuTesting.f32;
import static moetune.engine.backend.cpu.CpuTesting.floats;
import static moetune.engine.backend.cpu.CpuTesting.i32;
import static moetune.engine.backend.cpu.CpuTesting.poisoned;
import static moetune.engine.backend.cpu.CpuTesting.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Random;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Forward dense ops against naive double-precision formulas written here. */
class CpuDenseOpsTest {
  static CpuBackend be;

  @BeforeAll
  static void start() {
    be = new CpuBackend(2);
  }

  @AfterAll
  static void stop() {
    be.close();
  }

  /** op(X)[i][j] of a row-major (rows, cols) matrix. */
  private static double at(float[] x, int cols, boolean trans, int i, int j) {
    return trans ? x[j * cols + i] : x[i * cols + j];
  }

  @Test
  void matmulAllTransposesAlphaBetaAndTileEdges() {
    Random r = new Random(1);
    // m, k, n chosen to straddle the 16 x 256 tiles and the 128-long k blocks.
    int[][] shapes = {{37, 100, 300}, {1, 5, 1}, {17, 129, 257}, {64, 300, 64}};
    for (int[] s : shapes) {
      int m = s[0];
      int k = s[1];
      int n = s[2];
      for (boolean ta : new boolean[] {false, true}) {
        for (boolean tb : new boolean[] {false, true}) {
          float[] a = randn(r, m * k, 1);
          float[] b = randn(r, k * n, 1);
          float[] c0 = randn(r, m * n, 1);
          Tensor at = ta ? f32(be, a, k, m) : f32(be, a, m, k);
          Tensor bt = tb ? f32(be, b, n, k) : f32(be, b, k, n);
          for (float beta : new float[] {0f, 1f, 0.5f}) {
            Tensor c = beta == 0f ? poisoned(be, m, n) : f32(be, c0, m, n);
            float alpha = 0.75f;
            be.matmul(at, ta, bt, tb, c, alpha, beta);
            double[] want = new double[m * n];
            for (int i = 0; i < m; i++) {
              for (int j = 0; j < n; j++) {
                double acc = 0;
                for (int p = 0; p < k; p++) {
                  acc += at(a, ta ? m : k, ta, i, p) * at(b, tb ? k : n, tb, p, j);
                }
                want[i * n + j] = alpha * acc + (beta == 0 ? 0 : beta * c0[i * n + j]);
              }
            }
            assertClose(
                "matmul m="
                    + m
                    + " k="
                    + k
                    + " n="
                    + n
                    + " tA="
                    + ta
                    + " tB="
                    + tb
                    + " beta="
                    + beta,
                want,
                floats(be, c),
                1e-5,
                2e-5 * Math.sqrt(k));
          }
        }
      }
    }
  }

  @Test
  void matmulOnViewsAndRejectsOverlap() {
    Random r = new Random(2);
    float[] big = randn(r, 200, 1);
    Tensor buf = f32(be, big, 200);
    Tensor a = buf.view(10, 3, 4); // elements 10..21
    Tensor b = buf.view(50, 4, 5); // elements 50..69
    Tensor c = be.empty(DType.F32, 3, 5);
    be.matmul(a, false, b, false, c, 1, 0);
    double[] want = new double[15];
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < 5; j++) {
        for (int p = 0; p < 4; p++) {
          want[i * 5 + j] += (double) big[10 + i * 4 + p] * big[50 + p * 5 + j];
        }
      }
    }
    assertClose("matmul on views", want, floats(be, c), 1e-6, 1e-6);
    Tensor overlapping = buf.view(15, 3, 5);
    assertThrows(
        IllegalArgumentException.class, () -> be.matmul(a, false, b, false, overlapping, 1, 0));
  }

  @Test
  void elementwiseOps() {
    Random r = new Random(3);
    int n = 70_001; // more than two parallel chunks, not a multiple of one
    float[] a = randn(r, n, 1);
    float[] b = randn(r, n, 1);
    Tensor at = f32(be, a, n);
    Tensor bt = f32(be, b, n);
    Tensor out = poisoned(be, n);
    be.add(at, bt, out);
    double[] want = new double[n];
    for (int i = 0; i < n; i++) {
      want[i] = (double) a[i] + b[i];
    }
    assertClose("add", want, floats(be, out), 1e-7, 0);
    be.add(at, bt, at); // out aliasing a
    assertClose("add in place", want, floats(be, at), 1e-7, 0);
    be.axpy(-0.5f, bt, at);
    for (int i = 0; i < n; i++) {
      want[i] = (float) want[i] - 0.5 * b[i];
    }
    assertClose("axpy", want, floats(be, at), 1e-6, 1e-7);
    be.scale(at, 3f);
    for (int i = 0; i < n; i++) {
      want[i] *= 3;
    }
    assertClose("scale", want, floats(be, at), 1e-6, 1e-6);
  }

  @Test
  void embeddingForwardAndRepeatedIdsInBackward() {
    Random r = new Random(4);
    int v = 11;
    int d = 100;
    int[] ids = {3, 0, 10, 3, 3, 7, 0};
    float[] table = randn(r, v * d, 1);
    Tensor out = poisoned(be, ids.length, d);
    be.embeddingForward(i32(be, ids, ids.length), f32(be, table, v, d), out);
    float[] got = floats(be, out);
    for (int n = 0; n < ids.length; n++) {
      for (int c = 0; c < d; c++) {
        if (got[n * d + c] != table[ids[n] * d + c]) {
          throw new AssertionError("embedding row " + n + " col " + c);
        }
      }
    }
    float[] g = randn(r, ids.length * d, 1);
    float[] dt0 = randn(r, v * d, 1);
    Tensor dTable = f32(be, dt0, v, d);
    be.embeddingBackward(i32(be, ids, ids.length), f32(be, g, ids.length, d), dTable);
    double[] want = CpuTesting.toDouble(dt0);
    for (int n = 0; n < ids.length; n++) {
      for (int c = 0; c < d; c++) {
        want[ids[n] * d + c] += g[n * d + c];
      }
    }
    assertClose("embeddingBackward", want, floats(be, dTable), 1e-6, 1e-6);
    assertThrows(
        IllegalArgumentException.class,
        () ->
            be.embeddingForward(
                i32(be, new int[] {11}, 1), f32(be, table, v, d), be.empty(DType.F32, 1, d)));
  }

  @Test
  void rmsnormForwardWithResidualAdd() {
    Random r = new Random(5);
    int n = 37;
    int d = 100;
    float eps = 1e-5f;
    float[] res = randn(r, n * d, 2);
    float[] delta = randn(r, n * d, 1);
    float[] w = randn(r, d, 1);
    Tensor rt = f32(be, res, n, d);
    Tensor out = poisoned(be, n, d);
    Tensor rstd = poisoned(be, n);
    be.rmsnormForward(rt, f32(be, delta, n, d), f32(be, w, d), eps, out, rstd);
    double[] wantRes = new double[n * d];
    double[] wantOut = new double[n * d];
    double[] wantRstd = new double[n];
    for (int i = 0; i < n; i++) {
      double ss = 0;
      for (int c = 0; c < d; c++) {
        wantRes[i * d + c] = (float) (res[i * d + c] + delta[i * d + c]);
        ss += wantRes[i * d + c] * wantRes[i * d + c];
      }
      wantRstd[i] = 1 / Math.sqrt(ss / d + eps);
      for (int c = 0; c < d; c++) {
        wantOut[i * d + c] = w[c] * wantRes[i * d + c] * wantRstd[i];
      }
    }
    assertClose("rmsnorm residual", wantRes, floats(be, rt), 0, 0);
    assertClose("rmsnorm rstd", wantRstd, floats(be, rstd), 1e-6, 0);
    assertClose("rmsnorm out", wantOut, floats(be, out), 1e-6, 1e-7);
    // Without a delta the residual is left as it is.
    Tensor r2 = f32(be, res, n, d);
    be.rmsnormForward(r2, null, f32(be, w, d), eps, out, rstd);
    assertArrayEquals(res, floats(be, r2));
  }

  /**
   * transformers' rotary embedding step by step: inv_freq in float32, freqs = pos * inv_freq in
   * float32, emb = cat(freqs, freqs), q * cos(emb) + rotate_half(q) * sin(emb).
   */
  static double[] hfRope(float[] x, int[] pos, int heads, int hd, float theta, boolean inverse) {
    float[] inv = new float[hd / 2];
    for (int i = 0; i < hd / 2; i++) {
      inv[i] = 1f / (float) Math.pow(theta, (float) (2 * i) / hd);
    }
    double[] out = new double[x.length];
    for (int t = 0; t < pos.length; t++) {
      double[] cos = new double[hd];
      double[] sin = new double[hd];
      for (int c = 0; c < hd; c++) {
        float angle = (float) pos[t] * inv[c % (hd / 2)];
        cos[c] = (float) Math.cos(angle);
        sin[c] = (float) Math.sin(angle) * (inverse ? -1 : 1);
      }
      for (int h = 0; h < heads; h++) {
        int base = (t * heads + h) * hd;
        for (int c = 0; c < hd; c++) {
          double rot = c < hd / 2 ? -x[base + c + hd / 2] : x[base + c - hd / 2];
          out[base + c] = x[base + c] * cos[c] + rot * sin[c];
        }
      }
    }
    return out;
  }

  @Test
  void ropeMatchesTransformersAndBackwardInverts() {
    Random r = new Random(6);
    int n = 37;
    int heads = 3;
    int hd = 10;
    float theta = 1e6f;
    int[] pos = new int[n];
    for (int t = 0; t < n; t++) {
      pos[t] = t % 2 == 0 ? t * 97 : t; // up to a few thousand
    }
    float[] x = randn(r, n * heads * hd, 1);
    Tensor xt = f32(be, x, n, heads, hd);
    Tensor pt = i32(be, pos, n);
    be.ropeForward(xt, pt, theta);
    assertClose("ropeForward", hfRope(x, pos, heads, hd, theta, false), floats(be, xt), 1e-6, 1e-6);
    be.ropeBackward(xt, pt, theta);
    assertClose("ropeBackward(ropeForward(x))", x, floats(be, xt), 1e-5, 1e-6);
    float[] g = randn(r, n * heads * hd, 1);
    Tensor gt = f32(be, g, n, heads, hd);
    be.ropeBackward(gt, pt, theta);
    assertClose("ropeBackward", hfRope(g, pos, heads, hd, theta, true), floats(be, gt), 1e-6, 1e-6);
  }

  @Test
  void swigluForward() {
    Random r = new Random(7);
    int m = 37;
    int f = 80;
    float[] h = randn(r, m * 2 * f, 3);
    Tensor a = poisoned(be, m, f);
    be.swigluForward(f32(be, h, m, 2 * f), a);
    double[] want = new double[m * f];
    for (int i = 0; i < m; i++) {
      for (int j = 0; j < f; j++) {
        double g = h[i * 2 * f + j];
        want[i * f + j] = g / (1 + Math.exp(-g)) * h[i * 2 * f + f + j];
      }
    }
    assertClose("swigluForward", want, floats(be, a), 1e-6, 1e-7);
  }
}
