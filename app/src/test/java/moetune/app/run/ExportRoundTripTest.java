package moetune.app.run;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import moetune.app.config.ConfigException;
import moetune.datasets.ByteTokenizerFiles;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.io.MixtralCheckpoint;
import moetune.engine.io.SafetensorsIndex;
import moetune.engine.io.SafetensorsReader;
import moetune.engine.model.Batch;
import moetune.engine.model.MixtralModel;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Floats;
import moetune.engine.tensor.HostTensor;
import moetune.engine.train.FreshModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** moetune reloads its own export and computes the same logits. */
class ExportRoundTripTest {
  static final int[][] IDS = {{1, 40, 77, 3, 250, 9, 12, 200}, {1, 5, 6, 7, 8, 9, 10, 11}};

  /** A model directory as a train run's checkpoint holds it (float32, byte tokenizer). */
  static Path modelDir(Path root) throws Exception {
    MixtralConfig c = DemoSetup.config().toBuilder().set(b -> b.hiddenSize = 32).build();
    Map<String, HostTensor> w = FreshModel.weights(c, 3);
    Path dir = root.resolve("model");
    Path tok = Files.createDirectories(root.resolve("tok"));
    ByteTokenizerFiles.write(tok);
    MixtralCheckpoint.save(
        dir,
        c,
        null,
        w::get,
        DType.F32,
        5_000_000_000L,
        List.of(tok.resolve("tokenizer.json"), tok.resolve("tokenizer_config.json")));
    Files.writeString(
        dir.resolve("trainer-state.json"), "{}"); // as in a checkpoint: must not be exported
    Files.writeString(dir.resolve("optimizer.safetensors"), "x");
    return dir;
  }

  static float[] logits(Path dir) {
    try (CpuBackend cpu = new CpuBackend(2);
        MixtralModel m = MixtralModel.load(dir, cpu)) {
      m.evaluate(Batch.of(IDS, null));
      return m.logits().toFloatArray();
    }
  }

  @Test
  void fp32ExportReloadsToIdenticalLogits(@TempDir Path tmp) throws Exception {
    Path src = modelDir(tmp);
    Path out = tmp.resolve("export");
    Exporter.export(src, out, DType.F32, 5_000_000_000L);
    assertArrayEquals(logits(src), logits(out));
    try (var s = Files.list(out)) {
      assertEquals(
          List.of(
              "config.json",
              "generation_config.json",
              "model.safetensors",
              "tokenizer.json",
              "tokenizer_config.json"),
          s.map(p -> p.getFileName().toString()).sorted().toList());
    }
    try (SafetensorsReader r = SafetensorsReader.open(out.resolve("model.safetensors"))) {
      assertTrue(
          r.contains("model.layers.1.block_sparse_moe.experts.3.w2.weight"),
          "hub per-expert layout");
      assertTrue(r.contains("model.layers.0.block_sparse_moe.gate.weight"));
      assertEquals(
          3 + 2 * (4 + 1 + 4 * 3 + 2),
          r.names().size(),
          "embed, norm, lm_head + per layer tensors");
    }
  }

  @Test
  void bf16ShardedExportHasAnIndexAndBf16RoundedWeights(@TempDir Path tmp) throws Exception {
    Path src = modelDir(tmp);
    Path out = tmp.resolve("export");
    Exporter.export(src, out, DType.BF16, 100_000L);
    SafetensorsIndex index = SafetensorsIndex.load(out.resolve(SafetensorsIndex.FILE_NAME));
    assertTrue(index.weightMap().values().stream().distinct().count() > 1, "sharded");
    assertTrue(
        index.weightMap().containsKey("model.layers.0.block_sparse_moe.experts.0.w1.weight"));
    try (MixtralCheckpoint a = MixtralCheckpoint.load(src);
        MixtralCheckpoint b = MixtralCheckpoint.load(out)) {
      String name = "model.layers.1.block_sparse_moe.experts.2.w3.weight";
      assertEquals(DType.BF16, b.tensor(name).dtype());
      float[] want = a.floats(name);
      for (int i = 0; i < want.length; i++) {
        want[i] = Floats.roundToBf16(want[i]);
      }
      assertArrayEquals(want, b.floats(name));
    }
    float[] ref = logits(src);
    float[] got = logits(out);
    double num = 0;
    double den = 0;
    for (int i = 0; i < ref.length; i++) {
      num += Math.pow(ref[i] - got[i], 2);
      den += Math.pow(ref[i], 2);
    }
    assertTrue(Math.sqrt(num / den) < 1e-2, "bf16 relative error " + Math.sqrt(num / den));
    assertTrue(Math.sqrt(num / den) > 0, "bf16 rounding must change something");
  }

  @Test
  void referenceLogitsFileHoldsTheModelsLogits(@TempDir Path tmp) throws Exception {
    Path src = modelDir(tmp);
    Path file = tmp.resolve("ref.safetensors");
    HostTensor written = Exporter.writeReferenceLogits(src, file, 2, 8, 77);
    try (SafetensorsReader r = SafetensorsReader.open(file);
        CpuBackend cpu = new CpuBackend(2);
        MixtralModel m = MixtralModel.load(src, cpu)) {
      long[] ids = r.read("input_ids").toLongArray();
      int[][] rows = new int[2][8];
      for (int i = 0; i < 16; i++) {
        rows[i / 8][i % 8] = (int) ids[i];
        assertTrue(ids[i] >= 0 && ids[i] < 272);
      }
      m.evaluate(Batch.of(rows, null));
      assertArrayEquals(m.logits().toFloatArray(), r.read("logits").toFloatArray());
      assertArrayEquals(new long[] {2, 8, 272}, r.read("logits").shape());
      assertArrayEquals(written.toFloatArray(), r.read("logits").toFloatArray());
    }
  }

  @Test
  void refusesToOverwriteADirectoryThatIsNotAModel(@TempDir Path tmp) throws Exception {
    Path src = modelDir(tmp);
    Path out = Files.createDirectories(tmp.resolve("mine"));
    Files.writeString(out.resolve("notes.txt"), "keep me");
    ConfigException e =
        assertThrows(
            ConfigException.class, () -> Exporter.export(src, out, DType.F32, 5_000_000_000L));
    assertTrue(
        e.getMessage().startsWith("--out " + out + ": exists and is not empty"), e.getMessage());
    assertEquals("keep me", Files.readString(out.resolve("notes.txt")));
    assertFalse(Files.exists(out.resolve("config.json")));
    e =
        assertThrows(
            ConfigException.class,
            () -> Exporter.export(src, out, DType.F32, 5_000_000_000L, true, f -> {}));
    assertTrue(e.getMessage().contains("is not a model directory"), e.getMessage());
    assertEquals("keep me", Files.readString(out.resolve("notes.txt")));
  }

  @Test
  void anEarlierExportIsReplacedOnlyWithOverwriteAndItsOtherFilesAreKept(@TempDir Path tmp)
      throws Exception {
    Path src = modelDir(tmp);
    Path out = tmp.resolve("export");
    Exporter.export(src, out, DType.BF16, 100_000L); // several shards and an index
    assertTrue(Files.isRegularFile(out.resolve("model.safetensors.index.json")));
    Files.writeString(out.resolve("README.md"), "my notes");
    Files.createDirectories(out.resolve("eval-results"));
    Files.writeString(out.resolve("eval-results/mmlu.json"), "{}");
    byte[] config = Files.readAllBytes(out.resolve("config.json"));

    ConfigException e =
        assertThrows(
            ConfigException.class, () -> Exporter.export(src, out, DType.F32, 5_000_000_000L));
    assertTrue(e.getMessage().contains("pass --overwrite"), e.getMessage());
    assertArrayEquals(config, Files.readAllBytes(out.resolve("config.json")), "nothing changed");

    Exporter.export(src, out, DType.F32, 5_000_000_000L, true, f -> {});
    assertTrue(Files.readString(out.resolve("config.json")).contains("float32"));
    assertTrue(Files.isRegularFile(out.resolve("model.safetensors")));
    assertFalse(
        Files.exists(out.resolve("model.safetensors.index.json")),
        "the earlier export's shard index is the export's own file: replaced");
    try (var files = Files.list(out)) {
      assertEquals(
          List.of(),
          files.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("model-0")).toList(),
          "the earlier shards are gone");
    }
    assertEquals("my notes", Files.readString(out.resolve("README.md")));
    assertEquals("{}", Files.readString(out.resolve("eval-results/mmlu.json")));
    try (var files = Files.list(tmp)) {
      assertTrue(
          files.noneMatch(p -> p.getFileName().toString().contains("moetune-old")),
          "no leftover of the replaced directory");
    }
  }

  @Test
  void aTrainingCheckpointIsNeverAnExportTarget(@TempDir Path tmp) throws Exception {
    Path src = modelDir(tmp);
    Path run = Files.createDirectories(tmp.resolve("run"));
    Files.writeString(run.resolve("run-config.yaml"), "model: x\n");
    Path step = Files.createDirectories(run.resolve("checkpoints/step-00000004"));
    Files.writeString(step.resolve("config.json"), "{}");
    Files.writeString(step.resolve("trainer-state.json"), "{}");
    for (Path to : List.of(step, run, run.resolve("checkpoints/step-00000008"))) {
      ConfigException e =
          assertThrows(
              ConfigException.class,
              () -> Exporter.export(src, to, DType.F32, 5_000_000_000L, true, f -> {}));
      assertTrue(e.getMessage().contains("belongs to a training run"), e.getMessage());
    }
    assertEquals("{}", Files.readString(step.resolve("config.json")));
    Exporter.export(src, run.resolve("export"), DType.F32, 5_000_000_000L); // beside is fine
  }

  @Test
  void exportReportsItsProgressTensorByTensor(@TempDir Path tmp) throws Exception {
    Path src = modelDir(tmp);
    List<Double> seen = new java.util.ArrayList<>();
    Exporter.export(src, tmp.resolve("out"), DType.BF16, 100_000L, seen::add);
    int tensors =
        moetune.engine.hf.MixtralNames.hubShapes(MixtralConfig.load(src.resolve("config.json")))
            .size();
    // 0 first, one value as each tensor is requested, then 1 once the directory is in place
    assertEquals(tensors + 2, seen.size(), seen.toString());
    assertEquals(0.0, seen.get(0));
    assertEquals(1.0, seen.get(seen.size() - 1));
    for (int i = 1; i < seen.size(); i++) {
      assertTrue(seen.get(i) >= seen.get(i - 1), "progress went back at " + i + ": " + seen);
    }
  }
}
