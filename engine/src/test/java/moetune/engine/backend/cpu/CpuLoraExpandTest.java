package moetune.engine.backend.cpu;

import static moetune.engine.backend.cpu.CpuTesting.assertClose;
import static moetune.engine.backend.cpu.CpuTesting.f32;
import static moetune.engine.backend.cpu.CpuTesting.floats;
import static moetune.engine.backend.cpu.CpuTesting.i32;
import static moetune.engine.backend.cpu.CpuTesting.randn;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import moetune.engine.backend.cpu.CpuScatterMoeTest.Routing;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * loraExpandAdd against a per-row double loop, and against scatter2scatter + axpy (the path it
 * replaces).
 */
class CpuLoraExpandTest {
  static CpuBackend be;

  @BeforeAll
  static void start() {
    be = new CpuBackend(2);
  }

  @AfterAll
  static void stop() {
    be.close();
  }

  @Test
  void allModesAgainstAPerRowLoopAndTheUnfusedPath() {
    Random r = new Random(12);
    int rank = 7;
    int out = 45;
    float scale = 1.75f;
    for (Routing rt :
        new Routing[] {Routing.random(r, 29, 2, 5, 4), Routing.of(9, 1, 3, new int[9])}) {
      int m = rt.m();
      Tensor se = i32(be, rt.sortedExp(), m);
      Tensor ss = i32(be, rt.sortedScat(), m);
      for (boolean transW : new boolean[] {true, false}) {
        float[] w = randn(r, rt.e() * rank * out, 0.3);
        Tensor wt = transW ? f32(be, w, rt.e(), out, rank) : f32(be, w, rt.e(), rank, out);
        for (boolean groupedOut : new boolean[] {false, true}) {
          float[] x = randn(r, m * rank, 1);
          float[] y0 = randn(r, m * out, 1);
          Tensor xt = f32(be, x, m, rank);
          Tensor y = f32(be, y0, m, out);
          be.loraExpandAdd(xt, wt, transW, scale, se, ss, groupedOut, y);
          double[] want = new double[m * out];
          for (int i = 0; i < want.length; i++) {
            want[i] = y0[i];
          }
          for (int p = 0; p < m; p++) {
            int e = rt.sortedExp()[p];
            int yr = groupedOut ? p : rt.sortedScat()[p];
            for (int o = 0; o < out; o++) {
              double acc = 0;
              for (int j = 0; j < rank; j++) {
                acc +=
                    x[p * rank + j]
                        * (transW ? w[(e * out + o) * rank + j] : w[(e * rank + j) * out + o]);
              }
              want[yr * out + o] += scale * acc;
            }
          }
          String what = "n=" + rt.n() + " transW=" + transW + " groupedOut=" + groupedOut;
          float[] got = floats(be, y);
          assertClose("loraExpandAdd " + what, want, got, 1e-5, 1e-5);

          // The unfused path: the product into a temporary, then axpy.
          Tensor tmp = be.empty(moetune.engine.tensor.DType.F32, m, out);
          be.scatter2scatter(xt, wt, null, transW, 1, se, ss, true, groupedOut, tmp);
          Tensor y2 = f32(be, y0, m, out);
          be.axpy(scale, tmp, y2);
          assertClose(
              "scatter2scatter + axpy " + what,
              CpuTesting.toDouble(floats(be, y2)),
              got,
              1e-5,
              1e-5);
        }
      }
    }
  }

  @Test
  void badShapesAndRoutingSayWhich() {
    Tensor se = i32(be, new int[] {0, 1}, 2);
    Tensor ss = i32(be, new int[] {1, 0}, 2);
    Tensor w = f32(be, new float[2 * 3 * 4], 2, 3, 4); // (E=2, O=3, r=4)
    IllegalArgumentException x =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                be.loraExpandAdd(
                    f32(be, new float[2 * 3], 2, 3),
                    w,
                    true,
                    1f,
                    se,
                    ss,
                    false,
                    be.zeros(moetune.engine.tensor.DType.F32, 2, 3)));
    assertTrue(x.getMessage().startsWith("loraExpandAdd: x"), x.getMessage());
    IllegalArgumentException perm =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                be.loraExpandAdd(
                    f32(be, new float[2 * 4], 2, 4),
                    w,
                    true,
                    1f,
                    se,
                    i32(be, new int[] {1, 1}, 2),
                    false,
                    be.zeros(moetune.engine.tensor.DType.F32, 2, 3)));
    assertTrue(perm.getMessage().contains("not a permutation"), perm.getMessage());
  }
}
