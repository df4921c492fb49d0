package moetune.app.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The names users bring: snake_case, axolotl's and transformers' TrainingArguments' names as
 * aliases of the one field table, an axolotl YAML of the supported subset, and unknown keys.
 */
class AliasConfigTest {

  static Path axolotl(Path dir) throws IOException {
    String text =
        new String(
                AliasConfigTest.class
                    .getResourceAsStream("/axolotl/tiny-sharegpt.yml")
                    .readAllBytes(),
                java.nio.charset.StandardCharsets.UTF_8)
            .replace("BASE", "base-dir")
            .replace("DATA", "data.jsonl")
            .replace("OUT", "runs/x");
    Path f = dir.resolve("axolotl.yml");
    Files.writeString(f, text);
    return f;
  }

  @Test
  void axolotlYamlMapsOntoTheFields(@TempDir Path tmp) throws IOException {
    RunConfig cfg = RunConfigParser.parse(axolotl(tmp), Map.of());
    assertEquals(tmp.resolve("base-dir").toString(), cfg.model()); // relative to the file
    assertEquals(128, cfg.maxLength());
    assertTrue(cfg.packing());
    assertEquals(4, cfg.get("micro-batch"));
    assertEquals(2, cfg.get("grad-accum"));
    assertEquals(1, cfg.get("epochs"));
    assertEquals(3L, cfg.get("max-steps"));
    assertEquals(3e-4, cfg.get("lr"));
    assertEquals("cosine", cfg.get("schedule"));
    assertEquals(1L, cfg.get("warmup-steps"));
    assertEquals(0.05, cfg.evalSplit());
    assertEquals(tmp.resolve("runs/x").toString(), cfg.out());
    assertEquals(2L, cfg.get("checkpoint-every"));
    assertEquals(1, cfg.get("keep-last"));
    assertEquals(2L, cfg.get("eval-every"));
    assertEquals(1.0, cfg.get("clip"));
    assertEquals(0.01, cfg.get("weight-decay"));
    assertEquals("auto", cfg.precision());
    assertEquals(7L, cfg.seed());
    assertEquals(
        List.of(
            new DatasetSpec(
                tmp.resolve("data.jsonl").toString(), "sharegpt", "chatml", "all-assistant", null),
            new DatasetSpec(
                tmp.resolve("data.jsonl").toString(), "sharegpt", "chatml", "all-assistant", 0.5)),
        cfg.resolvedDatasets());
    // the printed config (run-config.yaml) uses moetune's own names and reads back equal
    Path again = tmp.resolve("again.yaml");
    Files.writeString(again, cfg.toYaml());
    assertEquals(cfg, RunConfigParser.parse(again, Map.of()));
  }

  @Test
  void trainingArgumentsNamesAndValueSpellings(@TempDir Path tmp) throws IOException {
    Path f = tmp.resolve("hf.yaml");
    Files.writeString(
        f,
        "model_name_or_path: m\ntrain_files: [d.jsonl]\noutput_dir: o\n"
            + "per_device_train_batch_size: 3\nnum_train_epochs: 2\nlr_scheduler_type:"
            + " constant_with_warmup\nadam_beta2: 0.999\nadam_epsilon: 1e-6\nbf16: true\n"
            + "train_on_inputs: true\nMax-Seq_Length: 256\n");
    RunConfig cfg = RunConfigParser.parse(f, Map.of());
    assertEquals(3, cfg.get("micro-batch"));
    assertEquals(2, cfg.get("epochs"));
    assertEquals("constant", cfg.get("schedule"));
    assertEquals(0.999, cfg.get("beta2"));
    assertEquals(1e-6, cfg.get("eps"));
    assertEquals("bf16", cfg.precision());
    assertEquals("everything", cfg.get("labels"));
    assertEquals(256, cfg.maxLength());
    Files.writeString(f, "model: m\ndatasets: [d]\nout: o\nbf16: false\nmicro_batch: 5\n");
    RunConfig snake = RunConfigParser.parse(f, Map.of("learning_rate", "0.01"));
    assertEquals("fp32", snake.precision());
    assertEquals(5, snake.get("micro-batch"));
    assertEquals(0.01, snake.get("lr"));
  }

  @Test
  void twoNamesOfOneFieldAreOneClearLine(@TempDir Path tmp) throws IOException {
    Path f = tmp.resolve("c.yaml");
    Files.writeString(f, "model: m\ndatasets: [d]\nout: o\nlr: 1e-4\nlearning_rate: 2e-4\n");
    ConfigException e =
        assertThrows(ConfigException.class, () -> RunConfigParser.parse(f, Map.of()));
    assertEquals(
        f + ": fields 'lr' and 'learning_rate' both set 'lr'; keep one of them", e.getMessage());
  }

  @Test
  void unknownKeyIsOneLineOrAWarningWithIgnoreUnknown(@TempDir Path tmp) throws IOException {
    Path f = tmp.resolve("c.yaml");
    Files.writeString(
        f,
        "base_model: m\ndatasets:\n  - path: d.jsonl\n    type: alpaca\n    field_instruction: q\n"
            + "output_dir: o\nwandb_project: p\nlearning_rat: 1e-4\n");
    ConfigException e =
        assertThrows(ConfigException.class, () -> RunConfigParser.parse(f, Map.of()));
    assertTrue(
        e.getMessage().startsWith(f + ": field 'datasets'[0]: unknown field 'field_instruction'"),
        e.getMessage());
    assertTrue(
        e.getMessage().endsWith("or pass --ignore-unknown to skip unknown fields with a warning"));
    assertEquals(1, e.getMessage().lines().count());
    List<String> warnings = new ArrayList<>();
    RunConfig cfg = RunConfigParser.parse(f, Map.of(), true, warnings::add);
    assertEquals("alpaca", cfg.resolvedDatasets().getFirst().format());
    assertEquals(3, warnings.size(), warnings.toString());
    assertTrue(
        warnings.get(1).startsWith("warning: " + f + ": field 'wandb_project': unknown field"));
    assertTrue(
        warnings
            .get(2)
            .contains("field 'learning_rat': unknown field (did you mean 'learning-rate'?)"),
        warnings.get(2));
  }

  @Test
  void unsupportedDatasetTypeNamesTheField(@TempDir Path tmp) throws IOException {
    Path f = tmp.resolve("c.yaml");
    Files.writeString(f, "model: m\nout: o\ndatasets:\n  - path: d.jsonl\n    type: completion\n");
    ConfigException e =
        assertThrows(ConfigException.class, () -> RunConfigParser.parse(f, Map.of()));
    assertEquals(
        f
            + ": field 'datasets'[0].type: dataset type 'completion' is not supported; moetune"
            + " reads sharegpt, alpaca and chat_template (messages with role/content)",
        e.getMessage());
  }

  @Test
  void everyAliasNamesOneFieldAndSnakeCaseOfEveryKeyWorks() {
    for (ConfigField f : RunConfigFields.ALL) {
      assertEquals(f, RunConfigFields.byName(f.key().replace('-', '_')));
      for (String a : f.aliases()) {
        assertEquals(f, RunConfigFields.byName(a), a);
      }
    }
  }

  @Test
  void axolotlLoraKeys(@TempDir Path tmp) throws IOException {
    Path f = tmp.resolve("lora.yml");
    Files.writeString(
        f,
        "base_model: m\ndatasets: [d.jsonl]\noutput_dir: o\nadapter: lora\nlora_r: 8\n"
            + "lora_alpha: 16\nlora_dropout: 0.05\nlora_target_modules: [q_proj, v_proj]\n"
            + "peft_use_rslora: true\n");
    RunConfig cfg = RunConfigParser.parse(f, Map.of());
    assertEquals(8, cfg.get("lora-r"));
    assertEquals(16.0, cfg.get("lora-alpha"));
    assertEquals(0.05, cfg.get("lora-dropout"));
    assertEquals(List.of("q_proj", "v_proj"), cfg.get("lora-targets"));
    assertEquals(true, cfg.get("use-rslora"));
    Files.writeString(f, "base_model: m\ndatasets: [d.jsonl]\noutput_dir: o\nadapter: qlora\n");
    ConfigException q =
        assertThrows(ConfigException.class, () -> RunConfigParser.parse(f, Map.of()));
    assertEquals(
        f + ": field 'adapter': 'qlora' is not supported; moetune trains full weights or lora",
        q.getMessage());
    Files.writeString(f, "base_model: m\ndatasets: [d.jsonl]\noutput_dir: o\nadapter: lora\n");
    ConfigException r =
        assertThrows(ConfigException.class, () -> RunConfigParser.parse(f, Map.of()));
    assertEquals(
        f + ": field 'adapter': lora needs the LoRA rank: set lora_r (e.g. 16)", r.getMessage());
  }
}
