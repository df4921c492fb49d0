package moetune.engine.moe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import moetune.engine.backend.Backend;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.model.Parity;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * ParallelLinear against the dumbest per-token loop (in double), in all four grouped modes, with
 * and without gates and bias, on awkward sizes (in 100, out 80, 5 experts, top-3, one expert
 * receiving no token, a single token); and its backward against central differences. The loss is
 * sum(y * R) for a random R, so dY = R.
 */
class ParallelLinearTest {
  static final int I = 100;
  static final int O = 80;
  static final int E = 5;
  static final int K = 3;
  static final int EMPTY_EXPERT = 3;

  static Backend be;

  @BeforeAll
  static void start() {
    be = new CpuBackend();
  }

  @AfterAll
  static void stop() {
    be.close();
  }

  static List<Arguments> cases() {
    List<Arguments> out = new ArrayList<>();
    for (int n : new int[] {7, 1}) {
      for (boolean gin : new boolean[] {false, true}) {
        for (boolean gout : new boolean[] {false, true}) {
          for (boolean bias : new boolean[] {false, true}) {
            for (boolean gates : new boolean[] {false, true}) {
              if (!(gates && gout)) {
                out.add(Arguments.of(n, gin, gout, bias, gates));
              }
            }
          }
        }
      }
    }
    return out;
  }

  /** A random problem on the host: routing, x, W, b, gates, R, plus the expert order. */
  static final class Problem {
    final int n;
    final int m;
    final boolean groupedIn;
    final boolean groupedOut;
    final int k; // ParallelLinear's fan-out: K for token-order input, 1 for grouped input
    final int[] topIdx; // (N, K)
    final int[] order; // p -> s, stable by expert (the reference's own flatten-sort)
    final int[] rowOf; // s -> p
    final float[] x; // (M, I) grouped or (N, I)
    final float[] w; // (E, O, I)
    final float[] b; // (E, O) or null
    final float[] g; // (N, K) or null
    final float[] r; // like y

    Problem(long seed, int n, boolean gin, boolean gout, boolean bias, boolean gates) {
      SplittableRandom rnd = new SplittableRandom(seed);
      this.n = n;
      this.m = n * K;
      this.groupedIn = gin;
      this.groupedOut = gout;
      this.k = gin ? 1 : K;
      topIdx = new int[m];
      int[] allowed = {0, 1, 2, 4}; // expert 3 receives no token
      for (int t = 0; t < n; t++) {
        int first = rnd.nextInt(allowed.length);
        for (int j = 0; j < K; j++) {
          topIdx[t * K + j] = allowed[(first + j) % allowed.length];
        }
      }
      order = new int[m];
      rowOf = new int[m];
      int p = 0;
      for (int e = 0; e < E; e++) {
        for (int s = 0; s < m; s++) {
          if (topIdx[s] == e) {
            rowOf[s] = p;
            order[p++] = s;
          }
        }
      }
      x = random(rnd, (gin ? m : n) * I);
      w = random(rnd, E * O * I);
      b = bias ? random(rnd, E * O) : null;
      g = gates ? random(rnd, m) : null;
      r = random(rnd, (gates ? n : m) * O);
    }

    float[] xRow(int s) {
      float[] row = new float[I];
      System.arraycopy(x, (groupedIn ? rowOf[s] : s / K) * I, row, 0, I);
      return row;
    }

    /** The ungated product of flat row s, in double. */
    double[] product(int s) {
      int e = topIdx[s];
      float[] xr = xRow(s);
      double[] y = new double[O];
      for (int o = 0; o < O; o++) {
        double acc = b == null ? 0 : b[e * O + o];
        for (int i = 0; i < I; i++) {
          acc += (double) w[(e * O + o) * I + i] * xr[i];
        }
        y[o] = acc;
      }
      return y;
    }

    float[] naiveForward() {
      float[] y = new float[r.length];
      for (int s = 0; s < m; s++) {
        double[] ys = product(s);
        for (int o = 0; o < O; o++) {
          if (g != null) {
            y[(s / K) * O + o] += (float) (g[s] * ys[o]);
          } else {
            y[(groupedOut ? rowOf[s] : s) * O + o] = (float) ys[o];
          }
        }
      }
      return y;
    }

    /** d(sum y*R) for x, W, b, gates, by the per-token loop. */
    float[][] naiveBackward() {
      double[] dx = new double[x.length];
      double[] dw = new double[w.length];
      double[] db = new double[E * O];
      float[] dg = new float[m];
      for (int s = 0; s < m; s++) {
        int e = topIdx[s];
        double[] dys = new double[O];
        for (int o = 0; o < O; o++) {
          dys[o] = g != null ? g[s] * r[(s / K) * O + o] : r[(groupedOut ? rowOf[s] : s) * O + o];
        }
        if (g != null) {
          double[] ys = product(s);
          double acc = 0;
          for (int o = 0; o < O; o++) {
            acc += ys[o] * r[(s / K) * O + o];
          }
          dg[s] = (float) acc;
        }
        float[] xr = xRow(s);
        int xRowIdx = groupedIn ? rowOf[s] : s / K;
        for (int o = 0; o < O; o++) {
          db[e * O + o] += dys[o];
          for (int i = 0; i < I; i++) {
            dw[(e * O + o) * I + i] += dys[o] * xr[i];
            dx[xRowIdx * I + i] += dys[o] * w[(e * O + o) * I + i];
          }
        }
      }
      return new float[][] {toFloat(dx), toFloat(dw), toFloat(db), dg};
    }

    /** Runs ParallelLinear on the backend; returns y, and fills grads {dX, dW, db, dGates}. */
    float[] run(float[][] grads) {
      try (Tensor topIdxT = be.upload(HostTensor.ofInts(topIdx, n, K));
          Routing routing = Routing.compute(be, topIdxT, E);
          Tensor xT = be.upload(HostTensor.ofFloats(x, x.length / I, I));
          Tensor wT = be.upload(HostTensor.ofFloats(w, E, O, I));
          Tensor bT = b == null ? null : be.upload(HostTensor.ofFloats(b, E, O));
          Tensor gT = g == null ? null : be.upload(HostTensor.ofFloats(g, n, K));
          Tensor dW = be.zeros(DType.F32, E, O, I);
          Tensor dB = b == null ? null : be.zeros(DType.F32, E, O);
          ParallelLinear.Context c =
              ParallelLinear.forward(xT, wT, bT, k, routing, gT, groupedIn, groupedOut);
          Tensor y = c.output();
          Tensor dY = be.upload(HostTensor.ofFloats(r, r.length / O, O))) {
        float[] out = be.download(y).toFloatArray();
        if (grads != null) {
          try (ParallelLinear.Grads gr = ParallelLinear.backward(c, dY, dW, dB, true)) {
            grads[0] = be.download(gr.dX()).toFloatArray();
            grads[1] = be.download(dW).toFloatArray();
            grads[2] = dB == null ? null : be.download(dB).toFloatArray();
            grads[3] = gr.dGates() == null ? null : be.download(gr.dGates()).toFloatArray();
            assertEquals(x.length, gr.dX().numel(), "dX has the input's shape");
          }
        }
        return out;
      }
    }

    double loss() {
      float[] y = run(null);
      double l = 0;
      for (int i = 0; i < y.length; i++) {
        l += (double) y[i] * r[i];
      }
      return l;
    }
  }

  static float[] random(SplittableRandom rnd, int count) {
    float[] a = new float[count];
    for (int i = 0; i < count; i++) {
      a[i] = (float) rnd.nextGaussian();
    }
    return a;
  }

  static float[] toFloat(double[] d) {
    float[] f = new float[d.length];
    for (int i = 0; i < d.length; i++) {
      f[i] = (float) d[i];
    }
    return f;
  }

  @ParameterizedTest(name = "N={0} groupedIn={1} groupedOut={2} bias={3} gates={4}")
  @MethodSource("cases")
  void matchesPerTokenLoop(int n, boolean gin, boolean gout, boolean bias, boolean gates) {
    Problem p = new Problem(42 + n, n, gin, gout, bias, gates);
    float[][] grads = new float[4][];
    float[] y = p.run(grads);
    float[][] want = p.naiveBackward();
    Parity.assertClose("y", y, p.naiveForward(), 1e-5);
    Parity.assertClose("dX", grads[0], want[0], 1e-5);
    Parity.assertClose("dW", grads[1], want[1], 1e-5);
    float[] dwEmpty =
        java.util.Arrays.copyOfRange(grads[1], EMPTY_EXPERT * O * I, (EMPTY_EXPERT + 1) * O * I);
    assertEquals(
        0.0,
        Parity.relError(dwEmpty, new float[O * I]),
        "the expert without tokens gets no gradient");
    if (bias) {
      Parity.assertClose("db", grads[2], want[2], 1e-5);
    }
    if (gates) {
      Parity.assertClose("dGates", grads[3], want[3], 1e-5);
    }
  }

  /**
   * A weight gradient asked for beside its dX in one call (what a GPU with variant 61 runs at once:
   * where there is no bias and no gates, else the calls stay apart) gives every gradient bit for
   * bit as the calls in turn.
   */
  @ParameterizedTest(name = "N={0} groupedIn={1} groupedOut={2} bias={3} gates={4}")
  @MethodSource("cases")
  void dwBesideDxIsTheCallsInTurnBitForBit(
      int n, boolean gin, boolean gout, boolean bias, boolean gates) {
    CpuBackend cpu = (CpuBackend) be;
    float[][] apart = new float[4][], beside = new float[4][];
    float[] y = new Problem(42 + n, n, gin, gout, bias, gates).run(apart), yBeside;
    cpu.dwBesideDx(true);
    try {
      yBeside = new Problem(42 + n, n, gin, gout, bias, gates).run(beside);
    } finally {
      cpu.dwBesideDx(false);
    }
    org.junit.jupiter.api.Assertions.assertArrayEquals(y, yBeside, "y");
    String[] names = {"dX", "dW", "db", "dGates"};
    for (int i = 0; i < 4; i++) {
      org.junit.jupiter.api.Assertions.assertArrayEquals(apart[i], beside[i], names[i]);
    }
  }

  /**
   * Central differences of the loss at sampled coordinates of x, W, b and gates. The loss is linear
   * in each of them, so the difference is exact up to float32 rounding of y.
   */
  @ParameterizedTest(name = "N={0} groupedIn={1} groupedOut={2} bias={3} gates={4}")
  @MethodSource("cases")
  void backwardMatchesFiniteDifferences(
      int n, boolean gin, boolean gout, boolean bias, boolean gates) {
    Problem p = new Problem(7 + n, n, gin, gout, bias, gates);
    float[][] grads = new float[4][];
    p.run(grads);
    SplittableRandom rnd = new SplittableRandom(3);
    float[][] params = {p.x, p.w, p.b, p.g};
    String[] names = {"x", "W", "b", "gates"};
    for (int t = 0; t < 4; t++) {
      if (params[t] == null) {
        continue;
      }
      for (int trial = 0; trial < 4; trial++) {
        int i = rnd.nextInt(params[t].length);
        if (t == 1) {
          // a coordinate of an expert that receives tokens
          int e = p.topIdx[rnd.nextInt(p.m)];
          i = e * O * I + rnd.nextInt(O * I);
        }
        float h = 0.5f;
        float old = params[t][i];
        params[t][i] = old + h;
        double lp = p.loss();
        params[t][i] = old - h;
        double lm = p.loss();
        params[t][i] = old;
        double fd = (lp - lm) / (2 * h);
        assertFd(names[t] + "[" + i + "]", grads[t][i], fd, grads[t]);
      }
    }
  }

  /** |grad - fd| within 1e-3 of max(|fd|, the gradient tensor's RMS): scale-free, robust near 0. */
  static void assertFd(String what, double grad, double fd, float[] all) {
    double rms = 0;
    for (float v : all) {
      rms += (double) v * v;
    }
    rms = Math.sqrt(rms / all.length);
    double tol = 1e-3 * Math.max(Math.abs(fd), rms);
    if (!(Math.abs(grad - fd) <= tol)) {
      throw new AssertionError(
          "d loss / d "
              + what
              + ": backward "
              + grad
              + ", central difference "
              + fd
              + " (|diff| "
              + Math.abs(grad - fd)
              + " > "
              + tol
              + ")");
    }
  }

  @Test
  void refusesGatesWithGroupedOutput() {
    Problem p = new Problem(1, 4, false, true, false, true);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> p.run(null));
    assertEquals(true, e.getMessage().contains("gates need groupedOut=false"), e.getMessage());
  }

  @Test
  void refusesTheSwigluBackwardOfAnUngatedProduct() {
    try (Tensor topIdx = be.upload(HostTensor.ofInts(new int[] {0, 1, 2}, 1, K));
        Routing routing = Routing.compute(be, topIdx, E);
        Tensor x = be.upload(HostTensor.ofFloats(new float[K * I], K, I));
        Tensor w = be.upload(HostTensor.ofFloats(new float[E * O * I], E, O, I));
        Tensor h = be.zeros(moetune.engine.tensor.DType.F32, K, 2L * I);
        Tensor dY = be.zeros(moetune.engine.tensor.DType.F32, K, O)) {
      ParallelLinear.Context c = ParallelLinear.forward(x, w, null, 1, routing, null, true, true);
      try {
        IllegalArgumentException e =
            assertThrows(
                IllegalArgumentException.class,
                () -> ParallelLinear.backward(c, dY, null, null, true, h));
        assertEquals(
            true,
            e.getMessage().contains("the SwiGLU backward needs a gated product"),
            e.getMessage());
      } finally {
        c.output().close();
        c.close();
      }
    }
  }
}
