package moetune.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.Set;
import moetune.engine.backend.Backend;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.tensor.DType;
import org.junit.jupiter.api.Test;

/**
 * Activation recomputation ({@link Recompute}) on the CPU oracle: every mode gives bit-identical
 * losses, logits and gradients to keeping everything, with LoRA dropout and router jitter on (the
 * recomputation must draw the same noise), and the recomputing modes hold less memory at their
 * peak.
 */
class RecomputeTest {

  /** Everything one training step produces: {total loss, ce, aux, z}, logits, gradients. */
  record Outcome(float[] losses, float[] logits, float[] grads, long peak) {}

  static Outcome step(Backend be, MixtralModel m, Batch b, int steps) {
    return step(be, m, b, LossWeights.of(m.config()), steps);
  }

  static Outcome step(Backend be, MixtralModel m, Batch b, LossWeights lw, int steps) {
    Outcome o = null;
    for (int i = 0; i < steps; i++) { // a second step draws new noise: the seeds must follow
      m.zeroGrad();
      be.resetPeak();
      Loss l = m.forward(b, lw);
      float[] logits = m.logits().toFloatArray();
      m.backward(1f, lw);
      o =
          new Outcome(
              new float[] {l.total(), l.ce(), l.aux(), l.z()},
              logits,
              be.download(m.parameters().gradFlat()).toFloatArray(),
              be.peakBytes());
    }
    return o;
  }

  private static MixtralConfig config(int layers) {
    return RandomMixtral.awkwardConfig(0.1).toBuilder()
        .set(c -> c.numHiddenLayers = layers)
        .build();
  }

  private static Outcome run(MixtralConfig c, ModelOptions o, Recompute mode, Batch b, int steps) {
    return run(c, o, LossWeights.of(c), mode, b, steps);
  }

  private static Outcome run(
      MixtralConfig c, ModelOptions o, LossWeights lw, Recompute mode, Batch b, int steps) {
    Map<String, float[]> w = RandomMixtral.weights(c, 31);
    try (CpuBackend cpu = new CpuBackend(2);
        MixtralModel m = RandomMixtral.create(c, w, cpu, o.withRecompute(mode))) {
      return step(cpu, m, b, lw, steps);
    }
  }

  private static void assertSame(Outcome want, Outcome got, Recompute mode) {
    assertArrayEquals(want.losses(), got.losses(), mode + ": losses");
    assertArrayEquals(want.logits(), got.logits(), mode + ": logits");
    assertArrayEquals(want.grads(), got.grads(), mode + ": gradients");
  }

  @Test
  void fullFinetuningIsBitIdenticalInEveryMode() {
    MixtralConfig c = config(2);
    Batch b = LoraTest.batch(c, 2, 9, 5);
    ModelOptions o = new ModelOptions(DType.F32, 7);
    LossWeights withZ = new LossWeights(c.routerAuxLossCoef, 1e-3);
    Outcome none = run(c, o, withZ, Recompute.NONE, b, 2);
    assertTrue(none.losses()[0] > 0 && none.grads().length > 1000, "a real step");
    for (Recompute mode : new Recompute[] {Recompute.ATTENTION, Recompute.LAYER}) {
      assertSame(none, run(c, o, withZ, mode, b, 2), mode);
    }
  }

  @Test
  void loraWithDropoutAndJitterIsBitIdenticalInEveryMode() {
    MixtralConfig c = config(2);
    Batch b = LoraTest.batch(c, 2, 9, 6);
    // dropout is accepted on attention targets only (PEFT's rule); jitter acts before the router
    LoraConfig lora =
        new LoraConfig(4, 8, 0.2, Set.of("q_proj", "k_proj", "v_proj", "o_proj"), false, 3);
    ModelOptions o = new ModelOptions(DType.F32, 8).withLora(lora);
    Outcome none = run(c, o, Recompute.NONE, b, 2);
    for (Recompute mode : new Recompute[] {Recompute.ATTENTION, Recompute.LAYER}) {
      assertSame(none, run(c, o, mode, b, 2), mode);
    }
    // the noise is really drawn: another seed gives another loss
    Outcome other = run(c, new ModelOptions(DType.F32, 9).withLora(lora), Recompute.LAYER, b, 2);
    assertTrue(other.losses()[0] != none.losses()[0], "dropout and jitter change the loss");
  }

  @Test
  void recomputationLowersThePeak() {
    MixtralConfig c = config(6);
    Batch b = LoraTest.batch(c, 2, 40, 7);
    ModelOptions o = new ModelOptions(DType.F32, 7);
    long none = run(c, o, Recompute.NONE, b, 1).peak();
    long attention = run(c, o, Recompute.ATTENTION, b, 1).peak();
    long layer = run(c, o, Recompute.LAYER, b, 1).peak();
    System.out.printf("peak bytes: none %d, attention %d, layer %d%n", none, attention, layer);
    assertTrue(attention < none, "attention " + attention + " < none " + none);
    assertTrue(layer < attention, "layer " + layer + " < attention " + attention);
  }

  @Test
  void namesParseAndBadOnesSayWhatIsAccepted() {
    assertEquals(Recompute.LAYER, Recompute.parse("Layer"));
    assertEquals(Recompute.NONE, new ModelOptions(DType.F32, 1).recompute());
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Recompute.parse("full"));
    assertEquals("recompute must be one of none, attention, layer, got 'full'", e.getMessage());
  }

  /**
   * The memory plan's activation estimate against what the CPU backend really holds after a
   * training forward: within 5% when everything is kept (the formula counts the saved tensors; the
   * rest is small per-step state), and above what the layer mode keeps (the estimate includes the
   * one layer that its backward recomputes).
   */
  @Test
  void activationEstimateMatchesWhatTheForwardKeeps() {
    MixtralConfig c = config(6);
    Batch b = LoraTest.batch(c, 2, 200, 8);
    long tokens = 400;
    for (Recompute mode : Recompute.values()) {
      ModelOptions o = new ModelOptions(DType.F32, 7).withRecompute(mode);
      Map<String, float[]> w = RandomMixtral.weights(c, 31);
      try (CpuBackend cpu = new CpuBackend(2);
          MixtralModel m = RandomMixtral.create(c, w, cpu, o)) {
        long before = cpu.bytesInUse();
        m.forward(b);
        long kept = cpu.bytesInUse() - before;
        long estimate = moetune.engine.train.MemoryPlan.activationBytes(c, o, tokens);
        System.out.printf("%s: kept %d B, estimate %d B%n", mode, kept, estimate);
        if (mode == Recompute.NONE) {
          assertEquals(1.0, (double) kept / estimate, 0.05, mode + " kept / estimate");
        } else {
          assertTrue(kept <= estimate, mode + " kept " + kept + " <= estimate " + estimate);
        }
      }
    }
  }
}
