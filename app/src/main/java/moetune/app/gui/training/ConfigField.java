package moetune.app.gui.training;

import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import javafx.beans.property.SimpleStringProperty;
import javafx.beans.property.StringProperty;

/**
 * One run-config field as the form edits it: the text the user typed, validated on every
 * change into a one-line error (empty when valid), and converted to the JSON value the
 * config file holds.
 */
public final class ConfigField {

  /** How the text maps to a JSON value. */
  public enum Kind {
    TEXT, INT, NUMBER, BOOL, CHOICE, INT_LIST
  }

  private final String key;
  private final String label;
  private final Kind kind;
  private final List<String> choices;
  private final String tooltip;
  private final boolean optional;
  private final Function<Object, String> check;
  private final StringProperty text = new SimpleStringProperty("");
  private final StringProperty error = new SimpleStringProperty("");

  ConfigField(String key, String label, Kind kind, List<String> choices, String defaultText,
      boolean optional, String tooltip, Function<Object, String> check) {
    this.key = key;
    this.label = label;
    this.kind = kind;
    this.choices = List.copyOf(choices);
    this.tooltip = tooltip;
    this.optional = optional;
    this.check = check;
    text.addListener((o, a, b) -> validate());
    text.set(defaultText);
    validate();
  }

  /** The field's JSON value, or null when it is optional and empty (the file omits it). */
  public Object value() {
    String t = text.get() == null ? "" : text.get().strip();
    if (t.isEmpty()) {
      if (optional || kind == Kind.TEXT) {
        return optional ? null : "";
      }
      throw new IllegalArgumentException(key + ": required");
    }
    return switch (kind) {
      case TEXT -> t;
      case INT -> Long.parseLong(t);
      case NUMBER -> Double.parseDouble(t);
      case BOOL -> switch (t.toLowerCase(Locale.ROOT)) {
        case "true" -> Boolean.TRUE;
        case "false" -> Boolean.FALSE;
        default -> throw new IllegalArgumentException(key + ": true or false, not '" + t + "'");
      };
      case CHOICE -> {
        if (!choices.contains(t)) {
          throw new IllegalArgumentException(key + ": one of " + choices + ", not '" + t + "'");
        }
        yield t;
      }
      case INT_LIST -> {
        List<Long> out = new java.util.ArrayList<>();
        for (String s : t.split(",")) {
          out.add(Long.parseLong(s.strip()));
        }
        yield out;
      }
    };
  }

  /** Sets the text from a value read out of a config file. */
  public void setFromValue(Object v) {
    if (v == null) {
      text.set("");
    } else if (v instanceof List<?> list) {
      text.set(String.join(",", list.stream().map(String::valueOf).toList()));
    } else if (v instanceof Double d && kind == Kind.NUMBER) {
      text.set(d.toString());
    } else {
      text.set(String.valueOf(v));
    }
  }

  private void validate() {
    String t = text.get() == null ? "" : text.get().strip();
    if (t.isEmpty() && !optional) {
      error.set(kind == Kind.TEXT ? label + " is required." : label + " is required.");
      return;
    }
    if (t.isEmpty()) {
      error.set("");
      return;
    }
    Object v;
    try {
      v = value();
    } catch (NumberFormatException e) {
      error.set(label + ": " + (kind == Kind.INT || kind == Kind.INT_LIST ? "a whole number"
          : "a number") + " is expected, not '" + t + "'.");
      return;
    } catch (IllegalArgumentException e) {
      error.set(e.getMessage());
      return;
    }
    String problem = check == null ? null : check.apply(v);
    error.set(problem == null ? "" : label + ": " + problem);
  }

  public String key() {
    return key;
  }

  public String label() {
    return label;
  }

  public Kind kind() {
    return kind;
  }

  public List<String> choices() {
    return choices;
  }

  public String tooltip() {
    return tooltip;
  }

  public StringProperty text() {
    return text;
  }

  public StringProperty error() {
    return error;
  }
}
