package moetune.engine.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Every op gives bit-identical results run after run and for any thread count: the trainer's resume
 * test compares losses bit for bit, and the CUDA tests compare against one oracle.
 */
class CpuDeterminismTest {
  @Test
  void bitIdenticalAcrossRunsAndThreadCounts() {
    Map<String, float[]> one;
    Map<String, float[]> again;
    Map<String, float[]> three;
    try (CpuBackend be = new CpuBackend(1)) {
      one = OpTour.run(be);
      again = OpTour.run(be);
    }
    try (CpuBackend be = new CpuBackend(3)) {
      three = OpTour.run(be);
    }
    assertEquals(one.keySet(), three.keySet());
    for (String name : one.keySet()) {
      assertBitEqual(name + " (second run)", one.get(name), again.get(name));
      assertBitEqual(name + " (1 vs 3 threads)", one.get(name), three.get(name));
      for (float v : one.get(name)) {
        assertFalse(Float.isNaN(v), name + " holds NaN");
      }
    }
  }

  private static void assertBitEqual(String what, float[] a, float[] b) {
    assertEquals(a.length, b.length, what);
    for (int i = 0; i < a.length; i++) {
      if (Float.floatToRawIntBits(a[i]) != Float.floatToRawIntBits(b[i])) {
        fail(what + ": element " + i + " differs: " + a[i] + " vs " + b[i]);
      }
    }
  }
}
