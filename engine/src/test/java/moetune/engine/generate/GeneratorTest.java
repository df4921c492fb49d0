package moetune.engine.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Set;
import java.util.SplittableRandom;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.model.Batch;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.ModelOptions;
import moetune.engine.tensor.HostTensor;
import moetune.engine.train.FreshModel;
import org.junit.jupiter.api.Test;

/** KV-cache generation against the full forward recomputed from scratch at every step. */
class GeneratorTest {
  static final int V = 40;

  static MixtralModel model(CpuBackend cpu, Integer window) {
    MixtralConfig c =
        MixtralConfig.builder()
            .set(
                b -> {
                  b.vocabSize = V;
                  b.hiddenSize = 24;
                  b.intermediateSize = 20;
                  b.numHiddenLayers = 2;
                  b.numAttentionHeads = 6;
                  b.numKeyValueHeads = 2;
                  b.numLocalExperts = 5;
                  b.numExpertsPerTok = 2;
                  b.maxPositionEmbeddings = 64;
                  b.initializerRange = 0.3; // large weights: sharp logits, so argmax is stable
                  b.slidingWindow = window;
                })
            .build();
    return MixtralModel.create(c, FreshModel.weights(c, 7), cpu, ModelOptions.defaults());
  }

  /** Logits (V) of the last position of ids, by a full forward without a cache. */
  static float[] lastLogits(MixtralModel m, int[] ids) {
    m.evaluate(Batch.of(new int[][] {ids}, null));
    HostTensor l = m.logits();
    float[] all = l.toFloatArray();
    return Arrays.copyOfRange(all, (ids.length - 1) * V, ids.length * V);
  }

  @Test
  void greedyGenerationMatchesStepByStepForwardWithoutCache() {
    for (Integer window : new Integer[] {null, 5}) {
      try (CpuBackend cpu = new CpuBackend(2);
          MixtralModel m = model(cpu, window)) {
        int[] prompt = {3, 17, 5, 29, 11, 2, 8};
        Generator.Result r =
            Generator.generate(
                m, prompt, new Generator.Settings(12, 0, 1, 0), Set.of(), t -> false);
        assertEquals(12, r.tokens().length);
        assertEquals(Generator.Stop.MAX_TOKENS, r.stop());
        int[] seq = prompt.clone();
        for (int i = 0; i < r.tokens().length; i++) {
          float[] ref = lastLogits(m, seq);
          assertClose(ref, r.stepLogits()[i], "step " + i + " window " + window);
          int next = Generator.sample(ref, 0, 1, null);
          assertEquals(next, r.tokens()[i], "token " + i + " window " + window);
          seq = Arrays.copyOf(seq, seq.length + 1);
          seq[seq.length - 1] = next;
        }
      }
    }
  }

  @Test
  void stopsOnEosAndOnStopTest() {
    try (CpuBackend cpu = new CpuBackend(2);
        MixtralModel m = model(cpu, null)) {
      int[] prompt = {3, 17, 5};
      Generator.Result all =
          Generator.generate(m, prompt, new Generator.Settings(6, 0, 1, 0), Set.of(), t -> false);
      int eos = all.tokens()[2];
      int firstEos = 0;
      while (all.tokens()[firstEos] != eos) firstEos++;
      Generator.Result r =
          Generator.generate(
              m, prompt, new Generator.Settings(6, 0, 1, 0), Set.of(eos), t -> false);
      assertEquals(Generator.Stop.EOS, r.stop());
      assertArrayEquals(Arrays.copyOf(all.tokens(), firstEos), r.tokens());
      Generator.Result s =
          Generator.generate(
              m, prompt, new Generator.Settings(6, 0, 1, 0), Set.of(), t -> t.length == 4);
      assertEquals(Generator.Stop.STOP_STRING, s.stop());
      assertArrayEquals(Arrays.copyOf(all.tokens(), 4), s.tokens());
    }
  }

  @Test
  void topPKeepsTheSmallestNucleusAndTemperatureSamplesAreSeeded() {
    float[] logits = {0f, (float) Math.log(6), (float) Math.log(3), -30f}; // p = .1 .6 .3 ~0
    // top-p 0.5: only token 1 (p=0.6) remains, whatever the draw.
    SplittableRandom rng = new SplittableRandom(1);
    for (int i = 0; i < 50; i++) {
      assertEquals(1, Generator.sample(logits, 1.0, 0.5, rng));
    }
    // top-p 0.85: tokens 1 and 2 (0.6 + 0.3); frequencies near 2:1.
    int[] counts = new int[4];
    rng = new SplittableRandom(2);
    for (int i = 0; i < 3000; i++) {
      counts[Generator.sample(logits, 1.0, 0.85, rng)]++;
    }
    assertEquals(0, counts[0] + counts[3]);
    assertEquals(2.0, (double) counts[1] / counts[2], 0.25);
    assertEquals(
        Generator.sample(logits, 0.7, 1, new SplittableRandom(9)),
        Generator.sample(logits, 0.7, 1, new SplittableRandom(9)));
    assertTrue(Generator.sample(logits, 0, 1, null) == 1, "greedy picks the largest logit");
  }

  static void assertClose(float[] ref, float[] got, String what) {
    double num = 0;
    double den = 0;
    for (int i = 0; i < ref.length; i++) {
      num += (ref[i] - got[i]) * (double) (ref[i] - got[i]);
      den += ref[i] * (double) ref[i];
    }
    assertTrue(Math.sqrt(num / den) < 1e-5, what + ": relative error " + Math.sqrt(num / den));
  }
}
