package moetune.engine.backend.cpu;

import static moetune.engine.backend.cpu.CpuTesting.assertNormClose;
import static moetune.engine.backend.cpu.CpuTesting.f32;
import static moetune.engine.backend.cpu.CpuTesting.floats;
import static moetune.engine.backend.cpu.CpuTesting.i32;
import static moetune.engine.backend.cpu.CpuTesting.numericGrad;
import static moetune.engine.backend.cpu.CpuTesting.poisoned;
import static moetune.engine.backend.cpu.CpuTesting.randn;
import static moetune.engine.backend.cpu.CpuTesting.toDouble;

import java.util.Random;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Every remaining backward op against central finite differences of a naive double-precision
 * forward (attention and the ScatterMoE chain have their own test classes). The scalar
 * differentiated is L = sum(out * G) for a random G, so the backward receives dOut = G. With steps
 * of 1e-6 in double the differences are exact to ~1e-9; the tolerances (1e-5 of the norm) leave
 * room for the backend's float32 arithmetic only.
 */
class CpuGradientTest {
  static CpuBackend be;

  @BeforeAll
  static void start() {
    be = new CpuBackend(2);
  }

  @AfterAll
  static void stop() {
    be.close();
  }

  private static double[] plus(float[] base, double[] delta) {
    double[] out = new double[delta.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = base[i] + delta[i];
    }
    return out;
  }

  /** rmsnorm in double: w * x / sqrt(mean(x^2) + eps). */
  private static double[] rmsnorm(double[] x, double[] w, int n, int d, double eps) {
    double[] out = new double[n * d];
    for (int i = 0; i < n; i++) {
      double ss = 0;
      for (int c = 0; c < d; c++) {
        ss += x[i * d + c] * x[i * d + c];
      }
      double r = 1 / Math.sqrt(ss / d + eps);
      for (int c = 0; c < d; c++) {
        out[i * d + c] = w[c] * x[i * d + c] * r;
      }
    }
    return out;
  }

  @Test
  void rmsnormBackward() {
    Random r = new Random(1);
    int n = 37;
    int d = 100;
    float eps = 1e-5f;
    float[] x = randn(r, n * d, 1);
    float[] w = randn(r, d, 1);
    float[] g = randn(r, n * d, 1);
    float[] dx0 = randn(r, n * d, 1);
    float[] dw0 = randn(r, d, 1);
    Tensor out = poisoned(be, n, d);
    Tensor rstd = poisoned(be, n);
    Tensor xt = f32(be, x, n, d);
    Tensor wt = f32(be, w, d);
    be.rmsnormForward(xt, null, wt, eps, out, rstd);
    Tensor dx = f32(be, dx0, n, d);
    Tensor dw = f32(be, dw0, d);
    be.rmsnormBackward(f32(be, g, n, d), xt, wt, rstd, dx, dw);
    double[] wd = toDouble(w);
    double[] xd = toDouble(x);
    double[] wantDx = numericGrad(xd, 1e-6, v -> CpuTesting.dot(rmsnorm(v, wd, n, d, eps), g));
    double[] wantDw = numericGrad(wd, 1e-6, v -> CpuTesting.dot(rmsnorm(xd, v, n, d, eps), g));
    // dx and dw accumulate (+=) onto their starting values.
    assertNormClose("rmsnorm dx", plus(dx0, wantDx), floats(be, dx), 1e-6);
    assertNormClose("rmsnorm dw", plus(dw0, wantDw), floats(be, dw), 1e-6);
    // A frozen weight: dw null.
    Tensor dx2 = be.zeros(DType.F32, n, d);
    be.rmsnormBackward(f32(be, g, n, d), xt, wt, rstd, dx2, null);
    assertNormClose("rmsnorm dx, frozen w", wantDx, floats(be, dx2), 1e-5);
  }

  @Test
  void ropeBackwardIsTheTransposeOfTheForward() {
    Random r = new Random(2);
    int n = 9;
    int heads = 2;
    int hd = 6;
    float theta = 10000f;
    int[] pos = {0, 1, 2, 3, 4, 50, 600, 7000, 8};
    float[] x = randn(r, n * heads * hd, 1);
    float[] g = randn(r, n * heads * hd, 1);
    Tensor gt = f32(be, g, n, heads, hd);
    be.ropeBackward(gt, i32(be, pos, n), theta);
    // rope is linear in x, so a central difference with a step of 1 is exact; the naive
    // transformers formula takes float input, and x +- 1 is representable to float precision.
    double[] want =
        numericGrad(
            x, 1f, v -> CpuTesting.dot(CpuDenseOpsTest.hfRope(v, pos, heads, hd, theta, false), g));
    assertNormClose("ropeBackward", want, floats(be, gt), 1e-6);
  }

  @Test
  void swigluBackward() {
    Random r = new Random(3);
    int m = 37;
    int f = 80;
    float[] h = randn(r, m * 2 * f, 2);
    float[] g = randn(r, m * f, 1);
    Tensor dh = poisoned(be, m, 2 * f);
    be.swigluBackward(f32(be, g, m, f), f32(be, h, m, 2 * f), dh);
    double[] want = swigluGradient(h, g, m, f);
    assertNormClose("swigluBackward", want, floats(be, dh), 1e-6);
    // dH may alias h.
    Tensor inPlace = f32(be, h, m, 2 * f);
    be.swigluBackward(f32(be, g, m, f), inPlace, inPlace);
    assertNormClose("swigluBackward in place", want, floats(be, inPlace), 1e-6);
  }

  /**
   * d loss / d h by finite differences for loss = sum(silu(gate) * up * g), h (m, 2f) = [gate |
   * up], g (m, f): the gradient both SwiGLU backwards must give.
   */
  private static double[] swigluGradient(float[] h, float[] g, int m, int f) {
    return numericGrad(
        toDouble(h),
        1e-6,
        v -> {
          double s = 0;
          for (int i = 0; i < m; i++) {
            for (int j = 0; j < f; j++) {
              double gate = v[i * 2 * f + j];
              s += gate / (1 + Math.exp(-gate)) * v[i * 2 * f + f + j] * g[i * f + j];
            }
          }
          return s;
        });
  }

  /**
   * The factors path (variant 56): swigluFactors leaves swigluForward's a and, in h's place, the
   * factors from which swigluBackwardFactors gives the same gradient as the numeric one.
   */
  @Test
  void swigluFactorsGiveTheGradient() {
    Random r = new Random(4);
    int m = 29;
    int f = 72;
    float[] h = randn(r, m * 2 * f, 2);
    float[] g = randn(r, m * f, 1);
    Tensor a = poisoned(be, m, f);
    be.swigluForward(f32(be, h, m, 2 * f), a);
    Tensor p = f32(be, h, m, 2 * f);
    Tensor a2 = poisoned(be, m, f);
    be.swigluFactors(p, a2);
    org.junit.jupiter.api.Assertions.assertArrayEquals(
        floats(be, a), floats(be, a2), "swigluFactors' a is swigluForward's");
    double[] want = swigluGradient(h, g, m, f);
    Tensor dh = poisoned(be, m, 2 * f);
    be.swigluBackwardFactors(f32(be, g, m, f), p, dh);
    assertNormClose("swigluBackwardFactors", want, floats(be, dh), 1e-6);
    be.swigluBackwardFactors(f32(be, g, m, f), p, p); // dH may alias the factors
    assertNormClose("swigluBackwardFactors in place", want, floats(be, p), 1e-6);
  }

  @Test
  void embeddingBackward() {
    Random r = new Random(4);
    int v = 7;
    int d = 5;
    int[] ids = {6, 0, 6, 2, 6, 0};
    float[] table = randn(r, v * d, 1);
    float[] g = randn(r, ids.length * d, 1);
    Tensor dTable = be.zeros(DType.F32, v, d);
    be.embeddingBackward(i32(be, ids, ids.length), f32(be, g, ids.length, d), dTable);
    double[] want =
        numericGrad(
            toDouble(table),
            1e-6,
            t -> {
              double s = 0;
              for (int n = 0; n < ids.length; n++) {
                for (int c = 0; c < d; c++) {
                  s += t[ids[n] * d + c] * g[n * d + c];
                }
              }
              return s;
            });
    assertNormClose("embeddingBackward", want, floats(be, dTable), 1e-6);
  }

  @Test
  void crossEntropyGradient() {
    Random r = new Random(5);
    int n = 6;
    int v = 11;
    float[] logits = randn(r, n * v, 2);
    int[] targets = {3, -100, 10, 0, -100, 7};
    float dScale = 0.25f;
    Tensor losses = poisoned(be, n);
    Tensor grad = poisoned(be, n, v);
    be.crossEntropy(f32(be, logits, n, v), i32(be, targets, n), losses, grad, dScale);
    double[] want =
        numericGrad(
            toDouble(logits),
            1e-6,
            l -> {
              double s = 0;
              for (int i = 0; i < n; i++) {
                if (targets[i] == -100) {
                  continue;
                }
                double max = Double.NEGATIVE_INFINITY;
                for (int c = 0; c < v; c++) {
                  max = Math.max(max, l[i * v + c]);
                }
                double se = 0;
                for (int c = 0; c < v; c++) {
                  se += Math.exp(l[i * v + c] - max);
                }
                s += max + Math.log(se) - l[i * v + targets[i]];
              }
              return dScale * s;
            });
    assertNormClose("crossEntropy dLogits", want, floats(be, grad), 1e-6);
  }

  @Test
  void routerBackwardThroughSoftmaxTopKAndRenormalisation() {
    Random r = new Random(6);
    int n = 37;
    int e = 5;
    int k = 3;
    // Logits on a grid 0.5 apart (plus noise far below it): no near-ties, so the top-k choice
    // is the same at every finite-difference step.
    float[] logits = new float[n * e];
    for (int t = 0; t < n; t++) {
      int[] perm = {0, 1, 2, 3, 4};
      for (int i = e - 1; i > 0; i--) {
        int j = r.nextInt(i + 1);
        int tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
      }
      for (int x = 0; x < e; x++) {
        logits[t * e + x] = 0.5f * perm[x] + (float) (0.01 * r.nextGaussian());
      }
    }
    float[] dW = randn(r, n * k, 1);
    float[] dP = randn(r, n * e, 1);
    Tensor probs = poisoned(be, n, e);
    Tensor topW = poisoned(be, n, k);
    Tensor topI = be.empty(DType.I32, n, k);
    be.routerTopK(f32(be, logits, n, e), k, probs, topW, topI);
    double[][] routed = CpuRouterLossTest.naiveTopK(toDouble(logits), n, e, k);
    for (boolean withDp : new boolean[] {false, true}) {
      for (boolean withDw : new boolean[] {false, true}) {
        if (!withDp && !withDw) {
          continue;
        }
        Tensor dLogits = poisoned(be, n, e);
        be.routerBackward(
            withDw ? f32(be, dW, n, k) : null,
            withDp ? f32(be, dP, n, e) : null,
            probs,
            topI,
            dLogits);
        double[] want =
            numericGrad(
                toDouble(logits),
                1e-6,
                l -> {
                  double[][] rt = CpuRouterLossTest.naiveTopK(l, n, e, k);
                  for (int i = 0; i < n * k; i++) {
                    if (rt[2][i] != routed[2][i]) {
                      throw new AssertionError(
                          "top-k choice changed under a finite-difference step");
                    }
                  }
                  double s = 0;
                  for (int i = 0; withDw && i < n * k; i++) {
                    s += rt[1][i] * dW[i];
                  }
                  for (int i = 0; withDp && i < n * e; i++) {
                    s += rt[0][i] * dP[i];
                  }
                  return s;
                });
        assertNormClose(
            "routerBackward dW=" + withDw + " dP=" + withDp, want, floats(be, dLogits), 1e-6);
      }
    }
  }

  @Test
  void auxLossGradientFlowsThroughTheRouter() {
    // d(coef * aux)/d logits: loadBalancingLoss's dProbs fed to routerBackward, with a row mask.
    Random r = new Random(7);
    int rows = 20;
    int e = 4;
    int k = 2;
    float[] logits = randn(r, rows * e, 1);
    float[] mask = new float[rows];
    double[] maskD = new double[rows];
    for (int i = 0; i < rows; i++) {
      mask[i] = i < 15 ? 1 : 0;
      maskD[i] = mask[i];
    }
    Tensor probs = poisoned(be, rows, e);
    Tensor topW = poisoned(be, rows, k);
    Tensor topI = be.empty(DType.I32, rows, k);
    be.routerTopK(f32(be, logits, rows, e), k, probs, topW, topI);
    Tensor dProbs = poisoned(be, rows, e);
    Tensor loss = poisoned(be, 1);
    float coef = 0.02f;
    be.loadBalancingLoss(probs, topI, f32(be, mask, rows), loss, dProbs, coef);
    Tensor dLogits = poisoned(be, rows, e);
    be.routerBackward(null, dProbs, probs, topI, dLogits);
    int[] top = CpuTesting.ints(be, topI);
    double[] want =
        numericGrad(
            toDouble(logits),
            1e-6,
            l -> {
              double[] p = CpuRouterLossTest.naiveTopK(l, rows, e, k)[0];
              return coef * CpuRouterLossTest.hfLoadBalancing(p, top, maskD, rows, e, k);
            });
    assertNormClose("aux loss dLogits", want, floats(be, dLogits), 1e-5);
  }
}
