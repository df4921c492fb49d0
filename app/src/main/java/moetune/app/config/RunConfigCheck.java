package moetune.app.config;

import java.nio.file.Files;
import java.nio.file.Path;
import moetune.templates.TemplateRegistry;

/**
 * The checks of a run config that look outside it: that the model, tokenizer and dataset files
 * exist and the templates are known. Each failure is one line naming the field and the path.
 */
public final class RunConfigCheck {
  private RunConfigCheck() {}

  /** The prefix of a model value that asks for a fresh model from a config.json. */
  public static final String NEW_PREFIX = "new:";

  public static void check(RunConfig cfg, TemplateRegistry templates) {
    String model = cfg.model();
    if (model.startsWith(NEW_PREFIX)) {
      requireFile(
          "model",
          Path.of(model.substring(NEW_PREFIX.length())),
          "give new:PATH/TO/config.json with a Mixtral config");
    } else {
      Path dir = Path.of(model);
      if (!Files.isDirectory(dir)) {
        throw new ConfigException(
            "field 'model': "
                + dir
                + " is not a directory; give a HuggingFace model directory "
                + "or new:CONFIG.json for a fresh model");
      }
      requireFile("model", dir.resolve("config.json"), "this is not a HuggingFace model directory");
    }
    if (cfg.tokenizer() != null) {
      requireFile("tokenizer", Path.of(cfg.tokenizer()), "give a tokenizer.json");
    }
    int i = 0;
    for (DatasetSpec d : cfg.resolvedDatasets()) {
      checkDataset("datasets[" + i++ + "]", d, templates);
    }
    i = 0;
    for (DatasetSpec d : cfg.resolvedEvalDatasets()) {
      checkDataset("eval-datasets[" + i++ + "]", d, templates);
    }
    if (cfg.loraAdapter() != null) {
      requireFile(
          "lora-adapter",
          Path.of(cfg.loraAdapter()).resolve("adapter_config.json"),
          "give a PEFT adapter directory (adapter_config.json, adapter_model.safetensors)");
    }
    cfg.lora(); // the adapter settings, checked now: one line naming the field
    Path out = Path.of(cfg.out());
    if (Files.exists(out) && !Files.isDirectory(out)) {
      throw new ConfigException("field 'out': " + out + " is a file; give a directory");
    }
  }

  private static void checkDataset(String field, DatasetSpec d, TemplateRegistry templates) {
    requireFile(field, Path.of(d.path()), "check the dataset path");
    if (!templates.contains(d.template())) {
      String known = String.join(", ", templates.names());
      throw new ConfigException(
          "field '"
              + field
              + "' ("
              + d.path()
              + "): unknown template '"
              + d.template()
              + "'; known templates: "
              + known);
    }
  }

  private static void requireFile(String field, Path p, String fix) {
    if (!Files.isRegularFile(p)) {
      throw new ConfigException(
          "field '"
              + field
              + "': "
              + p
              + (Files.isDirectory(p) ? " is a directory" : " does not exist")
              + "; "
              + fix);
    }
  }
}
