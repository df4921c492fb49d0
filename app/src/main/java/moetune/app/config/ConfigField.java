package moetune.app.config;

import java.util.List;
import java.util.function.UnaryOperator;

/**
 * One field of the run config: its key (also its flag, {@code --key}), type, default, the valid
 * range or choices and a line of help. {@link RunConfigFields} lists them all; the file parser, the
 * flags of {@code moetune train} and the printed config are generated from that list, so every
 * field is a flag by construction.
 *
 * @param key the name in the file and, with {@code --}, on the command line
 * @param type the kind of value
 * @param defaultValue the value when neither the file nor a flag gives one (null: none / required)
 * @param choices the valid words of a CHOICE field (empty otherwise)
 * @param min the smallest valid number (numeric fields), or null
 * @param minExclusive whether min itself is invalid
 * @param max the largest valid number, or null
 * @param required whether a run needs a value
 * @param help one line for --help
 * @param aliases other names of the field (axolotl's, transformers' TrainingArguments', ...),
 *     accepted in files and as flags; every name may also be written with {@code _} for {@code -}
 * @param rule the field's own check after its type's (device names, freeze words, ...): returns the
 *     value to keep (possibly normalised) or throws IllegalArgumentException with a message that
 *     the parser prefixes with the file (or flag) and the field
 */
public record ConfigField(
    String key,
    FieldType type,
    Object defaultValue,
    List<String> choices,
    Double min,
    boolean minExclusive,
    Double max,
    boolean required,
    String help,
    List<String> aliases,
    UnaryOperator<Object> rule) {

  static ConfigField of(String key, FieldType type, Object def, String help) {
    return new ConfigField(
        key, type, def, List.of(), null, false, null, false, help, List.of(), v -> v);
  }

  /** This field with its own check after the type's (see {@link #rule}). */
  ConfigField rule(UnaryOperator<Object> r) {
    return new ConfigField(
        key, type, defaultValue, choices, min, minExclusive, max, required, help, aliases, r);
  }

  ConfigField makeRequired() {
    return new ConfigField(
        key, type, defaultValue, choices, min, minExclusive, max, true, help, aliases, rule);
  }

  ConfigField choices(String... words) {
    return new ConfigField(
        key,
        type,
        defaultValue,
        List.of(words),
        min,
        minExclusive,
        max,
        required,
        help,
        aliases,
        rule);
  }

  ConfigField atLeast(double v) {
    return new ConfigField(
        key, type, defaultValue, choices, v, false, max, required, help, aliases, rule);
  }

  ConfigField above(double v) {
    return new ConfigField(
        key, type, defaultValue, choices, v, true, max, required, help, aliases, rule);
  }

  ConfigField atMost(double v) {
    return new ConfigField(
        key, type, defaultValue, choices, min, minExclusive, v, required, help, aliases, rule);
  }

  /** Other names of this field, written in snake_case as axolotl and transformers spell them. */
  ConfigField aliases(String... names) {
    return new ConfigField(
        key,
        type,
        defaultValue,
        choices,
        min,
        minExclusive,
        max,
        required,
        help,
        List.of(names),
        rule);
  }

  /** A name as the lookup compares it: lower case, {@code _} read as {@code -}. */
  static String normalize(String name) {
    return name.strip().toLowerCase(java.util.Locale.ROOT).replace('_', '-');
  }

  /** Every name of the field in kebab case, the key first (the flags of {@code train}). */
  public List<String> names() {
    List<String> out = new java.util.ArrayList<>();
    out.add(key);
    for (String a : aliases) {
      String n = normalize(a);
      if (!out.contains(n)) {
        out.add(n);
      }
    }
    return List.copyOf(out);
  }

  /** The valid range in words, for error messages: "> 0", ">= 0 and <= 1". */
  String range() {
    StringBuilder sb = new StringBuilder();
    if (min != null) {
      sb.append(minExclusive ? "> " : ">= ").append(num(min));
    }
    if (max != null) {
      sb.append(sb.isEmpty() ? "" : " and ").append("<= ").append(num(max));
    }
    return sb.toString();
  }

  private static String num(double d) {
    return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
  }
}
