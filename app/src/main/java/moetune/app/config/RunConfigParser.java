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
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import moetune.engine.model.LoraConfig;

/**
 * Reads a run config from a JSON or YAML file and flags ({@code --lr 1e-4} overrides the file's
 * {@code lr}), checking every value against {@link RunConfigFields}. Every problem is a {@link
 * ConfigException} with one line naming the file or flag, the field, and what is valid.
 *
 * <p>Numbers may be written as strings ({@code lr: "1e-4"}; YAML 1.1 reads {@code 1e-4} without a
 * dot as a string, so this must work). Relative paths are taken from the current directory.
 */
public final class RunConfigParser {
  private static final Pattern LAYERS = Pattern.compile("layers?:(\\d+)(?:-(\\d+))?");
  private static final Pattern DEVICE = Pattern.compile("cpu|cuda|cuda:\\d+|auto");

  private RunConfigParser() {}

  /**
   * Parses the file (null: none) and then the flags over it, and checks that the required fields
   * are there. Does not look at the file system beyond the config file: see {@link RunConfigCheck}.
   */
  public static RunConfig parse(Path file, Map<String, String> flags) {
    Map<String, Object> values = new LinkedHashMap<>(RunConfig.defaults().values());
    if (file != null) {
      JsonNode root = readTree(file);
      String where = file + ": ";
      if (!root.isObject()) {
        throw new ConfigException(where + "the run config must be a mapping of field: value");
      }
      Iterator<Map.Entry<String, JsonNode>> it = root.fields();
      while (it.hasNext()) {
        Map.Entry<String, JsonNode> e = it.next();
        ConfigField f = field(e.getKey(), where + "field '" + e.getKey() + "'");
        values.put(f.key(), convert(f, e.getValue(), where + "field '" + f.key() + "'"));
      }
    }
    RunConfig withFlags = override(new RunConfig(values), flags);
    requireComplete(withFlags, file);
    return withFlags;
  }

  /** A copy of cfg with flag values (text, as typed after {@code --key}) applied. */
  public static RunConfig override(RunConfig cfg, Map<String, String> flags) {
    Map<String, Object> values = new LinkedHashMap<>(cfg.values());
    for (Map.Entry<String, String> e : flags.entrySet()) {
      ConfigField f = field(e.getKey(), "--" + e.getKey());
      values.put(f.key(), convert(f, new TextNode(e.getValue()), "--" + f.key()));
    }
    return new RunConfig(values);
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

  private static ConfigField field(String key, String where) {
    ConfigField f = RunConfigFields.get(key);
    if (f == null) {
      String near = closest(key);
      throw new ConfigException(
          where
              + ": unknown field"
              + (near == null ? "" : " (did you mean '" + near + "'?)")
              + "; known fields: "
              + String.join(", ", RunConfigFields.keys()));
    }
    return f;
  }

  /** One value of field f from a file node or a flag's text. */
  static Object convert(ConfigField f, JsonNode n, String where) {
    if (n.isNull()) {
      if (f.required()) {
        throw new ConfigException(where + ": must not be null (" + f.help() + ")");
      }
      return f.defaultValue();
    }
    return switch (f.type()) {
      case STRING -> checkString(f, text(n, where, "a string"), where);
      case CHOICE -> choice(f, text(n, where, "one of " + String.join(", ", f.choices())), where);
      case BOOL -> bool(n, where);
      case INT -> Math.toIntExact(checkRange(f, integer(n, where), where));
      case LONG -> checkRange(f, integer(n, where), where);
      case DOUBLE -> checkRange(f, number(n, where), where);
      case LIST -> words(f, n, where);
      case DATASETS -> datasets(n, where);
    };
  }

  private static String text(JsonNode n, String where, String expected) {
    if (!n.isValueNode() || n.isBoolean() && !n.isTextual()) {
      throw new ConfigException(where + ": expected " + expected + ", got " + describe(n));
    }
    return n.asText();
  }

  private static String checkString(ConfigField f, String s, String where) {
    if (f.key().equals("device") && !DEVICE.matcher(s).matches()) {
      throw new ConfigException(
          where + ": '" + s + "' is not a device; use cpu, cuda, cuda:N or auto");
    }
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

  private static List<String> words(ConfigField f, JsonNode n, String where) {
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
    if (f.key().equals("freeze")) {
      for (String w : out) {
        if (!Set.of("router", "attention", "embeddings").contains(w)
            && !LAYERS.matcher(w).matches()) {
          throw new ConfigException(
              where
                  + ": '"
                  + w
                  + "' is not one of router, attention, embeddings, layer:N, layer:A-B");
        }
      }
    }
    if (f.key().equals("lora-targets")) {
      for (String w : out) {
        if (!LoraConfig.ALL_TARGETS.contains(w)) {
          throw new ConfigException(
              where + ": '" + w + "' is not one of " + String.join(",", LoraConfig.ALL_TARGETS));
        }
      }
    }
    return List.copyOf(out);
  }

  /** Layer indices of a freeze word "layer:N" or "layer:A-B". */
  static Set<Integer> parseLayers(String w) {
    Matcher m = LAYERS.matcher(w);
    if (!m.matches()) {
      throw new IllegalArgumentException("not a layer word: " + w);
    }
    int a = Integer.parseInt(m.group(1));
    int b = m.group(2) == null ? a : Integer.parseInt(m.group(2));
    Set<Integer> out = new TreeSet<>();
    for (int i = Math.min(a, b); i <= Math.max(a, b); i++) {
      out.add(i);
    }
    return out;
  }

  /**
   * Datasets: a list whose entries are paths or {path, format, template, labels} objects, or (from
   * a flag) comma-separated paths. Settings an entry leaves out stay null here and are taken from
   * the top-level format, template and labels by {@link RunConfig#datasets}.
   */
  private static List<DatasetSpec> datasets(JsonNode n, String where) {
    List<JsonNode> entries = new ArrayList<>();
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
            w + ": expected a path or {path, format, template, labels}, got " + describe(e));
      }
      Iterator<String> names = e.fieldNames();
      while (names.hasNext()) {
        String k = names.next();
        if (!Set.of("path", "format", "template", "labels").contains(k)) {
          throw new ConfigException(
              w + ": unknown field '" + k + "'; a dataset has path, format, template, labels");
        }
      }
      if (!e.hasNonNull("path")) {
        throw new ConfigException(w + ": field 'path' is required");
      }
      String format =
          e.hasNonNull("format")
              ? choice(RunConfigFields.get("format"), e.get("format").asText(), w + ".format")
              : null;
      String labels =
          e.hasNonNull("labels")
              ? choice(RunConfigFields.get("labels"), e.get("labels").asText(), w + ".labels")
              : null;
      String template = e.hasNonNull("template") ? e.get("template").asText() : null;
      out.add(new DatasetSpec(e.get("path").asText(), format, template, labels));
    }
    return List.copyOf(out);
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
    for (String k : RunConfigFields.keys()) {
      int d = distance(key.toLowerCase(Locale.ROOT).replace('_', '-'), k);
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
