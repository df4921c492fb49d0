package moetune.app.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import moetune.engine.hf.MixtralConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code moetune bench step} end to end on the CPU with a tiny config. */
class BenchStepCommandTest {
  @TempDir Path dir;

  private Path tinyConfig() throws Exception {
    return tinyConfig(dir);
  }

  /** A two-layer Mixtral config.json in {@code dir} (the bench step tests' model). */
  static Path tinyConfig(Path dir) throws Exception {
    MixtralConfig c =
        MixtralConfig.builder()
            .set(
                b -> {
                  b.vocabSize = 64;
                  b.hiddenSize = 32;
                  b.intermediateSize = 48;
                  b.numHiddenLayers = 2;
                  b.numAttentionHeads = 4;
                  b.numKeyValueHeads = 2;
                  b.numLocalExperts = 4;
                  b.numExpertsPerTok = 2;
                  b.maxPositionEmbeddings = 64;
                })
            .build();
    return Files.writeString(dir.resolve("config.json"), c.toJson());
  }

  @Test
  void printsTheRowTheBreakdownAndTheMemoryPlan() throws Exception {
    CliRunner r =
        CliRunner.run(
            "bench",
            "step",
            "--device",
            "cpu",
            "--precision",
            "fp32",
            "--config",
            tinyConfig().toString(),
            "--micro-batch",
            "2",
            "--seq-len",
            "8",
            "--steps",
            "2",
            "--warmup",
            "1");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("| moetune cpu (f32) |"), r.out());
    assertTrue(r.out().contains("2 x 8 tokens per step"), r.out());
    assertTrue(r.out().contains("| MoE: routing"), r.out());
    assertTrue(r.out().contains("memory plan:"), r.out());
  }

  @Test
  void badInputIsOneLineNamingTheOption() throws Exception {
    CliRunner both =
        CliRunner.run(
            "bench", "step", "--device", "cpu", "--config", "1.5b", "--model", dir.toString());
    assertEquals(2, both.code(), both.err());
    assertTrue(both.err().contains("--config") && both.err().contains("--model"), both.err());
    assertEquals(1, both.err().strip().lines().count(), both.err());

    CliRunner missing =
        CliRunner.run("bench", "step", "--device", "cpu", "--config", "no-such.json");
    assertEquals(2, missing.code(), missing.err());
    assertTrue(missing.err().contains("no-such.json"), missing.err());

    CliRunner precision =
        CliRunner.run(
            "bench",
            "step",
            "--device",
            "cpu",
            "--config",
            tinyConfig().toString(),
            "--precision",
            "fp8");
    assertEquals(2, precision.code(), precision.err());
    assertTrue(precision.err().contains("--precision fp8"), precision.err());
  }
}
