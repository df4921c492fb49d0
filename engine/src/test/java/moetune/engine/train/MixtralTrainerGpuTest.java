package moetune.engine.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import moetune.engine.backend.Backend;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.backend.cuda.CudaBackend;
import moetune.engine.backend.cuda.CudaProbe;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.ModelOptions;
import moetune.engine.tensor.DType;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The trainer on the CUDA backend against the CPU oracle: float32 step losses within the model's
 * 1e-4 parity bound, a bf16 run whose eval loss falls, and resume on the GPU.
 */
@Tag("gpu")
class MixtralTrainerGpuTest {

  @BeforeAll
  static void needsGpu() {
    String why = CudaProbe.unavailableReason(0);
    Assumptions.assumeTrue(why == null, () -> "GPU test skipped: " + why);
  }

  static MixtralTrainable trainable(Backend be, DType act, TrainOptions o, long seed) {
    MixtralConfig c = TinyMixtral.config(0.02);
    MixtralConfig train = c;
    MixtralModel m =
        MixtralModel.create(train, FreshModel.weights(train, seed), be, new ModelOptions(act, 0));
    return new MixtralTrainable(m, c, null, List.of(), o);
  }

  static List<Double> losses(
      Backend be, DType act, TrainOptions o, Path ck, long stopAt, boolean resume)
      throws Exception {
    MixtralTrainerTest.Losses rec = new MixtralTrainerTest.Losses();
    try (MixtralTrainable t = trainable(be, act, o, 5)) {
      Trainer tr = new Trainer(t, TinyMixtral.data(9, 20, 1), TinyMixtral.data(3, 20, 2), o, ck);
      if (resume) {
        tr.resumeFrom(Trainer.findCheckpoint(ck));
      }
      tr.addListener(rec);
      if (stopAt > 0) {
        tr.addListener(
            new TrainingListener() {
              @Override
              public void onStep(StepMetrics m) {
                if (m.step() == stopAt) tr.requestStop();
              }
            });
      }
      RunSummary s = tr.run();
      if (stopAt == 0 && !resume) {
        assertTrue(s.lastEval().loss() < s.firstEval().loss(), "eval loss falls on " + be.name());
      }
    }
    return rec.loss;
  }

  static void assertClose(List<Double> want, List<Double> got, double rel, String what) {
    assertEquals(want.size(), got.size(), what);
    for (int i = 0; i < want.size(); i++) {
      assertEquals(want.get(i), got.get(i), rel * Math.abs(want.get(i)), what + " step " + (i + 1));
    }
  }

  @Test
  void float32TrainingMatchesTheCpu(@TempDir Path tmp) throws Exception {
    TrainOptions o = MixtralTrainerTest.options(6, 0.05, FreezeSpec.NONE, 0);
    List<Double> cpu;
    try (CpuBackend be = new CpuBackend(2)) {
      cpu = losses(be, DType.F32, o, tmp.resolve("cpu"), 0, false);
    }
    try (CudaBackend be = new CudaBackend(0, false)) {
      assertClose(
          cpu,
          losses(be, DType.F32, o, tmp.resolve("gpu"), 0, false),
          1e-4,
          "fp32 GPU vs CPU loss");
    }
  }

  @Test
  void bf16TrainingFollowsTheCpuAndResumes(@TempDir Path tmp) throws Exception {
    TrainOptions o = MixtralTrainerTest.options(6, 0.05, FreezeSpec.NONE, 0);
    List<Double> cpu;
    try (CpuBackend be = new CpuBackend(2)) {
      cpu = losses(be, DType.F32, o, tmp.resolve("cpu"), 0, false);
    }
    try (CudaBackend be = new CudaBackend(0, false)) {
      List<Double> full = losses(be, DType.BF16, o, tmp.resolve("full"), 0, false);
      assertClose(cpu, full, 3e-2, "bf16 GPU vs fp32 CPU loss");
      List<Double> part =
          new java.util.ArrayList<>(losses(be, DType.BF16, o, tmp.resolve("part"), 3, false));
      part.addAll(losses(be, DType.BF16, o, tmp.resolve("part"), 0, true));
      // The same kernels on the same inputs: a resumed GPU run follows the uninterrupted one to
      // float32 rounding (bit for bit where the kernels are deterministic).
      assertClose(full, part, 1e-5, "resumed bf16 GPU run");
    }
  }
}
