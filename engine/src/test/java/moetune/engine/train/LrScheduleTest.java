package moetune.engine.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The schedules against transformers' get_*_schedule_with_warmup formulas. */
class LrScheduleTest {
  @Test
  void warmupThenCosine() {
    var s = new LrSchedule(LrSchedule.Kind.COSINE, 1e-3, 10, 110, 0);
    assertEquals(0, s.lr(0));
    assertEquals(5e-4, s.lr(5), 1e-12);
    assertEquals(1e-3, s.lr(10), 1e-12);
    assertEquals(5e-4, s.lr(60), 1e-12); // halfway down the cosine
    assertEquals(0, s.lr(110), 1e-12);
  }

  @Test
  void linearWithFloor() {
    var s = new LrSchedule(LrSchedule.Kind.LINEAR, 2.0, 0, 100, 0.1);
    assertEquals(2.0, s.lr(0), 1e-12);
    assertEquals(2.0 * (0.1 + 0.9 * 0.75), s.lr(25), 1e-12);
    assertEquals(0.2, s.lr(100), 1e-12);
    assertEquals(0.2, s.lr(150), 1e-12);
  }

  @Test
  void constantAfterWarmup() {
    var s = new LrSchedule(LrSchedule.Kind.CONSTANT, 3.0, 4, 100, 0.5);
    assertEquals(1.5, s.lr(2), 1e-12);
    assertEquals(3.0, s.lr(4), 1e-12);
    assertEquals(3.0, s.lr(99), 1e-12);
  }

  @Test
  void dataOrderIsAPermutationPerEpochAndDiffersBetweenEpochs() {
    var o = new DataOrder(17, 5, true);
    int[] e0 = o.permutation(0).clone();
    int[] e1 = o.permutation(1).clone();
    assertEquals(17, java.util.Arrays.stream(e0).distinct().count());
    assertEquals(136, java.util.Arrays.stream(e1).sum());
    org.junit.jupiter.api.Assertions.assertFalse(java.util.Arrays.equals(e0, e1));
    assertEquals(e1[3], o.at(17 + 3));
    assertEquals(e0[16], new DataOrder(17, 5, true).at(16), "depends only on seed and position");
  }
}
