package moetune.engine.backend.cpu;

import static moetune.engine.backend.cpu.CpuTesting.assertClose;
import static moetune.engine.backend.cpu.CpuTesting.assertNormClose;
import static moetune.engine.backend.cpu.CpuTesting.f32;
import static moetune.engine.backend.cpu.CpuTesting.floats;
import static moetune.engine.backend.cpu.CpuTesting.i32;
import static moetune.engine.backend.cpu.CpuTesting.poisoned;
import static moetune.engine.backend.cpu.CpuTesting.randn;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import moetune.engine.backend.AttnSpec;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Attention forward against a naive double-precision softmax(q k^T / sqrt(hd) + mask) v that builds
 * the mask from AttnSpec's rules, and the backward against central finite differences of that naive
 * forward.
 */
class CpuAttentionTest {
  static CpuBackend be;

  @BeforeAll
  static void start() {
    be = new CpuBackend(2);
  }

  @AfterAll
  static void stop() {
    be.close();
  }

  /** One configuration: B, Tq, Tk, H, Hkv, hd, window, docIds (B*Tk) or null. */
  record Case(int b, int tq, int tk, int h, int hkv, int hd, int window, int[] doc) {
    boolean visible(int bi, int i, int j) {
      int a = tk - tq + i;
      if (j > a) {
        return false;
      }
      if (window > 0 && a - j >= window) {
        return false;
      }
      return doc == null || (doc[bi * tk + j] >= 0 && doc[bi * tk + j] == doc[bi * tk + a]);
    }

    /** {out (B*Tq*H*hd), lse (B*Tq*H)} in double. */
    double[][] naive(double[] q, double[] k, double[] v) {
      double[] out = new double[b * tq * h * hd];
      double[] lse = new double[b * tq * h];
      int group = h / hkv;
      for (int bi = 0; bi < b; bi++) {
        for (int hi = 0; hi < h; hi++) {
          int kh = hi / group;
          for (int i = 0; i < tq; i++) {
            double[] s = new double[tk];
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < tk; j++) {
              s[j] = Double.NEGATIVE_INFINITY;
              if (visible(bi, i, j)) {
                double dot = 0;
                for (int d = 0; d < hd; d++) {
                  dot +=
                      q[((bi * tq + i) * h + hi) * hd + d] * k[((bi * tk + j) * hkv + kh) * hd + d];
                }
                s[j] = dot / Math.sqrt(hd);
                max = Math.max(max, s[j]);
              }
            }
            int row = (bi * tq + i) * h + hi;
            if (max == Double.NEGATIVE_INFINITY) {
              lse[row] = Double.NEGATIVE_INFINITY;
              continue; // out stays zero
            }
            double sum = 0;
            for (int j = 0; j < tk; j++) {
              sum += Math.exp(s[j] - max);
            }
            lse[row] = max + Math.log(sum);
            for (int j = 0; j < tk; j++) {
              double p = Math.exp(s[j] - lse[row]);
              for (int d = 0; d < hd; d++) {
                out[row * hd + d] += p * v[((bi * tk + j) * hkv + kh) * hd + d];
              }
            }
          }
        }
      }
      return new double[][] {out, lse};
    }

    /**
     * {dq, dk, dv} of L = sum(out * g) by the textbook formulas, in double: P = softmax(S), dP = g
     * V^T, dS = P * (dP - rowsum(P * dP)), dq = dS K / sqrt(hd), dk = dS^T Q / sqrt(hd), dv = P^T
     * g.
     */
    double[][] analyticBackward(double[] q, double[] k, double[] v, float[] g) {
      double[] lse = naive(q, k, v)[1];
      double[] dq = new double[q.length];
      double[] dk = new double[k.length];
      double[] dv = new double[v.length];
      int group = h / hkv;
      double scale = 1 / Math.sqrt(hd);
      for (int bi = 0; bi < b; bi++) {
        for (int hi = 0; hi < h; hi++) {
          int kh = hi / group;
          for (int i = 0; i < tq; i++) {
            int row = (bi * tq + i) * h + hi;
            if (lse[row] == Double.NEGATIVE_INFINITY) {
              continue;
            }
            double[] p = new double[tk];
            double[] dp = new double[tk];
            double rowsum = 0;
            for (int j = 0; j < tk; j++) {
              if (!visible(bi, i, j)) {
                continue;
              }
              int kRow = ((bi * tk + j) * hkv + kh) * hd;
              double sc = 0;
              for (int d = 0; d < hd; d++) {
                sc += q[row * hd + d] * k[kRow + d];
                dp[j] += g[row * hd + d] * v[kRow + d];
              }
              p[j] = Math.exp(sc * scale - lse[row]);
              rowsum += p[j] * dp[j];
            }
            for (int j = 0; j < tk; j++) {
              if (p[j] == 0) {
                continue;
              }
              int kRow = ((bi * tk + j) * hkv + kh) * hd;
              double ds = p[j] * (dp[j] - rowsum);
              for (int d = 0; d < hd; d++) {
                dq[row * hd + d] += scale * ds * k[kRow + d];
                dk[kRow + d] += scale * ds * q[row * hd + d];
                dv[kRow + d] += p[j] * g[row * hd + d];
              }
            }
          }
        }
      }
      return new double[][] {dq, dk, dv};
    }

    AttnSpec spec() {
      return new AttnSpec(b, tq, tk, doc == null ? null : i32(be, doc, (long) b * tk), window);
    }
  }

  private void check(String name, Case c, long seed) {
    Random r = new Random(seed);
    int nq = c.b() * c.tq() * c.h() * c.hd();
    int nk = c.b() * c.tk() * c.hkv() * c.hd();
    float[] q = randn(r, nq, 1);
    float[] k = randn(r, nk, 1);
    float[] v = randn(r, nk, 1);
    float[] g = randn(r, nq, 1);
    AttnSpec spec = c.spec();
    Tensor qt = f32(be, q, (long) c.b() * c.tq(), c.h(), c.hd());
    Tensor kt = f32(be, k, (long) c.b() * c.tk(), c.hkv(), c.hd());
    Tensor vt = f32(be, v, (long) c.b() * c.tk(), c.hkv(), c.hd());
    Tensor out = poisoned(be, (long) c.b() * c.tq(), c.h(), c.hd());
    Tensor lse = poisoned(be, (long) c.b() * c.tq(), c.h());
    be.attentionForward(qt, kt, vt, spec, out, lse);
    double[] qd = CpuTesting.toDouble(q);
    double[] kd = CpuTesting.toDouble(k);
    double[] vd = CpuTesting.toDouble(v);
    double[][] want = c.naive(qd, kd, vd);
    assertClose(name + " out", want[0], floats(be, out), 1e-5, 1e-6);
    assertClose(name + " lse", want[1], floats(be, lse), 1e-6, 1e-6);

    Tensor dq = poisoned(be, (long) c.b() * c.tq(), c.h(), c.hd());
    Tensor dk = poisoned(be, (long) c.b() * c.tk(), c.hkv(), c.hd());
    Tensor dv = poisoned(be, (long) c.b() * c.tk(), c.hkv(), c.hd());
    be.attentionBackward(
        f32(be, g, (long) c.b() * c.tq(), c.h(), c.hd()), qt, kt, vt, out, lse, spec, dq, dk, dv);
    double h = 1e-5;
    double[] wantDq = CpuTesting.numericGrad(qd, h, x -> CpuTesting.dot(c.naive(x, kd, vd)[0], g));
    double[] wantDk = CpuTesting.numericGrad(kd, h, x -> CpuTesting.dot(c.naive(qd, x, vd)[0], g));
    double[] wantDv = CpuTesting.numericGrad(vd, h, x -> CpuTesting.dot(c.naive(qd, kd, x)[0], g));
    // Float32 scores and probabilities against double differences: 1e-5 of the norm is ~100 ulp.
    assertNormClose(name + " dq", wantDq, floats(be, dq), 1e-5);
    assertNormClose(name + " dk", wantDk, floats(be, dk), 1e-5);
    assertNormClose(name + " dv", wantDv, floats(be, dv), 1e-5);
    assertClose(name + " dq elementwise", wantDq, floats(be, dq), 1e-4, 1e-5);
    assertClose(name + " dk elementwise", wantDk, floats(be, dk), 1e-4, 1e-5);
    assertClose(name + " dv elementwise", wantDv, floats(be, dv), 1e-4, 1e-5);
  }

  @Test
  void causalGroupedQuery() {
    check("causal GQA", new Case(2, 7, 7, 4, 2, 6, 0, null), 1);
  }

  @Test
  void slidingWindow() {
    check("window 3", new Case(2, 9, 9, 3, 1, 4, 3, null), 2);
  }

  @Test
  void packedDocumentsWithPadding() {
    // Row 0: two documents then padding; row 1: padding first (a query that sees nothing).
    int[] doc = {0, 0, 0, 1, 1, 1, 1, -1, -1, 5, 5, 7, 7, 7, 7, 7};
    Case c = new Case(2, 8, 8, 4, 2, 6, 0, doc);
    check("docIds", c, 3);
    check("docIds + window 2", new Case(2, 8, 8, 2, 2, 4, 2, doc), 4);
  }

  @Test
  void paddingQueryGetsZerosAndMinusInfinity() {
    int[] doc = {-1, 0, 0};
    Case c = new Case(1, 3, 3, 2, 1, 4, 0, doc);
    Random r = new Random(9);
    Tensor q = f32(be, randn(r, 24, 1), 3, 2, 4);
    Tensor k = f32(be, randn(r, 12, 1), 3, 1, 4);
    Tensor v = f32(be, randn(r, 12, 1), 3, 1, 4);
    Tensor out = poisoned(be, 3, 2, 4);
    Tensor lse = poisoned(be, 3, 2);
    be.attentionForward(q, k, v, c.spec(), out, lse);
    float[] o = floats(be, out);
    float[] l = floats(be, lse);
    for (int d = 0; d < 8; d++) {
      assertEquals(0f, o[d], "padding query output");
    }
    assertEquals(Float.NEGATIVE_INFINITY, l[0]);
    assertEquals(Float.NEGATIVE_INFINITY, l[1]);
    Tensor dq = poisoned(be, 3, 2, 4);
    Tensor dk = poisoned(be, 3, 1, 4);
    Tensor dv = poisoned(be, 3, 1, 4);
    be.attentionBackward(
        f32(be, randn(r, 24, 1), 3, 2, 4), q, k, v, out, lse, c.spec(), dq, dk, dv);
    float[] dqv = floats(be, dq);
    float[] dkv = floats(be, dk);
    float[] dvv = floats(be, dv);
    for (int d = 0; d < 8; d++) {
      assertEquals(0f, dqv[d], "padding query gradient");
    }
    for (int d = 0; d < 4; d++) {
      assertEquals(0f, dkv[d], "padding key gradient");
      assertEquals(0f, dvv[d], "padding value gradient");
    }
  }

  @Test
  void kvCacheDecodingWithFewerQueries() {
    check("Tq < Tk", new Case(2, 3, 10, 6, 2, 4, 0, null), 5);
    check("Tq < Tk window", new Case(1, 4, 11, 4, 1, 6, 5, null), 6);
    check("one query", new Case(1, 1, 5, 2, 1, 4, 0, null), 7);
  }

  @Test
  void singleToken() {
    check("single token", new Case(1, 1, 1, 3, 3, 8, 0, null), 8);
  }

  @Test
  void largerHeadsAcrossTaskBlocksAgainstTheAnalyticBackward() {
    // 40 queries span three 16-row task blocks, hd = 64, packed documents with padding and a
    // window: the backward against the textbook gradient of softmax attention in double.
    int t = 40;
    int[] doc = new int[2 * t];
    for (int i = 0; i < doc.length; i++) {
      doc[i] = i < 23 ? 0 : i < 37 ? 1 : i < 40 ? -1 : 3;
    }
    Case c = new Case(2, t, t, 4, 2, 64, 17, doc);
    Random r = new Random(10);
    float[] q = randn(r, 2 * t * 4 * 64, 1);
    float[] k = randn(r, 2 * t * 2 * 64, 1);
    float[] v = randn(r, 2 * t * 2 * 64, 1);
    float[] g = randn(r, 2 * t * 4 * 64, 1);
    Tensor qt = f32(be, q, 2 * t, 4, 64);
    Tensor kt = f32(be, k, 2 * t, 2, 64);
    Tensor vt = f32(be, v, 2 * t, 2, 64);
    Tensor out = poisoned(be, 2 * t, 4, 64);
    Tensor lse = poisoned(be, 2 * t, 4);
    be.attentionForward(qt, kt, vt, c.spec(), out, lse);
    double[] qd = CpuTesting.toDouble(q);
    double[] kd = CpuTesting.toDouble(k);
    double[] vd = CpuTesting.toDouble(v);
    double[][] want = c.naive(qd, kd, vd);
    assertClose("large out", want[0], floats(be, out), 1e-5, 1e-6);
    assertClose("large lse", want[1], floats(be, lse), 1e-6, 1e-6);
    Tensor dq = poisoned(be, 2 * t, 4, 64);
    Tensor dk = poisoned(be, 2 * t, 2, 64);
    Tensor dv = poisoned(be, 2 * t, 2, 64);
    be.attentionBackward(f32(be, g, 2 * t, 4, 64), qt, kt, vt, out, lse, c.spec(), dq, dk, dv);
    double[][] grads = c.analyticBackward(qd, kd, vd, g);
    assertNormClose("large dq", grads[0], floats(be, dq), 1e-5);
    assertNormClose("large dk", grads[1], floats(be, dk), 1e-5);
    assertNormClose("large dv", grads[2], floats(be, dv), 1e-5);
    assertClose("large dq elementwise", grads[0], floats(be, dq), 1e-3, 1e-5);
    assertClose("large dk elementwise", grads[1], floats(be, dk), 1e-3, 1e-5);
    assertClose("large dv elementwise", grads[2], floats(be, dv), 1e-3, 1e-5);
  }
}
