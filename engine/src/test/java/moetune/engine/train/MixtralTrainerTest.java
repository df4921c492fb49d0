package moetune.engine.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.io.SafetensorsReader;
import moetune.engine.model.LoraConfig;
import moetune.engine.model.LossWeights;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.ModelOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The trainer on the real Mixtral model and AdamW, on the CPU. */
class MixtralTrainerTest {

  static TrainOptions options(long steps, double aux, FreezeSpec freeze, long checkpointEvery) {
    return options(steps, aux, 0.0, freeze, checkpointEvery);
  }

  static TrainOptions options(
      long steps, double aux, double z, FreezeSpec freeze, long checkpointEvery) {
    return TrainOptions.builder(
            new AdamWOptions(1e-2, 0.9, 0.95, 1e-8, 0.1, AdamWOptions.Decay.NO_NORMS_NO_BIAS))
        .microBatch(2)
        .gradAccum(2)
        .epochs(1)
        .maxSteps(steps)
        .schedule(LrSchedule.Kind.COSINE)
        .warmupSteps(2)
        .minLrRatio(0.1)
        .clipNorm(1.0)
        .auxLossCoef(aux)
        .routerZLossCoef(z)
        .freeze(freeze)
        .evalEvery(3)
        .checkpointEvery(checkpointEvery)
        .keepLast(0)
        .seed(11)
        .shuffle(true)
        .build();
  }

  static MixtralTrainable trainable(CpuBackend cpu, TrainOptions o, long initSeed) {
    return trainable(cpu, o, initSeed, 0.0);
  }

  static MixtralTrainable trainable(CpuBackend cpu, TrainOptions o, long initSeed, double jitter) {
    MixtralConfig c =
        TinyMixtral.config(0.02).toBuilder().set(b -> b.routerJitterNoise = jitter).build();
    MixtralModel m =
        TinyMixtral.model(
            cpu, c, initSeed, MixtralTrainable.trainingOptions(ModelOptions.defaults(), o));
    return new MixtralTrainable(m, c, null, List.of(), o);
  }

  static final class Losses implements TrainingListener {
    final List<Double> loss = new ArrayList<>();
    final List<Double> aux = new ArrayList<>();
    final List<Double> z = new ArrayList<>();
    final List<Double> norms = new ArrayList<>();
    final List<ExpertLoad> loads = new ArrayList<>();

    @Override
    public void onStep(StepMetrics m) {
      loss.add(m.loss());
      aux.add(m.auxLoss());
      z.add(m.zLoss());
      norms.add(m.gradNorm());
    }

    @Override
    public void onExpertLoad(ExpertLoad l) {
      loads.add(l);
    }
  }

  /** With router jitter too: its noise position is checkpointed with the optimizer state. */
  @ParameterizedTest
  @ValueSource(doubles = {0.0, 0.1})
  void resumedRunEqualsUninterruptedRunBitForBit(double jitter, @TempDir Path tmp)
      throws Exception {
    SequenceSource train = TinyMixtral.data(9, 20, 1);
    SequenceSource eval = TinyMixtral.data(3, 20, 2);
    TrainOptions o = options(7, 0.05, FreezeSpec.NONE, 0);
    Losses full = new Losses();
    float[] fullWeights;
    float[] fullM;
    try (CpuBackend cpu = new CpuBackend(2);
        MixtralTrainable t = trainable(cpu, o, 5, jitter)) {
      Trainer tr = new Trainer(t, train, eval, o, tmp.resolve("full"));
      tr.addListener(full);
      RunSummary s = tr.run();
      assertTrue(s.lastEval().loss() < s.firstEval().loss(), "eval loss falls");
      fullWeights =
          t.model().backend().download(t.model().parameters().masterFlat()).toFloatArray();
      fullM =
          t.model().parameter("model.layers.1.block_sparse_moe.experts.3.w2.weight").toFloatArray();
    }
    Losses part = new Losses();
    TrainOptions o2 = options(7, 0.05, FreezeSpec.NONE, 2);
    try (CpuBackend cpu = new CpuBackend(2);
        MixtralTrainable t = trainable(cpu, o2, 5, jitter)) {
      Trainer tr = new Trainer(t, train, eval, o2, tmp.resolve("part"));
      tr.addListener(part);
      tr.addListener(
          new TrainingListener() {
            @Override
            public void onStep(StepMetrics m) {
              if (m.step() == 3) tr.requestStop();
            }
          });
      assertEquals(RunSummary.Outcome.STOPPED, tr.run().outcome());
    }
    // A fresh process would start from other weights: use another init seed to prove the
    // checkpoint restores everything.
    try (CpuBackend cpu = new CpuBackend(2);
        MixtralTrainable t = trainable(cpu, o2, 99, jitter)) {
      Trainer tr = new Trainer(t, train, eval, o2, tmp.resolve("part"));
      tr.resumeFrom(Trainer.findCheckpoint(tmp.resolve("part")));
      tr.addListener(part);
      tr.run();
      assertEquals(full.loss, part.loss, "losses");
      assertEquals(full.aux, part.aux, "aux losses");
      assertEquals(full.norms, part.norms, "grad norms");
      assertArrayEquals(
          fullWeights,
          t.model().backend().download(t.model().parameters().masterFlat()).toFloatArray());
      assertArrayEquals(
          fullM,
          t.model()
              .parameter("model.layers.1.block_sparse_moe.experts.3.w2.weight")
              .toFloatArray());
    }
  }

  @Test
  void frozenParametersStayBitIdenticalAndOthersMove(@TempDir Path tmp) {
    SequenceSource train = TinyMixtral.data(6, 16, 3);
    FreezeSpec freeze = new FreezeSpec(true, false, true, Set.of(1));
    TrainOptions o = options(3, 0.02, freeze, 0);
    try (CpuBackend cpu = new CpuBackend(2);
        MixtralTrainable t = trainable(cpu, o, 5)) {
      MixtralModel m = t.model();
      List<String> frozen =
          List.of(
              "model.embed_tokens.weight",
              "lm_head.weight",
              "model.layers.0.block_sparse_moe.gate.weight",
              "model.layers.1.self_attn.q_proj.weight",
              "model.layers.1.block_sparse_moe.experts.2.w1.weight",
              "model.layers.1.input_layernorm.weight");
      List<String> trained =
          List.of(
              "model.layers.0.self_attn.q_proj.weight",
              "model.layers.0.block_sparse_moe.experts.2.w1.weight",
              "model.norm.weight");
      List<float[]> before = new ArrayList<>();
      for (String n : frozen) before.add(m.parameter(n).toFloatArray());
      List<float[]> beforeTrained = new ArrayList<>();
      for (String n : trained) beforeTrained.add(m.parameter(n).toFloatArray());
      new Trainer(t, train, null, o, null).run();
      for (int i = 0; i < frozen.size(); i++) {
        assertArrayEquals(before.get(i), m.parameter(frozen.get(i)).toFloatArray(), frozen.get(i));
      }
      for (int i = 0; i < trained.size(); i++) {
        assertTrue(
            !java.util.Arrays.equals(
                beforeTrained.get(i), m.parameter(trained.get(i)).toFloatArray()),
            trained.get(i) + " should have changed");
      }
    }
  }

  /**
   * A LoRA run (adapters on every target, a fresh model's run so checkpoints hold the base too):
   * stopped and resumed from a model built with another init seed, it ends bit-identical to an
   * uninterrupted run, the base never moves and the optimizer state holds the adapters only.
   */
  @Test
  void loraRunResumesBitForBitAndLeavesTheBaseUntouched(@TempDir Path tmp) throws Exception {
    SequenceSource train = TinyMixtral.data(9, 20, 1);
    TrainOptions o = options(6, 0.05, FreezeSpec.NONE, 2);
    LoraConfig lora = new LoraConfig(3, 6, 0, Set.copyOf(LoraConfig.ALL_TARGETS), false, 4);
    String w2 = "model.layers.1.block_sparse_moe.experts.3.w2.weight";
    float[] fullAdapters;
    float[] baseBefore;
    try (CpuBackend cpu = new CpuBackend(2);
        MixtralTrainable t = loraTrainable(cpu, o, 5, lora)) {
      baseBefore = t.model().parameter(w2).toFloatArray();
      new Trainer(t, train, null, o, tmp.resolve("full")).run();
      fullAdapters =
          t.model().backend().download(t.model().parameters().masterFlat()).toFloatArray();
      assertArrayEquals(baseBefore, t.model().parameter(w2).toFloatArray(), "frozen base");
    }
    try (CpuBackend cpu = new CpuBackend(2);
        MixtralTrainable t = loraTrainable(cpu, o, 5, lora)) {
      Trainer tr = new Trainer(t, train, null, o, tmp.resolve("part"));
      tr.addListener(
          new TrainingListener() {
            @Override
            public void onStep(StepMetrics m) {
              if (m.step() == 3) tr.requestStop();
            }
          });
      assertEquals(RunSummary.Outcome.STOPPED, tr.run().outcome());
    }
    Path ckpt = Trainer.findCheckpoint(tmp.resolve("part"));
    try (SafetensorsReader r =
        SafetensorsReader.open(ckpt.resolve(MixtralTrainable.OPTIMIZER_FILE))) {
      for (String n : r.names()) {
        assertTrue(n.contains(".lora_"), "optimizer state of a frozen tensor: " + n);
      }
    }
    try (CpuBackend cpu = new CpuBackend(2);
        MixtralTrainable t = loraTrainable(cpu, o, 5, lora.withSeed(77))) {
      Trainer tr = new Trainer(t, train, null, o, tmp.resolve("part"));
      tr.resumeFrom(ckpt);
      tr.run();
      assertArrayEquals(
          fullAdapters,
          t.model().backend().download(t.model().parameters().masterFlat()).toFloatArray());
      assertArrayEquals(baseBefore, t.model().parameter(w2).toFloatArray(), "frozen base");
    }
  }

  static MixtralTrainable loraTrainable(
      CpuBackend cpu, TrainOptions o, long initSeed, LoraConfig lora) {
    MixtralConfig c = TinyMixtral.config(0.02);
    MixtralModel m =
        TinyMixtral.model(
            cpu,
            c,
            initSeed,
            MixtralTrainable.trainingOptions(ModelOptions.defaults(), o).withLora(lora));
    return new MixtralTrainable(m, c, null, List.of(), o);
  }

  @Test
  void expertLoadSharesSumToOneAndEntropyIsBounded() {
    SequenceSource train = TinyMixtral.data(4, 16, 4);
    TrainOptions o = options(2, 0.02, FreezeSpec.NONE, 0);
    Losses rec = new Losses();
    try (CpuBackend cpu = new CpuBackend(2);
        MixtralTrainable t = trainable(cpu, o, 5)) {
      Trainer tr = new Trainer(t, train, null, o, null);
      tr.addListener(rec);
      tr.run();
    }
    assertEquals(2, rec.loads.size());
    for (ExpertLoad l : rec.loads) {
      assertEquals(2, l.share().length);
      for (int layer = 0; layer < 2; layer++) {
        double sum = 0;
        for (double s : l.share()[layer]) sum += s;
        assertEquals(1.0, sum, 1e-12);
        assertTrue(
            l.entropy()[layer] > 0 && l.entropy()[layer] <= Math.log(4) + 1e-9,
            "entropy " + l.entropy()[layer]);
        assertTrue(l.imbalance(layer) >= 1.0);
      }
    }
  }

  /**
   * A run with a router z-loss coefficient reports z every step (in the metrics and in
   * metrics.jsonl as z_loss); a run without one computes none and writes no z_loss; and a model
   * built without the run's coefficient is refused.
   */
  @Test
  void routerZLossIsReportedAndLoggedOnlyWhenOn(@TempDir Path tmp) throws Exception {
    SequenceSource train = TinyMixtral.data(4, 16, 4);
    for (double coef : new double[] {0.0, 0.01}) {
      TrainOptions o = options(2, 0.02, coef, FreezeSpec.NONE, 0);
      Losses rec = new Losses();
      Path file = tmp.resolve("metrics-" + coef + ".jsonl");
      try (CpuBackend cpu = new CpuBackend(2);
          MixtralTrainable t = trainable(cpu, o, 5);
          MetricsLog log = MetricsLog.create(file)) {
        Trainer tr = new Trainer(t, train, null, o, null);
        tr.addListener(rec);
        tr.addListener(log);
        tr.run();
      }
      List<JsonNode> steps = new ArrayList<>();
      for (String line : Files.readAllLines(file)) {
        JsonNode n = new ObjectMapper().readTree(line);
        if (n.path("type").asText().equals("step")) {
          steps.add(n);
        }
      }
      assertEquals(2, steps.size());
      for (int i = 0; i < 2; i++) {
        if (coef == 0) {
          assertEquals(0.0, rec.z.get(i));
          assertTrue(steps.get(i).path("z_loss").isMissingNode(), steps.get(i).toString());
        } else {
          // logsumexp over 4 experts is at least log 4, so z >= (log 4)^2 on every step
          assertTrue(rec.z.get(i) >= Math.pow(Math.log(4), 2) - 1e-6, "z " + rec.z.get(i));
          assertEquals(rec.z.get(i), steps.get(i).path("z_loss").asDouble());
        }
      }
    }
    // The run's coefficients, not the checkpoint's, are what the model's forward and backward get.
    TrainOptions on = options(2, 0.02, 0.01, FreezeSpec.NONE, 0);
    MixtralConfig c = TinyMixtral.config(0.05);
    try (CpuBackend cpu = new CpuBackend(1)) {
      MixtralModel plain = TinyMixtral.model(cpu, c, 5);
      try (MixtralTrainable t = new MixtralTrainable(plain, c, null, List.of(), on)) {
        assertEquals(new LossWeights(0.02, 0.01), t.lossWeights());
        assertEquals(0.05, plain.config().routerAuxLossCoef, "the model config keeps its own");
      }
    }
  }
}
