package moetune.engine.moe;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

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
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The ScatterMoE MLP used on its own (as ScatterMoE's {@code MLP(x, expert_p, expert_idxs)})
 * against transformers' per-token expert loop, and its backward against central differences, on
 * awkward sizes: hidden 100, intermediate 80, 5 experts, top-3, expert 3 never chosen, and a single
 * token.
 */
class MoeMlpTest {
  static final int D = 100;
  static final int F = 80;
  static final int E = 5;
  static final int K = 3;

  static Backend be;

  @BeforeAll
  static void start() {
    be = new CpuBackend();
  }

  @AfterAll
  static void stop() {
    be.close();
  }

  /** Host data of one problem. */
  static final class Problem {
    final int n;
    final float[] x; // (N, D)
    final float[] gateUp; // (E, 2F, D)
    final float[] down; // (E, D, F)
    final float[] topW; // (N, K)
    final int[] topIdx; // (N, K)
    final float[] r; // (N, D)

    Problem(int n, long seed) {
      SplittableRandom rnd = new SplittableRandom(seed);
      this.n = n;
      x = ParallelLinearTest.random(rnd, n * D);
      gateUp = scaled(ParallelLinearTest.random(rnd, E * 2 * F * D), 0.1f);
      down = scaled(ParallelLinearTest.random(rnd, E * D * F), 0.1f);
      topW = new float[n * K];
      topIdx = new int[n * K];
      int[] allowed = {0, 1, 2, 4};
      for (int t = 0; t < n; t++) {
        int first = rnd.nextInt(allowed.length);
        float sum = 0;
        for (int j = 0; j < K; j++) {
          topIdx[t * K + j] = allowed[(first + j) % allowed.length];
          topW[t * K + j] = 0.1f + (float) rnd.nextDouble();
          sum += topW[t * K + j];
        }
        for (int j = 0; j < K; j++) {
          topW[t * K + j] /= sum;
        }
      }
      r = ParallelLinearTest.random(rnd, n * D);
    }

    /** transformers' MixtralExperts loop: y[n] += w * down_e (silu(w1_e x) * (w3_e x)). */
    float[] naive() {
      float[] y = new float[n * D];
      for (int t = 0; t < n; t++) {
        for (int j = 0; j < K; j++) {
          int e = topIdx[t * K + j];
          double[] a = new double[F];
          for (int f = 0; f < F; f++) {
            double g = 0;
            double u = 0;
            for (int d = 0; d < D; d++) {
              g += (double) gateUp[(e * 2 * F + f) * D + d] * x[t * D + d];
              u += (double) gateUp[(e * 2 * F + F + f) * D + d] * x[t * D + d];
            }
            a[f] = g / (1 + Math.exp(-g)) * u;
          }
          for (int d = 0; d < D; d++) {
            double acc = 0;
            for (int f = 0; f < F; f++) {
              acc += (double) down[(e * D + d) * F + f] * a[f];
            }
            y[t * D + d] += (float) (topW[t * K + j] * acc);
          }
        }
      }
      return y;
    }

    /** The problem on the backend: an MLP holding its weights, and its inputs. */
    Setup setup() {
      MoeMlp mlp = MoeMlp.allocate(be, DType.F32, D, F, E);
      be.copyFromHost(HostTensor.ofFloats(gateUp, E, 2 * F, D), mlp.gateUp());
      be.copyFromHost(HostTensor.ofFloats(down, E, D, F), mlp.down());
      return new Setup(
          mlp,
          be.upload(HostTensor.ofFloats(x, n, D)),
          be.upload(HostTensor.ofFloats(topW, n, K)),
          be.upload(HostTensor.ofInts(topIdx, n, K)),
          be.upload(HostTensor.ofFloats(r, n, D)));
    }

    /** Runs MoeMlp; grads (if not null) receive {dX, dGateUp, dDown, dTopW}. */
    float[] run(float[][] grads) {
      try (Setup s = setup();
          MoeMlp.Forward f = s.mlp().forward(s.x(), s.topW(), s.topIdx())) {
        float[] y = be.download(f.output()).toFloatArray();
        if (grads != null) {
          try (MoeMlp.Grads g = s.mlp().backward(f, s.dY())) {
            s.grads(g, grads);
          }
        }
        return y;
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

  static float[] scaled(float[] a, float s) {
    for (int i = 0; i < a.length; i++) {
      a[i] *= s;
    }
    return a;
  }

  /**
   * A Problem's MLP and inputs on the backend (dY: the loss weights r as the output's gradient).
   */
  record Setup(MoeMlp mlp, Tensor x, Tensor topW, Tensor topIdx, Tensor dY)
      implements AutoCloseable {
    /** Downloads {dX, dGateUp, dDown, dTopW} of a backward into into. */
    void grads(MoeMlp.Grads g, float[][] into) {
      into[0] = be.download(g.dX()).toFloatArray();
      into[1] = be.download(mlp.gateUpGrad()).toFloatArray();
      into[2] = be.download(mlp.downGrad()).toFloatArray();
      into[3] = be.download(g.dTopKWeights()).toFloatArray();
    }

    @Override
    public void close() {
      dY.close();
      topIdx.close();
      topW.close();
      x.close();
      mlp.close();
    }
  }

  /**
   * After overwriteGradsOnce the next backward writes the weight gradients over whatever the
   * buffers held (here NaN) and equals the backward into zeroed buffers bit for bit; the backwards
   * after it add again (twice, then three times the gradient).
   */
  @Test
  void overwriteGradsOnceWritesTheNextBackwardsGradientsThenAccumulates() {
    Problem p = new Problem(9, 3);
    float[][] fresh = new float[4][];
    p.run(fresh); // the allocated gradients start at zero
    try (Setup s = p.setup()) {
      MoeMlp mlp = s.mlp();
      be.fill(mlp.gateUpGrad(), Float.NaN);
      be.fill(mlp.downGrad(), Float.NaN);
      mlp.overwriteGradsOnce();
      for (int call = 1; call <= 3; call++) {
        try (MoeMlp.Forward f = mlp.forward(s.x(), s.topW(), s.topIdx());
            MoeMlp.Grads g = mlp.backward(f, s.dY())) {
          float[] gu = be.download(mlp.gateUpGrad()).toFloatArray();
          float[] dn = be.download(mlp.downGrad()).toFloatArray();
          sameOrClose("gateUp grad after call " + call, gu, fresh[1], call);
          sameOrClose("down grad after call " + call, dn, fresh[2], call);
        }
      }
    }
  }

  /**
   * The expert MLP saving SwiGLU's backward factors (variant 56: dy grouped with its gates, dH =
   * [dA p | dA q], the gates' gradient from the kept ungated rows) against the MLP saving h: the
   * same output bit for bit, the same gradients within float32 rounding; and a recomputation
   * (outputNeeded false, which still makes the ungated rows) gives its gradients bit for bit.
   */
  @Test
  void savingTheFactorsGivesTheGradientsOfSavingH() {
    Problem p = new Problem(9, 5);
    float[][] withH = new float[4][];
    float[][] withFactors = new float[4][];
    float[][] recomputed = new float[4][];
    CpuBackend cpu = (CpuBackend) be;
    float[] yH;
    cpu.swigluSavesFactors(false);
    try {
      yH = p.run(withH);
    } finally {
      cpu.swigluSavesFactors(true);
    }
    {
      float[] yF = p.run(withFactors);
      assertArrayEquals(yH, yF, "the forward does not depend on what it saves");
      try (Setup s = p.setup();
          MoeMlp.Forward f = s.mlp().forward(s.x(), s.topW(), s.topIdx(), false);
          MoeMlp.Grads g = s.mlp().backward(f, s.dY())) {
        org.junit.jupiter.api.Assertions.assertNull(f.output());
        s.grads(g, recomputed);
      }
    }
    String[] names = {"dX", "gateUp grad", "down grad", "dTopKWeights"};
    for (int i = 0; i < 4; i++) {
      assertArrayEquals(withFactors[i], recomputed[i], names[i] + ": recomputed differs");
      Parity.assertClose("factors against h: " + names[i], withFactors[i], withH[i], 1e-5);
    }
  }

  /**
   * Each weight gradient asked for beside its dX in one call (swigluFactorsBackwardBesideDw for the
   * down product where the factors are saved, scatter2scatterBesideDw for the up product: what a
   * GPU with variant 61 runs side by side) gives every gradient bit for bit as the calls in turn,
   * saving the factors or h, with the weight gradients added (+=) and written (=).
   */
  @Test
  void dwBesideDxGivesTheGradientsOfTheCallsInTurn() {
    Problem p = new Problem(9, 5);
    CpuBackend cpu = (CpuBackend) be;
    String[] names = {"dX", "gateUp grad", "down grad", "dTopKWeights"};
    for (boolean factors : new boolean[] {true, false}) {
      cpu.swigluSavesFactors(factors);
      float[][] apart = new float[4][], beside = new float[4][];
      try {
        float[] yApart = p.run(apart), yBeside;
        cpu.dwBesideDx(true);
        yBeside = p.run(beside);
        assertArrayEquals(yApart, yBeside, "the forward");
        for (int i = 0; i < 4; i++) {
          assertArrayEquals(
              apart[i], beside[i], names[i] + " (factors " + factors + "): one call differs");
        }
        try (Setup s = p.setup()) {
          MoeMlp mlp = s.mlp();
          be.fill(mlp.gateUpGrad(), Float.NaN);
          be.fill(mlp.downGrad(), Float.NaN);
          mlp.overwriteGradsOnce();
          try (MoeMlp.Forward f = mlp.forward(s.x(), s.topW(), s.topIdx());
              MoeMlp.Grads g = mlp.backward(f, s.dY())) {
            assertArrayEquals(
                apart[1], be.download(mlp.gateUpGrad()).toFloatArray(), "gateUp grad written");
            assertArrayEquals(
                apart[2], be.download(mlp.downGrad()).toFloatArray(), "down grad written");
          }
        }
      } finally {
        cpu.dwBesideDx(false);
        cpu.swigluSavesFactors(true);
      }
    }
  }

  /**
   * got = times x want: bit for bit once (the same sums from zero), within float32 rounding after.
   */
  private static void sameOrClose(String what, float[] got, float[] want, int times) {
    for (int i = 0; i < got.length; i++) {
      float w = times * want[i];
      boolean ok =
          times == 1
              ? Float.floatToRawIntBits(got[i]) == Float.floatToRawIntBits(w)
              : Math.abs(got[i] - w) <= 1e-6f * Math.abs(w) + 1e-12f;
      if (!ok) {
        throw new AssertionError(what + ": [" + i + "] " + got[i] + ", expected " + w);
      }
    }
  }

  @ParameterizedTest(name = "N={0}")
  @ValueSource(ints = {1, 9})
  void forwardMatchesTransformersLoopAndBackwardMatchesFiniteDifferences(int n) {
    Problem p = new Problem(n, 11 + n);
    float[][] grads = new float[4][];
    Parity.assertClose("MoeMlp output", p.run(grads), p.naive(), 1e-5);
    // Directional derivatives along random unit directions of each input: the whole tensor moves,
    // so the difference quotient is large against float32 rounding of the loss.
    float[][] inputs = {p.x, p.gateUp, p.down, p.topW};
    String[] names = {"x", "gateUp", "down", "topKWeights"};
    SplittableRandom rnd = new SplittableRandom(5);
    for (int t = 0; t < inputs.length; t++) {
      float[] u = ParallelLinearTest.random(rnd, inputs[t].length);
      double norm = 0;
      for (float v : u) {
        norm += (double) v * v;
      }
      double dot = 0;
      for (int i = 0; i < u.length; i++) {
        u[i] /= (float) Math.sqrt(norm);
        dot += (double) u[i] * grads[t][i];
      }
      // A unit step spreads over every element (per element ~ 1/sqrt(count)), so a large h keeps
      // the second-order error small while lifting the difference far above float32 rounding.
      float h = 0.5f;
      float[] orig = inputs[t].clone();
      double[] l = new double[2];
      for (int side = 0; side < 2; side++) {
        for (int i = 0; i < u.length; i++) {
          inputs[t][i] = orig[i] + (side == 0 ? h : -h) * u[i];
        }
        l[side] = p.loss();
      }
      System.arraycopy(orig, 0, inputs[t], 0, orig.length);
      double fd = (l[0] - l[1]) / (2 * h);
      Parity.assertScalar(
          "MoeMlp d loss / d " + names[t] + " along u (N=" + n + ")", dot, fd, 2e-3);
    }
  }
}
