package moetune.app.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import moetune.app.Main;
import moetune.app.config.RunConfigParser;
import moetune.app.run.TrainingJob;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The command line end to end: the demo on a short schedule (the README's main job, as CI runs it),
 * and a bad flag.
 */
class TrainCliTest {

  /** Runs the CLI and returns {exit code, stdout, stderr}. */
  static Object[] run(String... args) {
    PrintStream out = System.out;
    PrintStream err = System.err;
    ByteArrayOutputStream o = new ByteArrayOutputStream();
    ByteArrayOutputStream e = new ByteArrayOutputStream();
    try {
      System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
      System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
      int code = Main.run(args);
      return new Object[] {
        code, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8)
      };
    } finally {
      System.setOut(out);
      System.setErr(err);
    }
  }

  @Test
  void demoTrainsExportsAndTheExportGenerates(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("demo");
    Object[] r =
        run(
            "--train",
            "--demo",
            "--out",
            out.toString(),
            "--max-steps",
            "16",
            "--eval-every",
            "8",
            "--max-length",
            "128",
            "--micro-batch",
            "4",
            "--warmup-steps",
            "4",
            "--checkpoint-every",
            "8",
            "--device",
            "cpu");
    String stdout = (String) r[1];
    assertEquals(0, r[0], stdout + r[2]);
    assertTrue(stdout.contains("  lr: 0.003\n"), "the full config is printed first");

    List<JsonNode> steps = new ArrayList<>();
    List<JsonNode> evals = new ArrayList<>();
    List<JsonNode> loads = new ArrayList<>();
    ObjectMapper json = new ObjectMapper();
    for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) {
      JsonNode n = json.readTree(line);
      switch (n.get("type").asText()) {
        case "step" -> steps.add(n);
        case "eval" -> evals.add(n);
        case "expert_load" -> loads.add(n);
        default -> {}
      }
    }
    assertEquals(16, steps.size());
    assertEquals(16, loads.size());
    for (String f : List.of("step", "loss", "aux_loss", "grad_norm", "lr", "tokens_per_s")) {
      assertTrue(steps.get(5).has(f), "step record lacks " + f);
    }
    assertEquals(List.of(0L, 8L, 16L), evals.stream().map(n -> n.get("step").asLong()).toList());
    double first = evals.getFirst().get("eval_loss").asDouble();
    double last = evals.getLast().get("eval_loss").asDouble();
    assertEquals(Math.log(272), first, 0.2, "an untrained model is near uniform over 272 tokens");
    assertTrue(last < first - 1.0, "eval loss must fall clearly: " + first + " -> " + last);
    assertEquals(Math.exp(last), evals.getLast().get("eval_ppl").asDouble(), 1e-9 * Math.exp(last));
    assertEquals(4, loads.get(3).get("share").get(0).size(), "4 experts per layer");

    assertTrue(Files.isRegularFile(out.resolve("export/model.safetensors")));
    assertTrue(Files.isRegularFile(out.resolve("export/tokenizer.json")));
    assertTrue(Files.isRegularFile(out.resolve("checkpoints/step-00000016/optimizer.safetensors")));
    assertTrue(stdout.contains("exported the trained model to " + out.resolve("export")));
    // the saved config reads back to what was printed
    assertEquals(
        RunConfigParser.parse(out.resolve(TrainingJob.CONFIG_FILE), Map.of()).toYaml().indent(2),
        stdout.substring(
            stdout.indexOf("\n") + 1, stdout.indexOf("\n", stdout.indexOf("keep-last")) + 1));

    Object[] g =
        run(
            "generate",
            "--model",
            out.resolve("export").toString(),
            "--template",
            "chatml",
            "--prompt",
            "What is 2 + 2?",
            "--max-new-tokens",
            "5",
            "--device",
            "cpu");
    assertEquals(0, g[0], (String) g[2]);
    assertTrue(
        ((String) g[2]).contains("[5 tokens, stopped: max_tokens]")
            || ((String) g[2]).contains("stopped: "),
        (String) g[2]);

    Path few = tmp.resolve("few.jsonl");
    Files.write(few, Files.readAllLines(out.resolve("demo/sample.jsonl")).subList(0, 30));
    Object[] e =
        run(
            "eval",
            "--model",
            out.toString(),
            "--data",
            few.toString(),
            "--max-length",
            "128",
            "--device",
            "cpu");
    assertEquals(0, e[0], (String) e[2]);
    String evalLine = (String) e[1];
    assertTrue(evalLine.contains("(30 conversations)"), evalLine);
    double evalLoss = Double.parseDouble(evalLine.replaceAll("(?s).*: loss ([0-9.]+),.*", "$1"));
    assertTrue(evalLoss < first - 1.0, "the trained model's loss on training data: " + evalLine);
  }

  @Test
  void badFlagIsOneLineAndExitCode2(@TempDir Path tmp) {
    Object[] r = run("train", "--demo", "--out", tmp.toString(), "--lr", "-1e-4");
    assertEquals(2, r[0]);
    assertEquals("moetune train: --lr: must be > 0, got -1.0E-4\n", r[2]);
    Object[] t = run("train", "--demo", "--out", tmp.toString(), "--template", "nope");
    assertEquals(2, t[0]);
    assertTrue(((String) t[2]).startsWith("moetune train: field 'datasets[0]' ("), (String) t[2]);
    assertTrue(
        ((String) t[2]).contains("unknown template 'nope'; known templates: "), (String) t[2]);
    assertEquals(1, ((String) t[2]).lines().count());
    Path used = tmp.resolve("used");
    Path ck = tmp.resolve("used/checkpoints/step-00000005");
    try {
      Files.createDirectories(ck);
      Files.writeString(ck.resolve("trainer-state.json"), "{}");
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    Object[] u = run("train", "--demo", "--out", used.toString(), "--device", "cpu");
    assertEquals(2, u[0]);
    assertEquals(
        "moetune train: field 'out': "
            + used
            + " already holds the checkpoints of a run; continue it"
            + " with --resume "
            + used
            + " or choose a new --out (nothing was changed)\n",
        u[2]);
    Object[] m = run("train", "--config", tmp.resolve("absent.yaml").toString());
    assertEquals(2, m[0]);
    assertEquals(
        "moetune train: "
            + tmp.resolve("absent.yaml")
            + ": no such run config file; check the path given to --config\n",
        m[2]);
  }

  @Test
  void axolotlConfigTrainsAsWritten(@TempDir Path tmp) throws Exception {
    Path data = tmp.resolve("chats.jsonl");
    moetune.datasets.SampleData.writeShareGpt(data, moetune.datasets.SampleData.arithmetic(3, 200));
    Path out = tmp.resolve("run");
    String yaml =
        new String(
                    TrainCliTest.class
                        .getResourceAsStream("/axolotl/tiny-sharegpt.yml")
                        .readAllBytes(),
                    StandardCharsets.UTF_8)
                .replace(
                    "BASE",
                    Path.of(System.getProperty("moetune.fixtures"), "tiny-mixtral").toString())
                .replace("DATA", data.toString())
                .replace("OUT", out.toString())
            + "flash_attention: true\nwandb_project: demo\n";
    Path cfg = tmp.resolve("axolotl.yml");
    Files.writeString(cfg, yaml);
    Object[] strict = run("train", "--config", cfg.toString(), "--device", "cpu");
    assertEquals(2, strict[0]);
    assertEquals(1, ((String) strict[2]).lines().count(), (String) strict[2]);
    assertTrue(
        ((String) strict[2]).contains("field 'flash_attention': unknown field"),
        (String) strict[2]);
    assertTrue(Files.notExists(out), "nothing is written when the config is refused");

    Object[] r =
        run(
            "train",
            "--config",
            cfg.toString(),
            "--ignore-unknown",
            "--device",
            "cpu",
            "--learning_rate",
            "0.001",
            "--report_to",
            "tensorboard");
    String stdout = (String) r[1];
    assertEquals(0, r[0], stdout + r[2]);
    assertTrue(stdout.contains("field 'flash_attention': unknown field"), stdout);
    assertTrue(stdout.contains("  lr: 0.001\n"), stdout);
    assertTrue(stdout.contains("run finished at step 3"), stdout);
    assertTrue(Files.isDirectory(out.resolve("checkpoints/step-00000003")));
    // the TensorBoard file beside metrics.jsonl holds each step's loss as metrics.jsonl has it
    Path events;
    try (var files = Files.list(out)) {
      events =
          files
              .filter(f -> f.getFileName().toString().startsWith("events.out.tfevents."))
              .findFirst()
              .orElseThrow();
    }
    List<Object> scalars = moetune.app.run.TensorBoardLogTestAccess.read(events);
    ObjectMapper json = new ObjectMapper();
    int steps = 0;
    for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) {
      JsonNode n = json.readTree(line);
      if (n.get("type").asText().equals("step")) {
        steps++;
        float loss = (float) n.get("loss").asDouble();
        long step = n.get("step").asLong();
        assertTrue(
            scalars.stream()
                .anyMatch(
                    o ->
                        o.toString()
                            .equals(
                                "Scalar[step=" + step + ", tag=train/loss, value=" + loss + "]")),
            "step " + step + " loss " + loss + " in " + scalars);
      }
    }
    assertEquals(3, steps);
  }

  @Test
  void unknownFlagIsOneLineWithASuggestion() {
    Object[] r = run("train", "--learning_rat", "1e-4");
    assertEquals(2, r[0]);
    String err = (String) r[2];
    assertEquals(1, err.lines().count(), err);
    assertTrue(err.startsWith("moetune train: Unknown options: '--learning-rat', '1e-4'"), err);
    assertTrue(err.contains("did you mean"), err);
    assertTrue(err.strip().endsWith("see 'moetune train --help'"), err);
    Object[] g = run("generate", "--max-new-tokens", "many");
    assertEquals(2, g[0]);
    assertEquals(1, ((String) g[2]).lines().count(), (String) g[2]);
  }
}
