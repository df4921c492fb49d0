package moetune.app.gui.training;

import java.util.List;
import javafx.beans.property.SimpleStringProperty;
import javafx.beans.property.StringProperty;
import moetune.app.config.ConfigException;
import moetune.app.config.ConfigField;
import moetune.app.config.DatasetSpec;
import moetune.app.config.FieldType;
import moetune.app.config.RunConfig;

/**
 * One run-config field in the form: the text typed, checked on every change by the same parser
 * `train` uses for its flags ({@link RunConfig#with}), so the form accepts exactly what the command
 * line accepts. The error is one line, empty when the text is valid.
 */
public final class FormField {

  private final ConfigField def;
  private final StringProperty text = new SimpleStringProperty("");
  private final StringProperty error = new SimpleStringProperty("");

  FormField(ConfigField def) {
    this.def = def;
    text.addListener((o, a, b) -> validate());
    text.set(textOf(def.defaultValue()));
    validate();
  }

  /** A config value as it is typed after {@code --key} on the command line. */
  static String textOf(Object v) {
    if (v == null) {
      return "";
    }
    if (v instanceof List<?> list && list.stream().anyMatch(x -> x instanceof DatasetSpec)) {
      return RunConfig.datasetsText(list.stream().map(x -> (DatasetSpec) x).toList());
    }
    if (v instanceof List<?> list) {
      return String.join(",", list.stream().map(String::valueOf).toList());
    }
    return String.valueOf(v);
  }

  /** The trimmed text, or null when empty (the field keeps its default). */
  String flagText() {
    String t = text.get() == null ? "" : text.get().strip();
    return t.isEmpty() ? null : t;
  }

  private void validate() {
    String t = flagText();
    if (t == null) {
      boolean needsValue =
          def.required()
              || (def.defaultValue() != null
                  && def.type() != FieldType.LIST
                  && def.type() != FieldType.DATASETS);
      error.set(needsValue ? def.key() + ": required (" + def.help() + ")" : "");
      return;
    }
    try {
      RunConfig.defaults().with(def.key(), t);
      error.set("");
    } catch (ConfigException e) {
      String m = e.getMessage();
      error.set(m.startsWith("--") ? m.substring(2) : m);
    }
  }

  public ConfigField def() {
    return def;
  }

  public String key() {
    return def.key();
  }

  public StringProperty text() {
    return text;
  }

  public StringProperty error() {
    return error;
  }
}
