package moetune.app.run;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import moetune.app.config.ConfigException;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.hf.MixtralNames;
import moetune.engine.io.MixtralCheckpoint;
import moetune.engine.model.Batch;
import moetune.engine.model.LoraConfig;
import moetune.engine.model.LoraWeights;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.ModelOptions;
import moetune.engine.tensor.DType;
import moetune.engine.train.AdamWOptions;
import moetune.engine.train.FreezeSpec;
import moetune.engine.train.LrSchedule;
import moetune.engine.train.MixtralTrainable;
import moetune.engine.train.SequenceSource;
import moetune.engine.train.TrainOptions;
import moetune.engine.train.Trainer;
import moetune.sequences.PackedSequence;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A tiny model trained with LoRA on every target, its checkpoint exported merged and as a PEFT
 * adapter, each reloaded by moetune with the trained model's logits.
 */
class LoraExportTest {
  static final int[][] IDS = ExportRoundTripTest.IDS;

  static TrainOptions options(long steps) {
    return TrainOptions.builder(
            new AdamWOptions(2e-2, 0.9, 0.95, 1e-8, 0.0, AdamWOptions.Decay.NO_NORMS_NO_BIAS))
        .microBatch(2)
        .gradAccum(1)
        .epochs(1)
        .maxSteps(steps)
        .schedule(LrSchedule.Kind.CONSTANT)
        .warmupSteps(0)
        .minLrRatio(0.0)
        .clipNorm(1.0)
        .auxLossCoef(0.02)
        .routerZLossCoef(0.0)
        .freeze(FreezeSpec.NONE)
        .evalEvery(0)
        .checkpointEvery(0)
        .keepLast(0)
        .seed(5)
        .shuffle(true)
        .build();
  }

  static SequenceSource data() {
    List<PackedSequence> seqs = new ArrayList<>();
    for (int s = 0; s < 6; s++) {
      int t = 12;
      int[] ids = new int[t];
      for (int i = 0; i < t; i++) {
        ids[i] = 3 + (7 * s + 5 * i) % 200;
      }
      seqs.add(PackedSequence.ofDocument(ids));
    }
    return SequenceSource.of(seqs);
  }

  static double relErr(float[] a, float[] b) {
    double num = 0;
    double den = 0;
    for (int i = 0; i < a.length; i++) {
      num += Math.pow(a[i] - b[i], 2);
      den += Math.pow(b[i], 2);
    }
    return Math.sqrt(num / den);
  }

  static float[] logits(MixtralModel m) {
    m.evaluate(Batch.of(IDS, null));
    return m.logits().toFloatArray();
  }

  /**
   * adapterOnly: the run knows its base directory, so checkpoints hold the adapters (and optimizer
   * and tokenizer) only; else (a fresh model's run) they hold the base weights too.
   */
  @ParameterizedTest
  @ValueSource(booleans = {false, true})
  void trainedAdapterExportsMergedAndAsPeftWithTheSameLogits(boolean adapterOnly, @TempDir Path tmp)
      throws Exception {
    Path base = ExportRoundTripTest.modelDir(tmp);
    LoraConfig lora = new LoraConfig(4, 8, 0, Set.copyOf(LoraConfig.ALL_TARGETS), false, 3);
    TrainOptions o = options(4);
    float[] trained;
    float[] untrained;
    try (CpuBackend cpu = new CpuBackend(2)) {
      try (MixtralModel plain = MixtralModel.load(base, cpu)) {
        untrained = logits(plain);
      }
      MixtralCheckpoint ck = MixtralCheckpoint.load(base);
      var config = ck.config();
      ck.close();
      MixtralModel m =
          MixtralModel.load(
              base,
              cpu,
              MixtralTrainable.trainingOptions(new ModelOptions(DType.F32, 5), o).withLora(lora));
      try (MixtralTrainable t =
          new MixtralTrainable(m, config, null, ModelSetup.tokenizerFiles(base), o)
              .withBaseDir(adapterOnly ? base : null)) {
        assertEquals(lora.parameterCount(config), t.trainableParameters());
        assertEquals(lora.parameterCount(config), m.parameters().count());
        long baseParams = 0;
        for (long[] shape : MixtralNames.hubShapes(config).values()) {
          baseParams += moetune.engine.tensor.HostTensor.numel(shape);
        }
        assertEquals(
            baseParams, m.parameters().frozenCount(), "every base weight frozen, stored once");
        new Trainer(t, data(), data(), o, tmp.resolve("run")).run();
        trained = logits(m);
      }
    }
    Path ckpt = Trainer.findCheckpoint(tmp.resolve("run"));
    assertTrue(LoraWeights.isAdapterDir(ckpt), "a LoRA checkpoint holds its adapter");
    assertEquals(!adapterOnly, LoraWeights.hasWeights(ckpt), "base weights in the checkpoint");
    if (adapterOnly) {
      assertEquals(base.toAbsolutePath().normalize(), LoraWeights.baseModel(ckpt));
    }
    assertTrue(relErr(trained, untrained) > 1e-3, "training the adapter mattered");
    // the checkpoint reloads with its adapter (what generate, eval and resume read)
    try (CpuBackend cpu = new CpuBackend(2);
        MixtralModel back = MixtralModel.load(ckpt, cpu)) {
      assertArrayEquals(trained, logits(back));
    }
    Path adapter = tmp.resolve("adapter");
    Exporter.exportAdapter(ckpt, adapter);
    try (var s = Files.list(adapter)) {
      assertEquals(
          List.of(LoraWeights.CONFIG_FILE, LoraWeights.WEIGHTS_FILE),
          s.map(p -> p.getFileName().toString()).sorted().toList());
    }
    try (CpuBackend cpu = new CpuBackend(2);
        MixtralModel back = MixtralModel.load(base, adapter, cpu, new ModelOptions(DType.F32, 0))) {
      assertArrayEquals(trained, logits(back), "base + PEFT adapter");
    }
    Path merged = tmp.resolve("merged");
    Exporter.export(ckpt, merged, DType.F32, 5_000_000_000L);
    assertTrue(!LoraWeights.isAdapterDir(merged), "a merged export has no adapter files");
    float[] mergedLogits = ExportRoundTripTest.logits(merged);
    double err = relErr(mergedLogits, trained);
    assertTrue(err < 1e-5, "merged export vs the LoRA model: relative error " + err);
    // adapter export of a checkpoint without adapters: one clear line, nothing written
    Path none = tmp.resolve("none");
    ConfigException e =
        assertThrows(ConfigException.class, () -> Exporter.exportAdapter(base, none));
    assertTrue(e.getMessage().contains("has no LoRA adapter"), e.getMessage());
    assertTrue(!Files.exists(none));
  }
}
