package moetune.app.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import moetune.engine.train.CheckpointStore;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code moetune train} where things go wrong: a diverging run, resuming a copied run. */
class RobustTrainCliTest {
  private static final Pattern NOT_A_NUMBER = Pattern.compile(":\\s*\"?-?(NaN|Infinity)");

  static List<String> demo(Path out, String... more) {
    List<String> a =
        new ArrayList<>(
            List.of(
                "train",
                "--demo",
                "--out",
                out.toString(),
                "--max-length",
                "128",
                "--micro-batch",
                "2",
                "--eval-split",
                "0",
                "--device",
                "cpu"));
    a.addAll(List.of(more));
    return a;
  }

  static List<Long> checkpoints(Path out) throws Exception {
    return new CheckpointStore(out.resolve("checkpoints"))
        .complete().stream().map(CheckpointStore::stepOf).toList();
  }

  @Test
  void aDivergedRunStopsKeepsTheLastGoodCheckpointAndExitsNonZero(@TempDir Path tmp)
      throws Exception {
    Path out = tmp.resolve("run");
    CliRunner r =
        CliRunner.run(
            demo(
                    out,
                    "--lr",
                    "1e30",
                    "--warmup-steps",
                    "0",
                    "--max-steps",
                    "8",
                    "--checkpoint-every",
                    "1",
                    "--keep-last",
                    "1")
                .toArray(String[]::new));
    assertEquals(1, r.code(), r.out() + r.err());
    assertTrue(r.out().contains("the run stopped and wrote no checkpoint of it"), r.out());
    assertTrue(r.out().contains("run failed at step "), r.out());
    List<Long> kept = checkpoints(out);
    assertEquals(1, kept.size(), kept.toString());
    long bad = kept.getFirst() + 1;
    assertTrue(r.out().contains("step " + bad + ": the loss is "), r.out());
    String metrics = Files.readString(out.resolve("metrics.jsonl"));
    assertFalse(NOT_A_NUMBER.matcher(metrics).find(), metrics);
    assertFalse(Files.exists(out.resolve("export")), "a failed demo exports nothing");
  }

  @Test
  void skipModeFinishesAndCountsTheSkippedSteps(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("run");
    CliRunner r =
        CliRunner.run(
            demo(
                    out,
                    "--lr",
                    "1e30",
                    "--warmup-steps",
                    "0",
                    "--max-steps",
                    "6",
                    "--on-nonfinite",
                    "skip")
                .toArray(String[]::new));
    // The weights blow up after a step or two; every later step is skipped and counted.
    String metrics = Files.readString(out.resolve("metrics.jsonl"));
    assertFalse(NOT_A_NUMBER.matcher(metrics).find(), metrics);
    JsonNode end = new ObjectMapper().readTree(metrics.lines().reduce((a, b) -> b).orElseThrow());
    assertEquals("end", end.path("type").asText());
    assertEquals("finished", end.path("outcome").asText(), r.out() + r.err());
    assertEquals(0, r.code(), r.out() + r.err());
    long skipped = metrics.lines().filter(l -> l.contains("\"skipped\":true")).count();
    assertTrue(skipped >= 1, metrics);
    assertEquals(skipped, end.path("skipped_steps").asLong(), metrics);
    assertTrue(r.out().contains("skipped:     " + skipped + " steps"), r.out());
    assertTrue(Files.isDirectory(out.resolve("checkpoints/step-00000006")));
  }

  @Test
  void resumeWritesIntoTheDirectoryItWasGiven(@TempDir Path tmp) throws Exception {
    Path original = tmp.resolve("original");
    CliRunner first =
        CliRunner.run(
            demo(original, "--max-steps", "4", "--checkpoint-every", "2").toArray(String[]::new));
    assertEquals(0, first.code(), first.out() + first.err());
    Path copy = tmp.resolve("copy");
    copyTree(original, copy);
    byte[] metricsBefore = Files.readAllBytes(original.resolve("metrics.jsonl"));
    List<Long> before = checkpoints(original);

    CliRunner resumed = CliRunner.run("train", "--resume", copy.toString(), "--max-steps", "6");
    assertEquals(0, resumed.code(), resumed.out() + resumed.err());
    assertTrue(checkpoints(copy).contains(6L), checkpoints(copy).toString());
    assertEquals(before, checkpoints(original), "the original run is untouched");
    assertTrue(
        java.util.Arrays.equals(
            metricsBefore, Files.readAllBytes(original.resolve("metrics.jsonl"))));
    assertFalse(Files.exists(original.resolve("checkpoints/step-00000006")));

    CliRunner elsewhere =
        CliRunner.run(
            "train", "--resume", copy.toString(), "--out", tmp.resolve("third").toString());
    assertEquals(2, elsewhere.code(), elsewhere.out() + elsewhere.err());
    assertTrue(elsewhere.err().contains("drop --out"), elsewhere.err());
    assertFalse(Files.exists(tmp.resolve("third")));
  }

  static void copyTree(Path from, Path to) throws Exception {
    try (Stream<Path> s = Files.walk(from)) {
      for (Path p : s.toList()) {
        Path t = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) {
          Files.createDirectories(t);
        } else {
          Files.copy(p, t);
        }
      }
    }
  }
}
