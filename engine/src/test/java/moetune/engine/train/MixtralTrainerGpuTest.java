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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

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
    return trainable(TinyMixtral.config(0.02), be, act, o, seed);
  }

  static MixtralTrainable trainable(
      MixtralConfig c, Backend be, DType act, TrainOptions o, long seed) {
    MixtralConfig train = c;
    MixtralModel m =
        MixtralModel.create(train, FreshModel.weights(train, seed), be, new ModelOptions(act, 0));
    return new MixtralTrainable(m, c, null, List.of(), o);
  }

  static List<Double> losses(
      Backend be, DType act, TrainOptions o, Path ck, long stopAt, boolean resume)
      throws Exception {
    return losses(TinyMixtral.config(0.02), be, act, o, ck, stopAt, resume);
  }

  static List<Double> losses(
      MixtralConfig c, Backend be, DType act, TrainOptions o, Path ck, long stopAt, boolean resume)
      throws Exception {
    MixtralTrainerTest.Losses rec = new MixtralTrainerTest.Losses();
    try (MixtralTrainable t = trainable(c, be, act, o, 5)) {
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

  /**
   * The tiny model with head dim 64 or 128 (4 heads over 2 kv heads on a hidden size of 16), where
   * the tensor-core attention kernels apply: bf16 training on each attention path follows the
   * float32 CPU run's losses within the bf16 bound above, and each path ran where it should (cuDNN,
   * where 9.19+ is installed: every call, the packed documents as ragged sequences). The data packs
   * two documents per sequence with a padded tail, so the document and padding masks take part in
   * every step.
   */
  @ParameterizedTest(name = "head dim {0}")
  @ValueSource(ints = {64, 128})
  void bf16TrainingOnEachAttentionPathFollowsTheCpu(int headDim, @TempDir Path tmp)
      throws Exception {
    MixtralConfig c =
        MixtralConfig.builder()
            .set(
                b -> {
                  b.vocabSize = TinyMixtral.VOCAB;
                  b.hiddenSize = 16;
                  b.intermediateSize = 24;
                  b.numHiddenLayers = 2;
                  b.numAttentionHeads = 4;
                  b.numKeyValueHeads = 2;
                  b.headDim = headDim;
                  b.numLocalExperts = 4;
                  b.numExpertsPerTok = 2;
                  b.maxPositionEmbeddings = 128;
                  b.routerAuxLossCoef = 0.02;
                  b.initializerRange = 0.1;
                })
            .build();
    TrainOptions o = MixtralTrainerTest.options(6, 0.05, FreezeSpec.NONE, 0);
    List<Double> cpu;
    try (CpuBackend be = new CpuBackend(2)) {
      cpu = losses(c, be, DType.F32, o, tmp.resolve("cpu"), 0, false);
    }
    boolean cudnnTests = !"0".equals(System.getenv("MOETUNE_TEST_CUDNN"));
    for (String path :
        cudnnTests ? new String[] {"cudnn", "own", "scalar"} : new String[] {"own", "scalar"}) {
      try (CudaBackend be = new CudaBackend(0, false)) {
        be.attentionPath(path);
        List<Double> got = losses(c, be, DType.BF16, o, tmp.resolve(path), 0, false);
        long own = be.ownAttentionCalls(), cudnn = be.cudnnAttentionCalls();
        System.out.printf(
            "head dim %d, %s attention: %d calls on cuDNN, %d on the tensor-core kernels (%s),"
                + " losses %s%n",
            headDim, path, cudnn, own, be.cudnnStatus(), got);
        if (path.equals("cudnn")) {
          // the packed documents and padded tails as ragged sequences: nothing falls back
          assertTrue(
              be.cudnnStatus().startsWith("cuDNN unavailable") ? own > 0 : own == 0 && cudnn > 0,
              "cudnn path: " + cudnn + " calls on cuDNN, " + own + " on the own kernels");
        } else {
          assertTrue(
              path.equals("own") ? own > 0 : own == 0,
              path + " path: " + own + " attention calls ran on the tensor-core kernels");
        }
        assertClose(cpu, got, 3e-2, "bf16 GPU (" + path + " attention) vs fp32 CPU loss");
      }
    }
  }
}
