package moetune.engine.backend.cpu;

import static moetune.engine.backend.cpu.CpuTesting.assertClose;
import static moetune.engine.backend.cpu.CpuTesting.assertNormClose;
import static moetune.engine.backend.cpu.CpuTesting.f32;
import static moetune.engine.backend.cpu.CpuTesting.floats;
import static moetune.engine.backend.cpu.CpuTesting.i32;
import static moetune.engine.backend.cpu.CpuTesting.ints;
import static moetune.engine.backend.cpu.CpuTesting.poisoned;
import static moetune.engine.backend.cpu.CpuTesting.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * ScatterMoE's ops against per-row loops, and a ParallelLinear-style expert MLP (two grouped
 * products with SwiGLU between, gated combine) whose backward, built from the same ops as
 * ScatterMoE's, is checked against finite differences of a naive per-token forward.
 */
class CpuScatterMoeTest {
  static CpuBackend be;

  @BeforeAll
  static void start() {
    be = new CpuBackend(2);
  }

  @AfterAll
  static void stop() {
    be.close();
  }

  /** Routing of N tokens to K distinct experts among the first `used` of E. */
  record Routing(
      int n, int k, int e, int[] topIdx, int[] sortedExp, int[] sortedScat, int[] offsets) {
    static Routing random(Random r, int n, int k, int e, int used) {
      int[] top = new int[n * k];
      for (int t = 0; t < n; t++) {
        List<Integer> experts = new ArrayList<>();
        for (int x = 0; x < used; x++) {
          experts.add(x);
        }
        Collections.shuffle(experts, r);
        for (int j = 0; j < k; j++) {
          top[t * k + j] = experts.get(j);
        }
      }
      return of(n, k, e, top);
    }

    /** The naive stable sort: scan experts in order, then flat indices in order. */
    static Routing of(int n, int k, int e, int[] top) {
      int m = n * k;
      int[] se = new int[m];
      int[] ss = new int[m];
      int[] off = new int[e];
      int p = 0;
      for (int x = 0; x < e; x++) {
        for (int s = 0; s < m; s++) {
          if (top[s] == x) {
            se[p] = x;
            ss[p] = s;
            p++;
          }
        }
        off[x] = p;
      }
      return new Routing(n, k, e, top, se, ss, off);
    }

    int m() {
      return n * k;
    }

    Tensor exp() {
      return i32(be, sortedExp, m());
    }

    Tensor scat() {
      return i32(be, sortedScat, m());
    }

    Tensor offs() {
      return i32(be, offsets, e);
    }
  }

  @Test
  void flattenSortCountIsAStableCountingSort() {
    Random r = new Random(1);
    for (Routing want :
        new Routing[] {
          Routing.random(r, 37, 3, 5, 4), // expert 4 receives nothing
          Routing.of(9, 1, 5, new int[] {2, 2, 2, 2, 2, 2, 2, 2, 2}), // all rows on one expert
          Routing.random(r, 1, 2, 4, 4)
        }) { // a single token
      Tensor se = be.empty(DType.I32, want.m());
      Tensor ss = be.empty(DType.I32, want.m());
      Tensor off = be.empty(DType.I32, want.e());
      be.fill(se, -7);
      be.fill(ss, -7);
      be.fill(off, -7);
      be.flattenSortCount(i32(be, want.topIdx(), want.n(), want.k()), want.e(), se, ss, off);
      assertArrayEquals(want.sortedExp(), ints(be, se));
      assertArrayEquals(want.sortedScat(), ints(be, ss));
      assertArrayEquals(want.offsets(), ints(be, off));
    }
    assertThrows(
        IllegalArgumentException.class,
        () ->
            be.flattenSortCount(
                i32(be, new int[] {0, 5}, 1, 2),
                5,
                be.empty(DType.I32, 2),
                be.empty(DType.I32, 2),
                be.empty(DType.I32, 5)));
  }

  @Test
  void scatter2scatterAllModesAgainstAPerRowLoop() {
    Random r = new Random(2);
    int in = 100;
    int out = 80;
    for (Routing rt :
        new Routing[] {
          Routing.random(r, 37, 3, 5, 4),
          Routing.of(20, 1, 5, new int[20]), // all rows on expert 0
          Routing.random(r, 1, 3, 5, 5)
        }) {
      int m = rt.m();
      int k = rt.k();
      for (boolean transW : new boolean[] {true, false}) {
        // transW: W (E, out, in), y = x W^T; otherwise W (E, in, out), y = x W.
        float[] w = randn(r, rt.e() * in * out, 0.1);
        Tensor wt = transW ? f32(be, w, rt.e(), out, in) : f32(be, w, rt.e(), in, out);
        for (boolean withBias : new boolean[] {false, true}) {
          float[] bias = withBias ? randn(r, rt.e() * out, 1) : null;
          for (boolean groupedIn : new boolean[] {false, true}) {
            for (boolean groupedOut : new boolean[] {false, true}) {
              int xRows = groupedIn ? m : rt.n();
              float[] x = randn(r, xRows * in, 1);
              Tensor y = poisoned(be, m, out);
              be.scatter2scatter(
                  f32(be, x, xRows, in),
                  wt,
                  withBias ? f32(be, bias, rt.e(), out) : null,
                  transW,
                  k,
                  rt.exp(),
                  rt.scat(),
                  groupedIn,
                  groupedOut,
                  y);
              double[] want = new double[m * out];
              for (int p = 0; p < m; p++) {
                int e = rt.sortedExp()[p];
                int s = rt.sortedScat()[p];
                int xr = groupedIn ? p : s / k;
                int yr = groupedOut ? p : s;
                for (int o = 0; o < out; o++) {
                  double acc = withBias ? bias[e * out + o] : 0;
                  for (int i = 0; i < in; i++) {
                    double wv = transW ? w[(e * out + o) * in + i] : w[(e * in + i) * out + o];
                    acc += x[xr * in + i] * wv;
                  }
                  want[yr * out + o] = acc;
                }
              }
              assertClose(
                  "scatter2scatter n="
                      + rt.n()
                      + " transW="
                      + transW
                      + " bias="
                      + withBias
                      + " groupedIn="
                      + groupedIn
                      + " groupedOut="
                      + groupedOut,
                  want,
                  floats(be, y),
                  1e-5,
                  1e-5);
            }
          }
        }
      }
    }
  }

  @Test
  void groupGroupXtYCombineAndGates() {
    Random r = new Random(3);
    Routing rt = Routing.random(r, 37, 3, 5, 4);
    int m = rt.m();
    int k = rt.k();
    int d = 100;
    int o = 80;
    float[] x = randn(r, rt.n() * d, 1);
    float[] gates = randn(r, m, 1);
    Tensor grouped = poisoned(be, m, d);
    be.group(f32(be, x, rt.n(), d), rt.scat(), k, f32(be, gates, m), grouped);
    double[] want = new double[m * d];
    for (int p = 0; p < m; p++) {
      int s = rt.sortedScat()[p];
      for (int c = 0; c < d; c++) {
        want[p * d + c] = (double) x[(s / k) * d + c] * gates[s];
      }
    }
    assertClose("group gated", want, floats(be, grouped), 1e-7, 0);
    be.group(f32(be, x, rt.n(), d), rt.scat(), k, null, grouped);
    for (int p = 0; p < m; p++) {
      for (int c = 0; c < d; c++) {
        want[p * d + c] = x[(rt.sortedScat()[p] / k) * d + c];
      }
    }
    assertClose("group", want, floats(be, grouped), 0, 0);

    // groupXtY accumulates into non-zero dW and db; the empty expert 4 is left unchanged.
    float[] xg = randn(r, m * d, 1);
    float[] dy = randn(r, m * o, 1);
    float[] dw0 = randn(r, rt.e() * o * d, 1);
    float[] db0 = randn(r, rt.e() * o, 1);
    Tensor dw = f32(be, dw0, rt.e(), o, d);
    Tensor db = f32(be, db0, rt.e(), o);
    be.groupXtY(f32(be, xg, m, d), f32(be, dy, m, o), rt.offs(), dw, db);
    double[] wantW = CpuTesting.toDouble(dw0);
    double[] wantB = CpuTesting.toDouble(db0);
    for (int p = 0; p < m; p++) {
      int e = rt.sortedExp()[p];
      for (int a = 0; a < o; a++) {
        wantB[e * o + a] += dy[p * o + a];
        for (int c = 0; c < d; c++) {
          wantW[(e * o + a) * d + c] += (double) dy[p * o + a] * xg[p * d + c];
        }
      }
    }
    assertClose("groupXtY dW", wantW, floats(be, dw), 1e-5, 1e-5);
    assertClose("groupXtY db", wantB, floats(be, db), 1e-5, 1e-5);

    float[] expanded = randn(r, m * d, 1);
    float[] g2 = randn(r, m, 1);
    Tensor y = poisoned(be, rt.n(), d);
    be.combine(f32(be, expanded, m, d), f32(be, g2, rt.n(), k), k, y);
    double[] wantY = new double[rt.n() * d];
    for (int n = 0; n < rt.n(); n++) {
      for (int j = 0; j < k; j++) {
        for (int c = 0; c < d; c++) {
          wantY[n * d + c] += (double) g2[n * k + j] * expanded[(n * k + j) * d + c];
        }
      }
    }
    assertClose("combine", wantY, floats(be, y), 1e-6, 1e-6);
    be.combine(f32(be, expanded, m, d), null, k, y);
    for (int n = 0; n < rt.n(); n++) {
      for (int c = 0; c < d; c++) {
        wantY[n * d + c] = 0;
        for (int j = 0; j < k; j++) {
          wantY[n * d + c] += expanded[(n * k + j) * d + c];
        }
      }
    }
    assertClose("combine ungated", wantY, floats(be, y), 1e-6, 1e-6);

    float[] dY = randn(r, rt.n() * d, 1);
    Tensor dg = poisoned(be, rt.n(), k);
    be.combineGatesBackward(f32(be, dY, rt.n(), d), f32(be, expanded, m, d), k, dg);
    double[] wantG = new double[m];
    for (int n = 0; n < rt.n(); n++) {
      for (int j = 0; j < k; j++) {
        for (int c = 0; c < d; c++) {
          wantG[n * k + j] += (double) dY[n * d + c] * expanded[(n * k + j) * d + c];
        }
      }
    }
    assertClose("combineGatesBackward", wantG, floats(be, dg), 1e-6, 1e-6);
  }

  /** The expert MLP's parameters and input, in double for the naive forward. */
  record Mlp(
      Routing rt, int d, int f, double[] x, double[] w1, double[] b1, double[] w2, double[] gates) {
    /**
     * y[n] = sum_j g[n, j] * W2[e] (silu(W1[e][:F] x + b1[e][:F]) * (W1[e][F:] x + b1[e][F:])) with
     * e = topIdx[n, j]. W1 (E, 2F, D), b1 (E, 2F), W2 (E, D, F), gates (N, K).
     */
    double[] forward(double[] x, double[] w1, double[] b1, double[] w2, double[] gates) {
      int n = rt.n();
      int k = rt.k();
      double[] y = new double[n * d];
      for (int t = 0; t < n; t++) {
        for (int j = 0; j < k; j++) {
          int e = rt.topIdx()[t * k + j];
          double[] h = new double[2 * f];
          for (int a = 0; a < 2 * f; a++) {
            h[a] = b1[e * 2 * f + a];
            for (int c = 0; c < d; c++) {
              h[a] += w1[(e * 2 * f + a) * d + c] * x[t * d + c];
            }
          }
          double[] act = new double[f];
          for (int a = 0; a < f; a++) {
            act[a] = h[a] / (1 + Math.exp(-h[a])) * h[f + a];
          }
          for (int c = 0; c < d; c++) {
            double acc = 0;
            for (int a = 0; a < f; a++) {
              acc += w2[(e * d + c) * f + a] * act[a];
            }
            y[t * d + c] += gates[t * k + j] * acc;
          }
        }
      }
      return y;
    }
  }

  @Test
  void expertMlpBackwardMatchesFiniteDifferences() {
    Random r = new Random(4);
    for (Routing rt :
        new Routing[] {
          Routing.random(r, 7, 3, 5, 4), // top-3 of 5, expert 4 empty
          Routing.of(5, 1, 3, new int[] {1, 1, 1, 1, 1}), // every row on one expert
          Routing.random(r, 1, 2, 4, 4)
        }) { // a single token
      checkMlp(rt, 10, 6, r);
    }
  }

  private void checkMlp(Routing rt, int d, int f, Random r) {
    int n = rt.n();
    int k = rt.k();
    int e = rt.e();
    int m = rt.m();
    float[] x = randn(r, n * d, 1);
    float[] w1 = randn(r, e * 2 * f * d, 0.5);
    float[] b1 = randn(r, e * 2 * f, 0.5);
    float[] w2 = randn(r, e * d * f, 0.5);
    float[] gates = randn(r, n * k, 1);
    float[] dyv = randn(r, n * d, 1);
    Mlp mlp =
        new Mlp(
            rt,
            d,
            f,
            CpuTesting.toDouble(x),
            CpuTesting.toDouble(w1),
            CpuTesting.toDouble(b1),
            CpuTesting.toDouble(w2),
            CpuTesting.toDouble(gates));

    // Forward, as ScatterMoE's MLP: h grouped, a grouped, expert outputs scattered, combine.
    Tensor xt = f32(be, x, n, d);
    Tensor w1t = f32(be, w1, e, 2 * f, d);
    Tensor b1t = f32(be, b1, e, 2 * f);
    Tensor w2t = f32(be, w2, e, d, f);
    Tensor gt = f32(be, gates, n, k);
    Tensor h = poisoned(be, m, 2 * f);
    be.scatter2scatter(xt, w1t, b1t, true, k, rt.exp(), rt.scat(), false, true, h);
    Tensor a = poisoned(be, m, f);
    be.swigluForward(h, a);
    Tensor expanded = poisoned(be, m, d);
    be.scatter2scatter(a, w2t, null, true, 1, rt.exp(), rt.scat(), true, false, expanded);
    Tensor y = poisoned(be, n, d);
    be.combine(expanded, gt, k, y);
    assertClose(
        "mlp forward",
        mlp.forward(mlp.x(), mlp.w1(), mlp.b1(), mlp.w2(), mlp.gates()),
        floats(be, y),
        1e-5,
        1e-6);

    // Backward with the same three kernels.
    Tensor dy = f32(be, dyv, n, d);
    Tensor dGates = poisoned(be, n, k);
    be.combineGatesBackward(dy, expanded, k, dGates);
    Tensor dExp = poisoned(be, m, d); // grouped
    be.group(dy, rt.scat(), k, gt, dExp);
    Tensor dw2 = be.zeros(DType.F32, e, d, f);
    be.groupXtY(a, dExp, rt.offs(), dw2, null);
    Tensor dA = poisoned(be, m, f);
    be.scatter2scatter(dExp, w2t, null, false, 1, rt.exp(), rt.scat(), true, true, dA);
    Tensor dH = poisoned(be, m, 2 * f);
    be.swigluBackward(dA, h, dH);
    Tensor xGrouped = poisoned(be, m, d);
    be.group(xt, rt.scat(), k, null, xGrouped);
    Tensor dw1 = be.zeros(DType.F32, e, 2 * f, d);
    Tensor db1 = be.zeros(DType.F32, e, 2 * f);
    be.groupXtY(xGrouped, dH, rt.offs(), dw1, db1);
    Tensor dxExpanded = poisoned(be, m, d); // scattered
    be.scatter2scatter(dH, w1t, null, false, 1, rt.exp(), rt.scat(), true, false, dxExpanded);
    Tensor dx = poisoned(be, n, d);
    be.combine(dxExpanded, null, k, dx);

    double step = 1e-6;
    String name = "mlp n=" + n + " k=" + k;
    assertNormClose(
        name + " dx",
        CpuTesting.numericGrad(
            mlp.x(),
            step,
            v -> CpuTesting.dot(mlp.forward(v, mlp.w1(), mlp.b1(), mlp.w2(), mlp.gates()), dyv)),
        floats(be, dx),
        1e-5);
    assertNormClose(
        name + " dW1",
        CpuTesting.numericGrad(
            mlp.w1(),
            step,
            v -> CpuTesting.dot(mlp.forward(mlp.x(), v, mlp.b1(), mlp.w2(), mlp.gates()), dyv)),
        floats(be, dw1),
        1e-5);
    assertNormClose(
        name + " db1",
        CpuTesting.numericGrad(
            mlp.b1(),
            step,
            v -> CpuTesting.dot(mlp.forward(mlp.x(), mlp.w1(), v, mlp.w2(), mlp.gates()), dyv)),
        floats(be, db1),
        1e-5);
    assertNormClose(
        name + " dW2",
        CpuTesting.numericGrad(
            mlp.w2(),
            step,
            v -> CpuTesting.dot(mlp.forward(mlp.x(), mlp.w1(), mlp.b1(), v, mlp.gates()), dyv)),
        floats(be, dw2),
        1e-5);
    assertNormClose(
        name + " dGates",
        CpuTesting.numericGrad(
            mlp.gates(),
            step,
            v -> CpuTesting.dot(mlp.forward(mlp.x(), mlp.w1(), mlp.b1(), mlp.w2(), v), dyv)),
        floats(be, dGates),
        1e-5);
  }

  @Test
  void rejectsRoutingThatIsNotAPermutation() {
    Tensor x = be.zeros(DType.F32, 2, 4);
    Tensor w = be.zeros(DType.F32, 2, 3, 4);
    Tensor y = be.empty(DType.F32, 4, 3);
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                be.scatter2scatter(
                    x,
                    w,
                    null,
                    true,
                    2,
                    i32(be, new int[] {0, 0, 1, 1}, 4),
                    i32(be, new int[] {0, 1, 1, 3}, 4),
                    false,
                    false,
                    y));
    org.junit.jupiter.api.Assertions.assertTrue(
        e.getMessage().contains("repeated"), e.getMessage());
    IllegalArgumentException shape =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                be.scatter2scatter(
                    be.zeros(DType.F32, 3, 4),
                    w,
                    null,
                    true,
                    2,
                    i32(be, new int[] {0, 0, 1, 1}, 4),
                    i32(be, new int[] {0, 1, 2, 3}, 4),
                    false,
                    false,
                    y));
    org.junit.jupiter.api.Assertions.assertTrue(
        shape.getMessage().startsWith("scatter2scatter: x F32[3, 4] must be (2, 4)"),
        shape.getMessage());
  }
}
