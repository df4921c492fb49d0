package moetune.engine.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;

/** The counter-based normal fill: its moments, its tails, and that a view fills from index 0. */
class CpuRandomNormalTest {

  @Test
  void momentsAreThoseOfTheScaledStandardNormal() {
    int n = 1 << 20;
    try (CpuBackend be = new CpuBackend(2);
        Tensor t = be.empty(DType.F32, n)) {
      be.randomNormal(t, 77, 0.5f);
      float[] v = be.download(t).toFloatArray();
      double sum = 0;
      double sq = 0;
      double quart = 0;
      int beyond3 = 0;
      for (float x : v) {
        double z = x / 0.5;
        sum += z;
        sq += z * z;
        quart += z * z * z * z;
        beyond3 += Math.abs(z) > 3 ? 1 : 0;
      }
      double mean = sum / n;
      double var = sq / n - mean * mean;
      // standard errors at n = 2^20: mean 1e-3, variance 1.4e-3, fourth moment 1e-2
      assertEquals(0, mean, 5e-3, "mean");
      assertEquals(1, var, 7e-3, "variance");
      assertEquals(3, quart / n, 5e-2, "fourth moment (a normal's is 3)");
      // P(|z| > 3) = 0.0027: 2831 expected, standard deviation 53
      assertTrue(Math.abs(beyond3 - 2831) < 300, "tail count " + beyond3);
    }
  }

  @Test
  void elementsDependOnSeedAndIndexAlone() {
    try (CpuBackend be = new CpuBackend(2);
        Tensor whole = be.empty(DType.F32, 100);
        Tensor small = be.empty(DType.F32, 30);
        Tensor other = be.empty(DType.F32, 30)) {
      be.randomNormal(whole, 5, 1f);
      be.randomNormal(small, 5, 1f);
      be.randomNormal(other, 6, 1f);
      float[] w = be.download(whole).toFloatArray();
      float[] s = be.download(small).toFloatArray();
      assertArrayEquals(java.util.Arrays.copyOf(w, 30), s, "a prefix of the same counters");
      assertTrue(
          !java.util.Arrays.equals(s, be.download(other).toFloatArray()), "another seed differs");
    }
  }
}
