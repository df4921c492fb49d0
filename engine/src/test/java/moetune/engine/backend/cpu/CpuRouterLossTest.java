package moetune.engine.backend.cpu;

import static moetune.engine.backend.cpu.CpuTesting.assertClose;
import static moetune.engine.backend.cpu.CpuTesting.f32;
import static moetune.engine.backend.cpu.CpuTesting.floats;
import static moetune.engine.backend.cpu.CpuTesting.i32;
import static moetune.engine.backend.cpu.CpuTesting.ints;
import static moetune.engine.backend.cpu.CpuTesting.poisoned;
import static moetune.engine.backend.cpu.CpuTesting.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import moetune.engine.backend.AdamWCoefficients;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Router, losses and optimizer forward values against naive formulas written here. */
class CpuRouterLossTest {
  static CpuBackend be;

  @BeforeAll
  static void start() {
    be = new CpuBackend(2);
  }

  @AfterAll
  static void stop() {
    be.close();
  }

  static double[] softmax(double[] x, int off, int n) {
    double max = Double.NEGATIVE_INFINITY;
    for (int i = 0; i < n; i++) {
      max = Math.max(max, x[off + i]);
    }
    double sum = 0;
    double[] p = new double[n];
    for (int i = 0; i < n; i++) {
      p[i] = Math.exp(x[off + i] - max);
      sum += p[i];
    }
    for (int i = 0; i < n; i++) {
      p[i] /= sum;
    }
    return p;
  }

  /**
   * {probs (N*E), topWeights (N*K), topIdx (N*K) as doubles}: sort by prob, ties to lower index.
   */
  static double[][] naiveTopK(double[] logits, int n, int e, int k) {
    double[] probs = new double[n * e];
    double[] w = new double[n * k];
    double[] idx = new double[n * k];
    for (int t = 0; t < n; t++) {
      double[] p = softmax(logits, t * e, e);
      System.arraycopy(p, 0, probs, t * e, e);
      Integer[] order = new Integer[e];
      for (int x = 0; x < e; x++) {
        order[x] = x;
      }
      java.util.Arrays.sort(order, (a, b) -> p[a] != p[b] ? Double.compare(p[b], p[a]) : a - b);
      double s = 0;
      for (int j = 0; j < k; j++) {
        s += p[order[j]];
      }
      for (int j = 0; j < k; j++) {
        idx[t * k + j] = order[j];
        w[t * k + j] = p[order[j]] / s;
      }
    }
    return new double[][] {probs, w, idx};
  }

  @Test
  void routerTopKMatchesSoftmaxSortRenormalise() {
    Random r = new Random(1);
    int n = 37;
    int e = 5;
    int k = 3;
    float[] logits = randn(r, n * e, 2);
    // Row 0 ties everywhere, row 1 ties for second place: the lower index wins.
    for (int x = 0; x < e; x++) {
      logits[x] = 0.5f;
    }
    logits[5] = 3f;
    logits[6] = 1f;
    logits[7] = 2f;
    logits[8] = 2f;
    logits[9] = -1f;
    Tensor probs = poisoned(be, n, e);
    Tensor w = poisoned(be, n, k);
    Tensor idx = be.empty(DType.I32, n, k);
    be.fill(idx, -1);
    be.routerTopK(f32(be, logits, n, e), k, probs, w, idx);
    double[][] want = naiveTopK(CpuTesting.toDouble(logits), n, e, k);
    assertClose("probs", want[0], floats(be, probs), 1e-6, 1e-7);
    assertClose("topWeights", want[1], floats(be, w), 1e-6, 1e-7);
    int[] got = ints(be, idx);
    for (int i = 0; i < n * k; i++) {
      assertEquals((int) want[2][i], got[i], "topIdx[" + i / k + ", " + i % k + "]");
    }
    assertArrayEquals(new int[] {0, 1, 2, 0, 2, 3}, java.util.Arrays.copyOf(got, 6));
  }

  @Test
  void crossEntropyWithIgnoredRowsAndInPlaceGradient() {
    Random r = new Random(2);
    int n = 37;
    int v = 300;
    float[] logits = randn(r, n * v, 3);
    int[] targets = new int[n];
    for (int i = 0; i < n; i++) {
      targets[i] = i % 5 == 0 ? -100 : r.nextInt(v);
    }
    targets[n - 1] = v - 1;
    float dScale = 1f / 29;
    double[] wantLoss = new double[n];
    double[] wantGrad = new double[n * v];
    for (int i = 0; i < n; i++) {
      if (targets[i] == -100) {
        continue;
      }
      double[] p = softmax(CpuTesting.toDouble(logits), i * v, v);
      wantLoss[i] = -Math.log(p[targets[i]]);
      for (int c = 0; c < v; c++) {
        wantGrad[i * v + c] = dScale * (p[c] - (c == targets[i] ? 1 : 0));
      }
    }
    Tensor lt = f32(be, logits, n, v);
    Tensor losses = poisoned(be, n);
    Tensor grad = poisoned(be, n, v);
    be.crossEntropy(lt, i32(be, targets, n), losses, grad, dScale);
    assertClose("CE losses", wantLoss, floats(be, losses), 1e-6, 1e-6);
    assertClose("CE dLogits", wantGrad, floats(be, grad), 1e-5, 1e-9);
    be.crossEntropy(lt, i32(be, targets, n), losses, null, dScale);
    assertClose("CE without gradient", wantLoss, floats(be, losses), 1e-6, 1e-6);
    be.crossEntropy(lt, i32(be, targets, n), losses, lt, dScale); // dLogits aliases logits
    assertClose("CE in-place dLogits", wantGrad, floats(be, lt), 1e-5, 1e-9);
    IllegalArgumentException bad =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                be.crossEntropy(
                    f32(be, logits, n, v), i32(be, new int[n - 1], n - 1), losses, null, 1));
    assertTrue(bad.getMessage().startsWith("crossEntropy: targets"), bad.getMessage());
    int[] outOfRange = targets.clone();
    outOfRange[3] = v;
    assertThrows(
        IllegalArgumentException.class,
        () -> be.crossEntropy(f32(be, logits, n, v), i32(be, outOfRange, n), losses, null, 1));
  }

  /**
   * transformers' load_balancing_loss_func, transcribed: expert_mask one_hot (R, K, E);
   * tokens_per_expert (K, E) and router_prob_per_expert (E) as (masked) means over rows; loss = E *
   * sum(tokens_per_expert * router_prob_per_expert).
   */
  static double hfLoadBalancing(double[] probs, int[] top, double[] mask, int rows, int e, int k) {
    double[][] tokensPerExpert = new double[k][e];
    double[] probPerExpert = new double[e];
    double denom = 0;
    for (int r = 0; r < rows; r++) {
      double m = mask == null ? 1 : mask[r];
      denom += m;
      for (int j = 0; j < k; j++) {
        tokensPerExpert[j][top[r * k + j]] += m;
      }
      for (int x = 0; x < e; x++) {
        probPerExpert[x] += m * probs[r * e + x];
      }
    }
    double loss = 0;
    for (int j = 0; j < k; j++) {
      for (int x = 0; x < e; x++) {
        loss += (tokensPerExpert[j][x] / denom) * (probPerExpert[x] / denom);
      }
    }
    return loss * e;
  }

  @Test
  void loadBalancingLossWithAndWithoutMask() {
    Random r = new Random(3);
    int rows = 2 * 37; // two layers of 37 tokens
    int e = 5;
    int k = 3;
    double[][] routed = naiveTopK(CpuTesting.toDouble(randn(r, rows * e, 1)), rows, e, k);
    float[] probs = new float[rows * e];
    for (int i = 0; i < probs.length; i++) {
      probs[i] = (float) routed[0][i];
    }
    int[] top = new int[rows * k];
    for (int i = 0; i < top.length; i++) {
      top[i] = (int) routed[2][i];
    }
    double[] mask = new double[rows];
    float[] maskF = new float[rows];
    for (int i = 0; i < rows; i++) {
      mask[i] = maskF[i] = i % 37 < 30 ? 1 : 0;
    }
    Tensor loss = poisoned(be, 1);
    Tensor dProbs = poisoned(be, rows, e);
    float dScale = 0.02f;
    for (boolean masked : new boolean[] {false, true}) {
      be.loadBalancingLoss(
          f32(be, probs, rows, e),
          i32(be, top, rows, k),
          masked ? f32(be, maskF, rows) : null,
          loss,
          dProbs,
          dScale);
      double want =
          hfLoadBalancing(CpuTesting.toDouble(probs), top, masked ? mask : null, rows, e, k);
      assertClose("aux loss masked=" + masked, new double[] {want}, floats(be, loss), 1e-6, 0);
      double[] wantGrad =
          CpuTesting.numericGrad(
              CpuTesting.toDouble(probs),
              1e-6,
              p -> dScale * hfLoadBalancing(p, top, masked ? mask : null, rows, e, k));
      assertClose("aux dProbs masked=" + masked, wantGrad, floats(be, dProbs), 1e-6, 1e-9);
    }
  }

  @Test
  void routerZLossAccumulatesItsGradient() {
    Random r = new Random(4);
    int rows = 37;
    int e = 5;
    float[] logits = randn(r, rows * e, 2);
    float[] maskF = new float[rows];
    for (int i = 0; i < rows; i++) {
      maskF[i] = i % 4 == 3 ? 0 : 1;
    }
    for (boolean masked : new boolean[] {false, true}) {
      java.util.function.ToDoubleFunction<double[]> z =
          l -> {
            double s = 0;
            double sum = 0;
            for (int i = 0; i < rows; i++) {
              double m = masked ? maskF[i] : 1;
              double max = Double.NEGATIVE_INFINITY;
              for (int x = 0; x < e; x++) {
                max = Math.max(max, l[i * e + x]);
              }
              double se = 0;
              for (int x = 0; x < e; x++) {
                se += Math.exp(l[i * e + x] - max);
              }
              double lse = max + Math.log(se);
              sum += m * lse * lse;
              s += m;
            }
            return sum / s;
          };
      float[] d0 = randn(r, rows * e, 1);
      Tensor dLogits = f32(be, d0, rows, e);
      Tensor loss = poisoned(be, 1);
      float dScale = 1e-3f;
      be.routerZLoss(
          f32(be, logits, rows, e), masked ? f32(be, maskF, rows) : null, loss, dLogits, dScale);
      assertClose(
          "z-loss",
          new double[] {z.applyAsDouble(CpuTesting.toDouble(logits))},
          floats(be, loss),
          1e-6,
          0);
      double[] want = CpuTesting.numericGrad(CpuTesting.toDouble(logits), 1e-6, z);
      for (int i = 0; i < want.length; i++) {
        want[i] = d0[i] + dScale * want[i];
      }
      assertClose("z-loss dLogits += masked=" + masked, want, floats(be, dLogits), 1e-6, 1e-9);
    }
  }

  @Test
  void sumSumSquaresAndClipping() {
    Random r = new Random(5);
    int n = 100_003;
    float[] x = randn(r, n, 1);
    double s = 0;
    double ss = 0;
    for (float v : x) {
      s += v;
      ss += (double) v * v;
    }
    Tensor xt = f32(be, x, n);
    Tensor out = poisoned(be, 1);
    be.sum(xt, 0.25f, out);
    assertClose("sum", new double[] {0.25 * s}, floats(be, out), 1e-6, 1e-6);
    Tensor acc = f32(be, new float[] {2f}, 1);
    be.sumSquares(xt, acc);
    assertClose("sumSquares +=", new double[] {2 + ss}, floats(be, acc), 1e-6, 0);

    // Clipping to a norm below the current one scales by maxNorm / (norm + 1e-6).
    float[] g = randn(r, 1000, 1);
    double norm2 = 0;
    for (float v : g) {
      norm2 += (double) v * v;
    }
    Tensor gt = f32(be, g, 1000);
    be.clipByNorm(gt, f32(be, new float[] {(float) norm2}, 1), 1f);
    double coef = 1 / (Math.sqrt(norm2) + 1e-6);
    double[] want = new double[g.length];
    for (int i = 0; i < g.length; i++) {
      want[i] = g[i] * coef;
    }
    assertClose("clip", want, floats(be, gt), 1e-6, 0);
    // Below the limit the coefficient clamps to 1: the gradient is unchanged.
    Tensor g2 = f32(be, g, 1000);
    be.clipByNorm(g2, f32(be, new float[] {(float) norm2}, 1), 1e6f);
    assertArrayEquals(g, floats(be, g2));
  }

  @Test
  void adamwFollowsTheDecoupledFormulaOverSteps() {
    Random r = new Random(6);
    int n = 40_000;
    float[] p = randn(r, n, 1);
    double[] pd = CpuTesting.toDouble(p);
    double[] md = new double[n];
    double[] vd = new double[n];
    Tensor pt = f32(be, p, n);
    Tensor mt = be.zeros(DType.F32, n);
    Tensor vt = be.zeros(DType.F32, n);
    Tensor low = poisoned(be, n);
    double lr = 1e-3;
    double b1 = 0.9;
    double b2 = 0.95;
    double eps = 1e-8;
    double wd = 0.1;
    for (int step = 1; step <= 3; step++) {
      float[] g = randn(r, n, 1);
      g[0] = 0f; // a zero gradient: only decay and momentum move it
      be.adamwStep(
          pt,
          f32(be, g, n),
          mt,
          vt,
          AdamWCoefficients.of(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step),
          low);
      for (int i = 0; i < n; i++) {
        pd[i] -= lr * wd * pd[i];
        md[i] = b1 * md[i] + (1 - b1) * g[i];
        vd[i] = b2 * vd[i] + (1 - b2) * g[i] * g[i];
        pd[i] -=
            (lr / (1 - Math.pow(b1, step)))
                * md[i]
                / (Math.sqrt(vd[i]) / Math.sqrt(1 - Math.pow(b2, step)) + eps);
      }
      assertClose("adamw param step " + step, pd, floats(be, pt), 1e-6, 1e-8);
      // m = 0.9 m + 0.1 g cancels: float32 rounding of the two terms (|0.1 g| ~ 0.1) leaves
      // an absolute error of a few 1e-9, so an absolute floor of 1e-7 is float32's resolution.
      assertClose("adamw m step " + step, md, floats(be, mt), 1e-6, 1e-7);
      assertClose("adamw v step " + step, vd, floats(be, vt), 1e-5, 1e-12);
      assertArrayEquals(floats(be, pt), floats(be, low), "low-precision copy");
    }
  }
}
