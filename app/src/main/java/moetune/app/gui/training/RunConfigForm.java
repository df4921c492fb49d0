package moetune.app.gui.training;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import moetune.app.config.ConfigField;
import moetune.app.config.RunConfig;
import moetune.app.config.RunConfigFields;
import moetune.app.config.RunConfigParser;
import moetune.files.AtomicFiles;

/**
 * Every field of the run config (one {@link FormField} per entry of {@link RunConfigFields}, in its
 * order, so a field added there appears here), and the round trip to the file `train` reads: saved
 * as YAML ({@code .yaml}/{@code .yml}) or JSON, atomically; loaded through {@link RunConfigParser},
 * so a file the form loads is a file `train` accepts.
 */
public final class RunConfigForm {

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private final List<FormField> fields = new ArrayList<>();

  public RunConfigForm() {
    for (ConfigField f : RunConfigFields.ALL) {
      fields.add(new FormField(f));
    }
  }

  public List<FormField> fields() {
    return fields;
  }

  public FormField field(String key) {
    return fields.stream()
        .filter(f -> f.key().equals(key))
        .findFirst()
        .orElseThrow(() -> new IllegalArgumentException("no run-config field " + key));
  }

  /** The first field error, or empty when every field is valid. */
  public Optional<String> firstError() {
    return fields.stream().map(f -> f.error().get()).filter(e -> !e.isEmpty()).findFirst();
  }

  /** The config the form describes, parsed as `train` parses flags. */
  public RunConfig toConfig() {
    Optional<String> err = firstError();
    if (err.isPresent()) {
      throw new IllegalArgumentException(err.get());
    }
    Map<String, String> flags = new LinkedHashMap<>();
    for (FormField f : fields) {
      if (f.flagText() != null) {
        flags.put(f.key(), f.flagText());
      }
    }
    return RunConfigParser.override(RunConfig.defaults(), flags);
  }

  /** Writes the config atomically (temp file, then rename): YAML by extension, else JSON. */
  public void save(Path file) throws IOException {
    RunConfig cfg = toConfig();
    String text = isYaml(file) ? cfg.toYaml() : JSON.writeValueAsString(cfg.toTree()) + "\n";
    AtomicFiles.writeString(file, text);
  }

  /** Fills every field from a run-config file (fields the file leaves out get defaults). */
  public void load(Path file) {
    RunConfig cfg = RunConfigParser.parse(file, Map.of());
    for (FormField f : fields) {
      f.text().set(FormField.textOf(cfg.get(f.key())));
    }
  }

  static boolean isYaml(Path file) {
    String n = file.getFileName().toString().toLowerCase(Locale.ROOT);
    return n.endsWith(".yaml") || n.endsWith(".yml");
  }
}
