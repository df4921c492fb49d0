package moetune.app.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import moetune.engine.train.TrainOptions;
import moetune.templates.TemplateRegistry;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The run config: file + flags, the printed form, and one clear line per bad value. */
class RunConfigParserTest {

  static Path yaml(Path dir, String text) throws IOException {
    Path f = dir.resolve("run.yaml");
    Files.writeString(f, text);
    return f;
  }

  static final String MINIMAL = "model: m\ndatasets: [d.jsonl]\nout: o\n";

  @Test
  void flagsOverrideTheFileAndEveryFieldHasAValue(@TempDir Path tmp) throws IOException {
    Path f =
        yaml(
            tmp,
            "model: m\nout: o\nlr: 1e-4\nschedule: linear\nfreeze: [router, layer:2-3]\n"
                + "datasets:\n  - path: a.jsonl\n    template: vicuna_v1.1\n  - b.json\n");
    RunConfig cfg =
        RunConfigParser.parse(f, Map.of("lr", "3e-4", "micro-batch", "2", "packing", "false"));
    assertEquals(3e-4, cfg.get("lr"));
    assertEquals("linear", cfg.get("schedule"));
    assertEquals(2, cfg.get("micro-batch"));
    assertFalse(cfg.packing());
    // Relative paths in the file are relative to the file, not to the working directory.
    assertEquals(
        List.of(
            new DatasetSpec(
                tmp.resolve("a.jsonl").toString(), "auto", "vicuna_v1.1", "all-assistant"),
            new DatasetSpec(tmp.resolve("b.json").toString(), "auto", "chatml", "all-assistant")),
        cfg.resolvedDatasets());
    assertEquals(tmp.resolve("m").toString(), cfg.model());
    assertEquals(tmp.resolve("o").toString(), cfg.out());
    // ... while a flag's relative path stays as given (relative to the working directory).
    assertEquals("elsewhere", RunConfigParser.parse(f, Map.of("out", "elsewhere")).out());
    TrainOptions o = cfg.trainOptions(0.02);
    assertEquals(2, o.microBatch());
    assertTrue(o.freeze().router());
    assertEquals(java.util.Set.of(2, 3), o.freeze().layers());
    assertNull(cfg.auxLossCoef());
    for (ConfigField field : RunConfigFields.ALL) {
      assertTrue(
          cfg.toYaml().contains("\n" + field.key() + ":")
              || cfg.toYaml().startsWith(field.key() + ":"),
          "printed config lacks " + field.key());
    }
  }

  @Test
  void printedConfigReadsBackEqual(@TempDir Path tmp) throws IOException {
    RunConfig cfg =
        RunConfigParser.parse(
            yaml(
                tmp,
                MINIMAL
                    + "lr: 2.5e-5\nfreeze: attention\n"
                    + "aux-loss-coef: 0.01\nrouter-z-loss-coef: 0.001\nwarmup-steps: 7\n"
                    + "device: cuda:1\n"),
            Map.of());
    Path again = tmp.resolve("again.yaml");
    Files.writeString(again, cfg.toYaml());
    assertEquals(cfg, RunConfigParser.parse(again, Map.of()));
    Path json = tmp.resolve("run.json");
    Files.writeString(
        json, "{\"model\": \"m\", \"datasets\": [\"d.jsonl\"], \"out\": \"o\", \"lr\": 0.001}");
    assertEquals(0.001, RunConfigParser.parse(json, Map.of()).get("lr"));
  }

  /** The message of the one-line error a config gives. */
  static String error(Path tmp, String text, Map<String, String> flags) throws IOException {
    Path f = yaml(tmp, text);
    ConfigException e = assertThrows(ConfigException.class, () -> RunConfigParser.parse(f, flags));
    assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
    return e.getMessage().replace(f.toString(), "run.yaml");
  }

  @Test
  void recomputeIsOffByDefaultValidatedAndPassedToTheEngine(@TempDir Path tmp) throws IOException {
    assertEquals(
        moetune.engine.model.Recompute.NONE,
        RunConfigParser.parse(yaml(tmp, MINIMAL), Map.of()).trainOptions(0.02).recompute());
    RunConfig cfg =
        RunConfigParser.parse(
            yaml(tmp, MINIMAL + "recompute: attention\n"), Map.of("recompute", "layer"));
    assertEquals(moetune.engine.model.Recompute.LAYER, cfg.trainOptions(0.02).recompute());
    assertTrue(cfg.toYaml().contains("\nrecompute: layer\n"), cfg.toYaml());
    assertTrue(
        error(tmp, MINIMAL + "recompute: full\n", Map.of())
            .startsWith("run.yaml: field 'recompute'"),
        error(tmp, MINIMAL + "recompute: full\n", Map.of()));
  }

  @Test
  void routerZLossCoefIsOffByDefaultValidatedAndPassedToTheEngine(@TempDir Path tmp)
      throws IOException {
    assertEquals(0.0, RunConfigParser.parse(yaml(tmp, MINIMAL), Map.of()).routerZLossCoef());
    RunConfig cfg =
        RunConfigParser.parse(
            yaml(tmp, MINIMAL + "router-z-loss-coef: 0.01\n"),
            Map.of("router-z-loss-coef", "0.001"));
    assertEquals(0.001, cfg.trainOptions(0.02).routerZLossCoef());
    assertTrue(cfg.toYaml().contains("\nrouter-z-loss-coef: 0.001\n"), cfg.toYaml());
    assertEquals(
        "run.yaml: field 'router-z-loss-coef': must be >= 0, got -0.001",
        error(tmp, MINIMAL + "router-z-loss-coef: -0.001\n", Map.of()));
    assertEquals(
        "--router-z-loss-coef: must be >= 0, got -1.0",
        error(tmp, MINIMAL, Map.of("router-z-loss-coef", "-1")));
    assertEquals(
        "run.yaml: field 'router-z-loss-coef': must be a finite number, got Infinity",
        error(tmp, MINIMAL + "router-z-loss-coef: 1e999\n", Map.of()));
  }

  @Test
  void badValuesGiveOneLineNamingFileFieldAndChoices(@TempDir Path tmp) throws IOException {
    String unknown = error(tmp, MINIMAL + "wandb_project: demo\n", Map.of());
    assertTrue(unknown.startsWith("run.yaml: field 'wandb_project': unknown field"), unknown);
    assertTrue(unknown.contains("known fields: model, tokenizer, datasets"), unknown);

    String typo = error(tmp, MINIMAL + "epoch: 2\n", Map.of());
    assertTrue(typo.contains("did you mean 'epochs'?"), typo);

    assertEquals(
        "run.yaml: field 'lr': must be > 0, got -1.0E-4",
        error(tmp, MINIMAL + "lr: -1e-4\n", Map.of()));
    assertEquals("--lr: must be > 0, got -0.001", error(tmp, MINIMAL, Map.of("lr", "-0.001")));
    assertEquals(
        "run.yaml: field 'micro-batch': expected a whole number, got 'four'",
        error(tmp, MINIMAL + "micro-batch: four\n", Map.of()));
    assertEquals(
        "run.yaml: field 'micro-batch': expected a whole number, got 2.5",
        error(tmp, MINIMAL + "micro-batch: 2.5\n", Map.of()));
    assertEquals(
        "run.yaml: field 'schedule': 'cosin' is not one of constant, linear, cosine",
        error(tmp, MINIMAL + "schedule: cosin\n", Map.of()));
    assertEquals(
        "run.yaml: field 'precision': 'fp8' is not one of auto, fp32, bf16",
        error(tmp, MINIMAL + "precision: fp8\n", Map.of()));
    assertEquals(
        "run.yaml: field 'packing': expected true or false, got 'maybe'",
        error(tmp, MINIMAL + "packing: maybe\n", Map.of()));
    assertEquals(
        "run.yaml: field 'device': 'gpu' is not a device; use cpu, cuda, cuda:N or auto",
        error(tmp, MINIMAL + "device: gpu\n", Map.of()));
    assertEquals(
        "run.yaml: field 'freeze': 'experts' is not one of router, attention, embeddings, layer:N,"
            + " layer:A-B",
        error(tmp, MINIMAL + "freeze: [router, experts]\n", Map.of()));
    assertEquals(
        "--freeze: 'bias' is not one of router, attention, embeddings, layer:N, layer:A-B",
        error(tmp, MINIMAL, Map.of("freeze", "router,bias")));
    assertEquals(
        "run.yaml: field 'lora-targets': 'up_proj' is not one of"
            + " q_proj,k_proj,v_proj,o_proj,gate,w1,w2,w3",
        error(tmp, MINIMAL + "lora-targets: [q_proj, up_proj]\n", Map.of()));
    assertEquals(
        "run.yaml: field 'report-to': 'mlflow' is not one of tensorboard, none",
        error(tmp, MINIMAL + "report-to: mlflow\n", Map.of()));
    assertEquals(
        "--device: 'cuda:x' is not a device; use cpu, cuda, cuda:N or auto",
        error(tmp, MINIMAL, Map.of("device", "cuda:x")));
    assertEquals(
        "run.yaml: field 'eval-split': must be >= 0 and <= 0.5, got 0.9",
        error(tmp, MINIMAL + "eval-split: 0.9\n", Map.of()));
    assertEquals(
        "run.yaml: field 'datasets'[0]: unknown field 'templat'; a dataset has path, format,"
            + " template, labels, weight (axolotl: type, conversation, ds_type); remove it, or"
            + " pass --ignore-unknown to skip unknown fields with a warning",
        error(
            tmp,
            "model: m\nout: o\ndatasets:\n  - path: a.jsonl\n    templat: chatml\n",
            Map.of()));
    assertEquals(
        "run.yaml: field 'datasets' is required (training data files (JSON/JSONL/Parquet),"
            + " comma-separated); set it in the config file or with --datasets",
        error(tmp, "model: m\nout: o\n", Map.of()));
    assertTrue(error(tmp, "model: [unclosed\n", Map.of()).contains("not valid YAML at line"));
    assertTrue(error(tmp, MINIMAL + "lr: 1\nlr: 2\n", Map.of()).contains("Duplicate field 'lr'"));
  }

  @Test
  void fileSystemChecksNameTheFieldAndPath(@TempDir Path tmp) throws IOException {
    Path model = Files.createDirectories(tmp.resolve("model"));
    Files.writeString(model.resolve("config.json"), "{}");
    Path data = tmp.resolve("d.jsonl");
    Files.writeString(data, "{}\n");
    TemplateRegistry reg = TemplateRegistry.builtin();
    RunConfig ok =
        RunConfigParser.parse(
            null,
            Map.of(
                "model",
                model.toString(),
                "datasets",
                data.toString(),
                "out",
                tmp.resolve("o").toString()));
    RunConfigCheck.check(ok, reg);

    ConfigException missingData =
        assertThrows(
            ConfigException.class,
            () ->
                RunConfigCheck.check(
                    ok.with("datasets", tmp.resolve("nope.jsonl").toString()), reg));
    assertEquals(
        "field 'datasets[0]': "
            + tmp.resolve("nope.jsonl")
            + " does not exist; check the dataset path",
        missingData.getMessage());

    ConfigException badTemplate =
        assertThrows(
            ConfigException.class,
            () -> RunConfigCheck.check(ok.with("template", "vicuna-9"), reg));
    assertTrue(
        badTemplate
            .getMessage()
            .startsWith(
                "field 'datasets[0]' ("
                    + data
                    + "): unknown template 'vicuna-9'; known templates: "),
        badTemplate.getMessage());
    assertTrue(badTemplate.getMessage().contains("chatml"));

    ConfigException noModel =
        assertThrows(
            ConfigException.class,
            () -> RunConfigCheck.check(ok.with("model", tmp.resolve("absent").toString()), reg));
    assertTrue(
        noModel
            .getMessage()
            .startsWith("field 'model': " + tmp.resolve("absent") + " is not a directory"),
        noModel.getMessage());

    ConfigException newModel =
        assertThrows(
            ConfigException.class,
            () -> RunConfigCheck.check(ok.with("model", "new:" + tmp.resolve("c.json")), reg));
    assertEquals(
        "field 'model': "
            + tmp.resolve("c.json")
            + " does not exist; give new:PATH/TO/config.json with a Mixtral config",
        newModel.getMessage());
  }
}
