package moetune.app.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real {@code moetune train} process stopped with SIGTERM (what Ctrl-C and a scheduler's kill
 * send) writes a checkpoint at the next step boundary; {@code --resume} then finishes the run, and
 * its losses equal an uninterrupted run's bit for bit.
 */
class SigtermResumeTest {
  static final String[] FLAGS = {
    "--max-steps",
    "30",
    "--max-length",
    "128",
    "--micro-batch",
    "2",
    "--eval-every",
    "10",
    "--checkpoint-every",
    "0",
    "--device",
    "cpu"
  };

  static String[] args(Path out, String... first) {
    List<String> a = new ArrayList<>(List.of(first));
    a.addAll(List.of("--demo", "--out", out.toString()));
    a.addAll(List.of(FLAGS));
    return a.toArray(String[]::new);
  }

  /** "step:field" of every record of a type, in file order. */
  static List<String> records(Path metrics, String type, String field) throws IOException {
    ObjectMapper json = new ObjectMapper();
    List<String> out = new ArrayList<>();
    for (String line : Files.readAllLines(metrics)) {
      JsonNode n = json.readTree(line);
      if (n.get("type").asText().equals(type)) {
        out.add(n.get("step").asLong() + ":" + n.get(field).asText());
      }
    }
    return out;
  }

  static long lastStep(Path metrics) throws IOException {
    if (!Files.exists(metrics)) {
      return 0;
    }
    long step = 0;
    for (String line : Files.readAllLines(metrics)) {
      if (line.startsWith("{\"type\":\"step\"")) {
        step = new ObjectMapper().readTree(line).get("step").asLong();
      }
    }
    return step;
  }

  @Test
  void sigtermCheckpointsAndResumeEqualsUninterrupted(@TempDir Path tmp) throws Exception {
    Path stopped = tmp.resolve("stopped");
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    List<String> cmd =
        new ArrayList<>(
            List.of(
                java,
                "--enable-native-access=ALL-UNNAMED",
                "-cp",
                System.getProperty("java.class.path"),
                "moetune.app.Main"));
    cmd.addAll(List.of(args(stopped, "train")));
    Process p =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(tmp.resolve("stopped.log").toFile())
            .start();
    Path metrics = stopped.resolve("metrics.jsonl");
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    while (lastStep(metrics) < 3 && p.isAlive() && System.nanoTime() < deadline) {
      Thread.sleep(50);
    }
    assertTrue(
        p.isAlive(),
        "the run ended before it could be stopped: "
            + Files.readString(tmp.resolve("stopped.log")));
    p.destroy(); // SIGTERM
    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the stopped run did not exit");
    String log = Files.readString(tmp.resolve("stopped.log"));
    assertEquals(143, p.exitValue(), log);
    assertTrue(log.contains("checkpoint (stop) step "), log);
    List<String> stopCk = records(metrics, "checkpoint", "reason");
    assertEquals(1, stopCk.size(), stopCk.toString());
    long stopStep = Long.parseLong(stopCk.getFirst().split(":")[0]);
    assertTrue(stopStep >= 3 && stopStep < 30, "stopped at " + stopStep);
    assertEquals(stopCk.getFirst(), stopStep + ":stop");

    Object[] resumed = TrainCliTest.run("train", "--resume", stopped.toString());
    assertEquals(0, resumed[0], (String) resumed[1] + resumed[2]);
    assertTrue(((String) resumed[1]).contains("resumed from "), (String) resumed[1]);

    Path straight = tmp.resolve("straight");
    Object[] full = TrainCliTest.run(args(straight, "train"));
    assertEquals(0, full[0], (String) full[2]);

    List<String> want = records(straight.resolve("metrics.jsonl"), "step", "loss");
    assertEquals(30, want.size());
    assertEquals(want, records(metrics, "step", "loss"), "losses of the stopped and resumed run");
    assertEquals(
        records(straight.resolve("metrics.jsonl"), "step", "grad_norm"),
        records(metrics, "step", "grad_norm"));
    assertEquals(
        records(straight.resolve("metrics.jsonl"), "eval", "eval_loss"),
        records(metrics, "eval", "eval_loss"));
    assertTrue(
        Arrays.equals(
            Files.readAllBytes(straight.resolve("checkpoints/step-00000030/model.safetensors")),
            Files.readAllBytes(stopped.resolve("checkpoints/step-00000030/model.safetensors"))),
        "final weights identical");
  }
}
