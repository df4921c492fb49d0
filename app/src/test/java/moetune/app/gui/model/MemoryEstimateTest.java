package moetune.app.gui.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class MemoryEstimateTest {

  // D 32, F 64, L 2, H 4, Hkv 2, hd 8, E 4, K 2, V 100, P 1000 parameters.
  private final ModelFacts m =
      new ModelFacts("t", 100, 32, 64, 2, 4, 2, 8, 4, 2, 128, "F32", 1000, 800);

  @Test
  void formulaByHand() {
    // A = 4D + H*hd + 2*Hkv*hd + D + E + K*(3F + D) = 128 + 32 + 32 + 32 + 4 + 2*224 = 676
    long perToken = 676;
    double fp32 = 1000 * 16 + 3.0 * 10 * 2 * perToken * 4 + 3.0 * 10 * 100 * 8;
    assertEquals((long) Math.ceil(fp32 * 1.1), MemoryEstimate.bytes(m, 3, 10, false));
    double bf16 = 1000 * 18 + 3.0 * 10 * 2 * perToken * 2 + 3.0 * 10 * 100 * 8;
    assertEquals((long) Math.ceil(bf16 * 1.1), MemoryEstimate.bytes(m, 3, 10, true));
  }

  @Test
  void humanUnits() {
    assertEquals("512 B", MemoryEstimate.human(512));
    assertEquals("1.50 KiB", MemoryEstimate.human(1536));
    assertEquals("2.00 GiB", MemoryEstimate.human(2L << 30));
  }

  @Test
  void refusesEmptyBatches() {
    assertThrows(IllegalArgumentException.class, () -> MemoryEstimate.bytes(m, 0, 10, true));
  }
}
