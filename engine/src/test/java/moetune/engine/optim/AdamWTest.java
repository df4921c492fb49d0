package moetune.engine.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Map;
import moetune.engine.backend.Backend;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.model.Batch;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.Parity;
import moetune.engine.tensor.HostTensor;
import org.junit.jupiter.api.Test;

/**
 * AdamW beyond the fixture's trajectory (TinyMixtralParityTest): resuming from exported state is
 * bit-identical to not stopping, and the per-parameter weight-decay choice is honoured.
 */
class AdamWTest {
  static final Path DIR = Parity.fixtures().resolve("tiny-mixtral");
  static final float LR = 1e-3f;
  static final AdamW.Settings SETTINGS = new AdamW.Settings(0.9f, 0.95f, 1e-8f, 0.1f, 1.0f);
  static final Batch BATCH =
      Batch.of(
          new int[][] {{1, 733, 16289, 28793, 1824, 349, 574, 16020, 2076}},
          new int[][] {{-100, -100, 16289, 28793, 1824, 349, 574, 16020, 2076}});

  private static void trainStep(MixtralModel m, AdamW opt) {
    m.zeroGrad();
    m.forward(BATCH);
    m.backward();
    opt.step(LR);
  }

  @Test
  void resumingFromExportedStateEqualsNotStopping() {
    try (Backend be = new CpuBackend();
        MixtralModel straight = MixtralModel.load(DIR, be);
        AdamW optStraight = new AdamW(straight.parameters(), SETTINGS, AdamW.DECAY_MATRICES);
        MixtralModel first = MixtralModel.load(DIR, be);
        AdamW optFirst = new AdamW(first.parameters(), SETTINGS, AdamW.DECAY_MATRICES)) {
      for (int i = 0; i < 3; i++) {
        trainStep(straight, optStraight);
      }
      for (int i = 0; i < 2; i++) {
        trainStep(first, optFirst);
      }
      Map<String, HostTensor> state = optFirst.stateToHost();
      Map<String, HostTensor> weights = first.hubTensors();
      try (MixtralModel resumed =
              MixtralModel.create(first.config(), weights, be, first.options());
          AdamW optResumed = new AdamW(resumed.parameters(), SETTINGS, AdamW.DECAY_MATRICES)) {
        optResumed.loadState(state, optFirst.stepCount());
        trainStep(resumed, optResumed);
        assertEquals(3, optResumed.stepCount());
        for (String name : straight.parameters().hubNames()) {
          assertArrayEquals(
              straight.parameter(name).toFloatArray(),
              resumed.parameter(name).toFloatArray(),
              "after resuming: " + name);
        }
      }
    }
  }

  @Test
  void weightDecayFollowsThePerParameterChoice() {
    try (Backend be = new CpuBackend();
        MixtralModel m = MixtralModel.load(DIR, be);
        AdamW opt = new AdamW(m.parameters(), SETTINGS, AdamW.DECAY_MATRICES)) {
      float[] norm = m.parameter("model.norm.weight").toFloatArray();
      float[] q = m.parameter("model.layers.1.self_attn.q_proj.weight").toFloatArray();
      m.zeroGrad(); // zero gradient: Adam's update is 0, only decoupled weight decay acts
      opt.step(LR);
      assertArrayEquals(
          norm, m.parameter("model.norm.weight").toFloatArray(), "norms are not decayed");
      float[] after = m.parameter("model.layers.1.self_attn.q_proj.weight").toFloatArray();
      for (int i = 0; i < q.length; i++) {
        assertEquals(
            q[i] * (1 - 1e-3f * 0.1f),
            after[i],
            1e-7f * Math.abs(q[i]),
            "q_proj[" + i + "] decays");
      }
      assertEquals(0f, opt.lastGradNorm());
    }
  }

  @Test
  void incompleteStateIsRefusedByName() {
    try (Backend be = new CpuBackend();
        MixtralModel m = MixtralModel.load(DIR, be);
        AdamW opt = new AdamW(m.parameters(), SETTINGS, AdamW.DECAY_ALL)) {
      Map<String, HostTensor> state = new java.util.LinkedHashMap<>(opt.stateToHost());
      state.remove("exp_avg_sq.model.layers.1.block_sparse_moe.experts.3.w2.weight");
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> opt.loadState(state, 4));
      assertTrue(
          e.getMessage().contains("exp_avg_sq.model.layers.1.block_sparse_moe.experts.3.w2.weight"),
          e.getMessage());
    }
  }
}
