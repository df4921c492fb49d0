package moetune.app.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import moetune.app.run.DemoSetup;
import moetune.datasets.SampleData;
import moetune.engine.hf.MixtralConfig;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The small cases of a run config that does not fit its model or its output directory: each is one
 * line naming the field (exit 2), found before anything is trained, with nothing on disk changed.
 */
class RunChecksCliTest {
  @TempDir Path tmp;
  Path data;

  @BeforeEach
  void data() throws Exception {
    data = tmp.resolve("data.jsonl");
    SampleData.writeShareGpt(data, SampleData.arithmetic(1, 40));
  }

  Path model(Consumer<MixtralConfig.Builder> change) throws Exception {
    Path f = tmp.resolve("config-" + System.nanoTime() + ".json");
    Files.writeString(
        f, DemoSetup.config().toBuilder().set(change).build().toJson(), StandardCharsets.UTF_8);
    return f;
  }

  CliRunner train(Path modelConfig, Path out, String... more) {
    List<String> a =
        new ArrayList<>(
            List.of(
                "train",
                "--model",
                "new:" + modelConfig,
                "--datasets",
                data.toString(),
                "--format",
                "sharegpt",
                "--max-length",
                "128",
                "--micro-batch",
                "2",
                "--max-steps",
                "1",
                "--eval-split",
                "0",
                "--device",
                "cpu",
                "--out",
                out.toString()));
    a.addAll(List.of(more));
    return CliRunner.run(a.toArray(String[]::new));
  }

  static void oneLine(CliRunner r, String... mustMention) {
    assertEquals(2, r.code(), r.out() + r.err());
    assertEquals(1, r.err().strip().lines().count(), r.err());
    assertFalse(r.err().contains("\tat "), r.err());
    for (String s : mustMention) {
      assertTrue(r.err().contains(s), "should mention '" + s + "': " + r.err());
    }
  }

  @Test
  void frozenLayersMustExistAndCountUp() throws Exception {
    Path m = model(b -> {});
    oneLine(
        train(m, tmp.resolve("a"), "--freeze", "layer:7"),
        "field 'freeze': layer:7 does not exist; the model has 2 layers");
    oneLine(train(m, tmp.resolve("b"), "--freeze", "layer:3-1"), "counts down", "layer:1-3");
  }

  @Test
  void warmupLongerThanTheRunIsWarnedAbout() throws Exception {
    CliRunner r = train(model(b -> {}), tmp.resolve("a"), "--warmup-steps", "50");
    assertEquals(0, r.code(), r.out() + r.err());
    assertTrue(
        r.out().contains("warning: warmup-steps 50 is more than the run's 1 steps"), r.out());
  }

  @Test
  void anOlderRunsMetricsAreNotTruncated() throws Exception {
    Path out = Files.createDirectories(tmp.resolve("old"));
    Files.writeString(out.resolve("metrics.jsonl"), "{\"type\":\"step\",\"step\":1}\n");
    oneLine(train(model(b -> {}), out), "field 'out'", "metrics.jsonl of an earlier run");
    assertEquals(
        "{\"type\":\"step\",\"step\":1}\n", Files.readString(out.resolve("metrics.jsonl")));
    assertFalse(Files.exists(out.resolve("run-config.yaml")), "nothing was written");
  }

  @Test
  void aModelTooLargeForTheHeapIsOneLineBeforeAnyAllocation() throws Exception {
    Path big =
        model(
            b -> {
              b.hiddenSize = 8192;
              b.intermediateSize = 14336;
              b.numHiddenLayers = 32;
              b.numAttentionHeads = 64;
              b.numKeyValueHeads = 8;
              b.numLocalExperts = 8;
              b.vocabSize = 32000;
            });
    oneLine(
        train(big, tmp.resolve("big")),
        "field 'model': the model has 95,553,069,056 parameters",
        "parameters",
        "MOETUNE_JAVA_OPTS=-Xmx");
  }

  @Test
  void anOutputDirectoryThatCannotBeMadeIsOneLine() throws Exception {
    Path file = Files.writeString(tmp.resolve("a-file"), "x");
    oneLine(train(model(b -> {}), file.resolve("run")), "field 'out': cannot write to");
    assertEquals("x", Files.readString(file));
  }

  @Test
  void maxLengthBeyondTheModelsPositionsIsWarnedAbout() throws Exception {
    CliRunner r = train(model(b -> b.maxPositionEmbeddings = 100), tmp.resolve("run"));
    assertEquals(0, r.code(), r.out() + r.err());
    assertTrue(
        r.out()
            .contains("warning: max-length 128 is above the model's max_position_embeddings 100"),
        r.out());
  }
}
