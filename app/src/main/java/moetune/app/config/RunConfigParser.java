package moetune.app.config;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.TextNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Reads a run config from a JSON or YAML file and flags ({@code --lr 1e-4} overrides the file's
 * {@code lr}), checking every value against {@link RunConfigFields}. Every problem is a {@link
 * ConfigException} with one line naming the file or flag, the field, and what is valid.
 *
 * <p>Numbers may be written as strings ({@code lr: "1e-4"}; YAML 1.1 reads {@code 1e-4} without a
 * dot as a string, so this must work). Relative paths are taken from the current directory.
 */
public final class RunConfigParser {

  private RunConfigParser() {}

  /**
   * Parses the file (null: none) and then the flags over it, and checks that the required fields
   * are there. Does not look at the file system beyond the config file: see {@link RunConfigCheck}.
   * A key the file has that is no field's name or alias is an error.
   */
  public static RunConfig parse(Path file, Map<String, String> flags) {
    return parse(file, flags, false, w -> {});
  }

  /**
   * {@link #parse(Path, Map)}, but with {@code ignoreUnknown} a key (or a dataset entry's key) that
   * moetune does not know is skipped with one line to {@code warn} instead of failing: how an
   * axolotl YAML with settings moetune has no use for (wandb_project, flash_attention, ...) runs.
   */
  public static RunConfig parse(
      Path file, Map<String, String> flags, boolean ignoreUnknown, Consumer<String> warn) {
    Map<String, Object> values = new LinkedHashMap<>(RunConfig.defaults().values());
    if (file != null) {
      JsonNode root = readTree(file);
      String where = file + ": ";
      if (!root.isObject()) {
        throw new ConfigException(where + "the run config must be a mapping of field: value");
      }
      Unknown unknown = new Unknown(ignoreUnknown, warn);
      Map<String, String> given = new LinkedHashMap<>(); // field key -> the name the file used
      String adapter = null;
      Iterator<Map.Entry<String, JsonNode>> it = root.fields();
      while (it.hasNext()) {
        Map.Entry<String, JsonNode> e = it.next();
        String name = e.getKey();
        if (ConfigField.normalize(name).equals("adapter")) { // axolotl: adapter: lora
          adapter = adapter(e.getValue(), where + "field '" + name + "'");
          continue;
        }
        ConfigField f = RunConfigFields.byName(name);
        if (f == null) {
          unknown.report(where + "field '" + name + "': unknown field" + suggestion(name));
          continue;
        }
        String before = given.put(f.key(), name);
        if (before != null) {
          throw new ConfigException(
              where
                  + "fields '"
                  + before
                  + "' and '"
                  + name
                  + "' both set '"
                  + f.key()
                  + "'; keep one of them");
        }
        JsonNode v = mapValue(name, e.getValue());
        values.put(f.key(), convert(f, v, where + "field '" + name + "'", unknown));
      }
      resolvePaths(values, file.toAbsolutePath().normalize().getParent());
      if (adapter != null && values.get("lora-r") instanceof Integer r && r == 0) {
        throw new ConfigException(
            where + "field 'adapter': lora needs the LoRA rank: set lora_r (e.g. 16)");
      }
    }
    RunConfig withFlags = override(RunConfig.fromValues(values), flags);
    requireComplete(withFlags, file);
    return withFlags;
  }

  /** Axolotl's {@code adapter}: lora (LoRA is on when lora_r > 0), or nothing. */
  private static String adapter(JsonNode v, String where) {
    String a = v.isNull() ? "" : v.asText().strip().toLowerCase(Locale.ROOT);
    if (a.isEmpty() || a.equals("lora")) {
      return a.isEmpty() ? null : a;
    }
    throw new ConfigException(
        where + ": '" + v.asText() + "' is not supported; moetune trains full weights or lora");
  }

  /**
   * What to do with a key moetune does not know: fail with the line plus how to skip it, or (with
   * --ignore-unknown) pass the line on as a warning.
   */
  record Unknown(boolean ignore, Consumer<String> warn) {
    static final Unknown STRICT = new Unknown(false, w -> {});

    void report(String line) {
      if (!ignore) {
        throw new ConfigException(
            line + "; remove it, or pass --ignore-unknown to skip unknown fields with a warning");
      }
      warn.accept("warning: " + line + "; ignored (--ignore-unknown)");
    }
  }

  /**
   * Aliases whose values are spelled differently from the field's: axolotl's and transformers'
   * {@code bf16: true} is {@code precision: bf16}, {@code train_on_inputs: true} is {@code labels:
   * everything}; their scheduler names with warmup are ours (warmup is its own field).
   */
  private static final Map<String, Map<String, String>> VALUE_MAPS =
      Map.of(
          "bf16", Map.of("true", "bf16", "false", "fp32", "auto", "auto"),
          "train-on-inputs", Map.of("true", "everything", "false", "all-assistant"),
          "lr-scheduler",
              Map.of("constant-with-warmup", "constant", "cosine-with-min-lr", "cosine"),
          "lr-scheduler-type",
              Map.of("constant-with-warmup", "constant", "cosine-with-min-lr", "cosine"),
          "chat-template", Map.of("tokenizer-default", "hf"),
          "use-tensorboard", Map.of("true", "tensorboard", "false", "none"));

  /** A value given under {@code name} as the field it aliases reads it (see VALUE_MAPS). */
  static JsonNode mapValue(String name, JsonNode v) {
    Map<String, String> m = VALUE_MAPS.get(ConfigField.normalize(name));
    if (m == null || !v.isValueNode() || v.isNull()) {
      return v;
    }
    String mapped = m.get(ConfigField.normalize(v.asText()));
    return mapped == null ? v : new TextNode(mapped);
  }

  /** A flag's text given under {@code name} (the name typed) as its field reads it. */
  public static String flagValue(String name, String text) {
    return text == null ? null : mapValue(name, new TextNode(text)).asText();
  }

  /** A copy of cfg with flag values (text, as typed after {@code --key}) applied. */
  public static RunConfig override(RunConfig cfg, Map<String, String> flags) {
    Map<String, Object> values = new LinkedHashMap<>(cfg.values());
    for (Map.Entry<String, String> e : flags.entrySet()) {
      ConfigField f = RunConfigFields.byName(e.getKey());
      if (f == null) {
        throw new ConfigException(
            "--" + e.getKey() + ": unknown field" + suggestion(e.getKey()) + "; see --help");
      }
      values.put(
          f.key(),
          convert(
              f,
              new TextNode(flagValue(e.getKey(), e.getValue())),
              "--" + e.getKey(),
              Unknown.STRICT));
    }
    return RunConfig.fromValues(values);
  }

  private static void requireComplete(RunConfig cfg, Path file) {
    for (ConfigField f : RunConfigFields.ALL) {
      Object v = cfg.get(f.key());
      boolean missing = v == null || (v instanceof List<?> l && l.isEmpty());
      if (f.required() && missing) {
        throw new ConfigException(
            (file == null ? "" : file + ": ")
                + "field '"
                + f.key()
                + "' is required ("
                + f.help()
                + "); set it in the config file or with --"
                + f.key());
      }
    }
  }

  private static JsonNode readTree(Path file) {
    String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
    ObjectMapper mapper =
        name.endsWith(".json") ? new ObjectMapper() : new ObjectMapper(new YAMLFactory());
    mapper.enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
    try {
      JsonNode n = mapper.readTree(Files.readString(file));
      if (n == null || n.isMissingNode()) {
        throw new ConfigException(file + ": the run config is empty");
      }
      return n;
    } catch (NoSuchFileException e) {
      throw new ConfigException(
          file + ": no such run config file; check the path given to --config");
    } catch (JsonProcessingException e) {
      String loc = e.getLocation() == null ? "" : " at line " + e.getLocation().getLineNr();
      throw new ConfigException(
          file
              + ": not valid "
              + (name.endsWith(".json") ? "JSON" : "YAML")
              + loc
              + ": "
              + e.getOriginalMessage().lines().findFirst().orElse(""),
          e);
    } catch (IOException e) {
      throw new ConfigException(file + ": cannot read the run config: " + e.getMessage(), e);
    }
  }

  private static String suggestion(String name) {
    String near = closest(name);
    return (near == null ? "" : " (did you mean '" + near + "'?)")
        + "; known fields: "
        + String.join(", ", RunConfigFields.keys());
  }

  /** One value of field f from a file node or a flag's text. */
  static Object convert(ConfigField f, JsonNode n, String where) {
    return convert(f, n, where, Unknown.STRICT);
  }

  private static Object convert(ConfigField f, JsonNode n, String where, Unknown unknown) {
    if (n.isNull()) {
      if (f.required()) {
        throw new ConfigException(where + ": must not be null (" + f.help() + ")");
      }
      return f.defaultValue();
    }
    Object v =
        switch (f.type()) {
          case STRING -> checkString(f, text(n, where, "a string"), where);
          case CHOICE ->
              choice(f, text(n, where, "one of " + String.join(", ", f.choices())), where);
          case BOOL -> bool(n, where);
          case INT -> Math.toIntExact(checkRange(f, integer(n, where), where));
          case LONG -> checkRange(f, integer(n, where), where);
          case DOUBLE -> checkRange(f, number(n, where), where);
          case LIST -> words(n, where);
          case DATASETS -> datasets(n, where, unknown);
        };
    try {
      return f.rule().apply(v);
    } catch (ConfigException e) {
      throw e;
    } catch (IllegalArgumentException e) {
      throw new ConfigException(where + ": " + e.getMessage(), e);
    }
  }

  private static String text(JsonNode n, String where, String expected) {
    if (!n.isValueNode() || n.isBoolean() && !n.isTextual()) {
      throw new ConfigException(where + ": expected " + expected + ", got " + describe(n));
    }
    return n.asText();
  }

  private static String checkString(ConfigField f, String s, String where) {
    if (s.isBlank()) {
      throw new ConfigException(where + ": must not be empty (" + f.help() + ")");
    }
    return s;
  }

  private static String choice(ConfigField f, String s, String where) {
    String w = s.toLowerCase(Locale.ROOT);
    if (!f.choices().contains(w)) {
      throw new ConfigException(
          where + ": '" + s + "' is not one of " + String.join(", ", f.choices()));
    }
    return w;
  }

  private static boolean bool(JsonNode n, String where) {
    if (n.isBoolean()) {
      return n.booleanValue();
    }
    String s = n.isTextual() ? n.textValue().toLowerCase(Locale.ROOT) : "";
    return switch (s) {
      case "true", "yes", "on", "1" -> true;
      case "false", "no", "off", "0" -> false;
      default -> throw new ConfigException(where + ": expected true or false, got " + describe(n));
    };
  }

  private static long integer(JsonNode n, String where) {
    if (n.isIntegralNumber() && n.canConvertToLong()) {
      return n.longValue();
    }
    if (n.isTextual()) {
      try {
        return Long.parseLong(n.textValue().trim().replace("_", ""));
      } catch (NumberFormatException e) {
        // fall through to the error below
      }
    }
    throw new ConfigException(where + ": expected a whole number, got " + describe(n));
  }

  private static double number(JsonNode n, String where) {
    if (n.isNumber()) {
      if (!Double.isFinite(n.doubleValue())) { // 1e999 in YAML or JSON
        throw new ConfigException(where + ": must be a finite number, got " + n.asText());
      }
      return n.doubleValue();
    }
    if (n.isTextual()) {
      try {
        double d = Double.parseDouble(n.textValue().trim());
        if (Double.isFinite(d)) {
          return d;
        }
      } catch (NumberFormatException e) {
        // fall through to the error below
      }
    }
    throw new ConfigException(where + ": expected a number, got " + describe(n));
  }

  private static <T extends Number> T checkRange(ConfigField f, T v, String where) {
    double d = v.doubleValue();
    boolean low = f.min() != null && (f.minExclusive() ? d <= f.min() : d < f.min());
    boolean high = f.max() != null && d > f.max();
    if (low || high) {
      throw new ConfigException(where + ": must be " + f.range() + ", got " + v);
    }
    if (f.type() == FieldType.INT && (d > Integer.MAX_VALUE || d < Integer.MIN_VALUE)) {
      throw new ConfigException(where + ": " + v + " is too large");
    }
    return v;
  }

  private static List<String> words(JsonNode n, String where) {
    List<String> out = new ArrayList<>();
    if (n.isArray()) {
      for (JsonNode e : n) {
        out.add(text(e, where, "a list of words"));
      }
    } else {
      for (String s : text(n, where, "a list of words").split(",")) {
        if (!s.isBlank()) {
          out.add(s.trim());
        }
      }
    }
    return List.copyOf(out);
  }

  /** The fields that name files or directories. */
  static final List<String> PATH_FIELDS =
      List.of("model", "tokenizer", "template-file", "lora-adapter", "out");

  /**
   * Relative paths in a config file mean relative to the file (as an include does), not to the
   * directory moetune happens to be started in; flags stay relative to the working directory.
   */
  private static void resolvePaths(Map<String, Object> values, Path base) {
    for (String key : PATH_FIELDS) {
      if (values.get(key) instanceof String v && !v.isEmpty()) {
        String prefix = key.equals("model") && v.startsWith("new:") ? "new:" : "";
        String p = v.substring(prefix.length());
        if (!p.isEmpty() && !Path.of(p).isAbsolute()) {
          values.put(key, prefix + base.resolve(p).normalize());
        }
      }
    }
    for (String key : List.of("datasets", "eval-datasets")) {
      if (values.get(key) instanceof List<?> list) {
        List<Object> out = new ArrayList<>();
        for (Object o : list) {
          if (o instanceof DatasetSpec d && d.path() != null && !Path.of(d.path()).isAbsolute()) {
            o =
                new DatasetSpec(
                    base.resolve(d.path()).normalize().toString(),
                    d.format(),
                    d.template(),
                    d.labels(),
                    d.weight());
          }
          out.add(o);
        }
        values.put(key, List.copyOf(out));
      }
    }
  }

  /**
   * Datasets: a list whose entries are paths or {path, format, template, labels, weight} objects,
   * or (from a flag) comma-separated paths. Settings an entry leaves out stay null here and are
   * taken from the top-level format, template and labels by {@link RunConfig#datasets}. Axolotl's
   * entry keys are read too: {@code type} (sharegpt, alpaca, chat_template) for the format, {@code
   * conversation} for the template, {@code ds_type} (json, parquet) checked against the file.
   */
  private static List<DatasetSpec> datasets(JsonNode n, String where, Unknown unknown) {
    List<JsonNode> entries = new ArrayList<>();
    String t = n.isTextual() ? n.textValue().strip() : "";
    if (t.startsWith("[") || t.startsWith("{")) { // a flag's JSON/YAML list (the GUI writes one)
      try {
        n = new ObjectMapper(new YAMLFactory()).readTree(t);
      } catch (JsonProcessingException e) {
        throw new ConfigException(
            where
                + ": not a valid list of datasets: "
                + e.getOriginalMessage().lines().findFirst().orElse("")
                + "; write comma-separated paths or [{path: a.jsonl, format: openai}, b.jsonl]");
      }
    }
    if (n.isArray()) {
      n.forEach(entries::add);
    } else if (n.isTextual()) {
      for (String s : n.textValue().split(",")) {
        if (!s.isBlank()) {
          entries.add(new TextNode(s.trim()));
        }
      }
    } else {
      entries.add(n);
    }
    List<DatasetSpec> out = new ArrayList<>();
    for (int i = 0; i < entries.size(); i++) {
      JsonNode e = entries.get(i);
      String w = where + "[" + i + "]";
      if (e.isTextual()) {
        out.add(new DatasetSpec(e.textValue(), null, null, null));
        continue;
      }
      if (!e.isObject()) {
        throw new ConfigException(
            w
                + ": expected a path or {path, format, template, labels, weight}, got "
                + describe(e));
      }
      out.add(dataset(e, w, unknown));
    }
    return List.copyOf(out);
  }

  private static final Set<String> DATASET_KEYS =
      Set.of("path", "format", "template", "labels", "weight", "type", "conversation", "ds_type");

  private static DatasetSpec dataset(JsonNode e, String w, Unknown unknown) {
    Iterator<String> names = e.fieldNames();
    while (names.hasNext()) {
      String k = names.next();
      if (!DATASET_KEYS.contains(k)) {
        unknown.report(
            w
                + ": unknown field '"
                + k
                + "'; a dataset has path, format, template, labels, weight (axolotl: type,"
                + " conversation, ds_type)");
      }
    }
    if (!e.hasNonNull("path")) {
      throw new ConfigException(w + ": field 'path' is required");
    }
    String path = e.get("path").asText();
    if (e.hasNonNull("format") && e.hasNonNull("type")) {
      throw new ConfigException(
          w + ": 'format' and axolotl's 'type' both give the format; keep one");
    }
    String format = null;
    if (e.hasNonNull("format")) {
      format = choice(RunConfigFields.get("format"), e.get("format").asText(), w + ".format");
    } else if (e.hasNonNull("type")) {
      format = axolotlType(e.get("type").asText(), w + ".type");
    }
    if (e.hasNonNull("template") && e.hasNonNull("conversation")) {
      throw new ConfigException(
          w + ": 'template' and axolotl's 'conversation' both name the template; keep one");
    }
    String template =
        e.hasNonNull("template")
            ? e.get("template").asText()
            : e.hasNonNull("conversation") ? e.get("conversation").asText() : null;
    String labels =
        e.hasNonNull("labels")
            ? choice(RunConfigFields.get("labels"), e.get("labels").asText(), w + ".labels")
            : null;
    Double weight = null;
    if (e.hasNonNull("weight")) {
      weight = number(e.get("weight"), w + ".weight");
      if (weight <= 0 || weight > 1000) {
        throw new ConfigException(
            w + ".weight: must be > 0 and <= 1000 (how often its data is seen), got " + weight);
      }
    }
    if (e.hasNonNull("ds_type")) {
      String t = e.get("ds_type").asText().toLowerCase(Locale.ROOT);
      boolean parquet = path.toLowerCase(Locale.ROOT).endsWith(".parquet");
      if (!Set.of("json", "parquet").contains(t) || t.equals("parquet") != parquet) {
        throw new ConfigException(
            w
                + ".ds_type: '"
                + t
                + "' does not fit "
                + path
                + "; moetune reads local .json/.jsonl (ds_type json) and .parquet files");
      }
    }
    return new DatasetSpec(path, format, template, labels, weight);
  }

  /** Axolotl's dataset {@code type} as a moetune format. */
  private static String axolotlType(String type, String where) {
    return switch (type.strip().toLowerCase(Locale.ROOT)) {
      case "sharegpt", "fastchat" -> "sharegpt";
      case "alpaca" -> "alpaca";
      case "chat_template", "messages", "openai" -> "openai";
      default ->
          throw new ConfigException(
              where
                  + ": dataset type '"
                  + type
                  + "' is not supported; moetune reads sharegpt, alpaca and chat_template"
                  + " (messages with role/content)");
    };
  }

  private static String describe(JsonNode n) {
    if (n.isTextual()) {
      return "'" + n.textValue() + "'";
    }
    if (n.isObject()) {
      return "a mapping";
    }
    if (n.isArray()) {
      return "a list";
    }
    return n.toString();
  }

  private static String closest(String key) {
    String best = null;
    int bestD = 3;
    for (String k : RunConfigFields.names()) {
      int d = distance(ConfigField.normalize(key), k);
      if (d < bestD) {
        bestD = d;
        best = k;
      }
    }
    return best;
  }

  private static int distance(String a, String b) {
    int[] prev = new int[b.length() + 1];
    int[] cur = new int[b.length() + 1];
    for (int j = 0; j <= b.length(); j++) prev[j] = j;
    for (int i = 1; i <= a.length(); i++) {
      cur[0] = i;
      for (int j = 1; j <= b.length(); j++) {
        int sub = prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
        cur[j] = Math.min(sub, Math.min(prev[j] + 1, cur[j - 1] + 1));
      }
      int[] t = prev;
      prev = cur;
      cur = t;
    }
    return prev[b.length()];
  }
}
