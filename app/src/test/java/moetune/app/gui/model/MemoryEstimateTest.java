package moetune.app.gui.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Set;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.model.LoraConfig;
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
  void loraTrainsTheAdaptersAndStoresTheBaseOnce() {
    Set<String> all = Set.copyOf(LoraConfig.ALL_TARGETS);
    // per layer, r = 2: q 2*(32+32), k 2*(32+16), v 2*(32+16), o 2*(32+32), gate 2*(32+4),
    // gate_up 4*2*(32+128), down 4*2*(64+32) = 128+96+96+128+72+1280+768 = 2568; 2 layers
    assertEquals(5136, MemoryEstimate.loraParams(m, 2, all));
    MixtralConfig c =
        MixtralConfig.builder()
            .set(
                b -> {
                  b.vocabSize = 100;
                  b.hiddenSize = 32;
                  b.intermediateSize = 64;
                  b.numHiddenLayers = 2;
                  b.numAttentionHeads = 4;
                  b.numKeyValueHeads = 2;
                  b.numLocalExperts = 4;
                  b.numExpertsPerTok = 2;
                })
            .build();
    assertEquals(new LoraConfig(2, 4, 0, all, false, 0).parameterCount(c), 5136, "the engine's");
    long perToken = 676;
    double bf16 = 5136 * 18 + 1000 * 2 + 3.0 * 10 * 2 * perToken * 2 + 3.0 * 10 * 100 * 8;
    assertEquals((long) Math.ceil(bf16 * 1.1), MemoryEstimate.loraBytes(m, 3, 10, true, 2, all));
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
