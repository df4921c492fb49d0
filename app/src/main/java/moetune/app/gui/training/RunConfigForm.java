package moetune.app.gui.training;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import moetune.app.gui.training.ConfigField.Kind;

/**
 * Every field of the run config that `moetune train` reads, as form fields, in the order the
 * form shows them, with their tooltips and checks; and the conversion to and from the config
 * file (JSON, or YAML for .yaml/.yml), written atomically.
 */
public final class RunConfigForm {

  private static final ObjectMapper JSON = new ObjectMapper()
      .enable(SerializationFeature.INDENT_OUTPUT);
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

  private final List<ConfigField> fields = new ArrayList<>();

  public RunConfigForm() {
    text("model", "Model", false,
        "An HF model directory, or new:<config.json> for a fresh model", null);
    text("datasets", "Datasets", false,
        "Dataset files, separated by ';'", null);
    text("format", "Dataset format", false, "sharegpt, openai or alpaca", null);
    text("template", "Template", false, "Conversation template name (see `template list`)",
        null);
    integer("max_length", "Max length", "2048", "Tokens per sequence; longer records are"
        + " truncated and counted", min(2));
    choice("packing", "Packing", List.of("true", "false"), "true",
        "Pack several conversations into each sequence (attention respects boundaries)");
    integer("micro_batch_size", "Micro-batch size", "1", "Sequences per forward/backward",
        min(1));
    integer("grad_accum", "Gradient accumulation", "1",
        "Micro-batches per optimizer step", min(1));
    integer("epochs", "Epochs", "1", "Passes over the data (max steps wins when set)", min(0));
    optionalInteger("max_steps", "Max steps", "Stop after this many optimizer steps", min(1));
    number("lr", "Learning rate", "2e-5", "Peak AdamW learning rate", positive());
    number("beta1", "Adam beta1", "0.9", "First-moment decay, in [0, 1)", unit());
    number("beta2", "Adam beta2", "0.95", "Second-moment decay, in [0, 1)", unit());
    number("eps", "Adam eps", "1e-8", "Added to the denominator", positive());
    number("weight_decay", "Weight decay", "0.0", "Decoupled (AdamW) weight decay", min0());
    choice("decay", "Decay applies to", List.of("all", "matrices"), "matrices",
        "all: every parameter; matrices: not norms or biases");
    choice("lr_schedule", "LR schedule", List.of("constant", "linear", "cosine"), "cosine",
        "How the learning rate falls after warmup");
    integer("warmup_steps", "Warmup steps", "0", "Linear warmup from 0 to the peak", min(0));
    number("grad_clip", "Grad-norm clip", "1.0", "Global grad-norm clip; 0 turns it off",
        min0());
    optionalNumber("router_aux_loss_coef", "Router aux-loss coef",
        "Load-balancing loss weight; empty uses the model config's value", min0());
    number("router_z_loss_coef", "Router z-loss coef", "0.0", "Router z-loss weight", min0());
    choice("freeze_router", "Freeze router", List.of("false", "true"), "false",
        "Keep the router (gate) weights fixed");
    choice("freeze_attention", "Freeze attention", List.of("false", "true"), "false",
        "Keep q/k/v/o projections fixed");
    choice("freeze_embeddings", "Freeze embeddings", List.of("false", "true"), "false",
        "Keep embed_tokens and lm_head fixed");
    field(new ConfigField("freeze_layers", "Freeze layers", Kind.INT_LIST, List.of(), "", true,
        "Layer indices to keep fixed, e.g. 0,1", v -> ((List<?>) v).stream()
            .anyMatch(x -> ((Long) x) < 0) ? "layer indices are 0 or more" : null));
    integer("eval_every", "Eval every", "0", "Steps between evaluations; 0: none", min(0));
    number("eval_fraction", "Eval fraction", "0.05", "Share of records held out for eval",
        v -> ((Double) v) >= 0 && ((Double) v) < 1 ? null : "must be in [0, 1)");
    integer("checkpoint_every", "Checkpoint every", "0",
        "Steps between checkpoints; 0: only at the end and on stop", min(0));
    integer("keep_last", "Keep last", "2", "Checkpoints kept; older ones are pruned", min(1));
    integer("seed", "Seed", "42", "Seeds init, shuffling and dropout-free sampling", null);
    choice("device", "Device", List.of("auto", "cpu", "cuda"), "auto",
        "cpu, cuda (cuda:N in the file) or auto, which says what it picked");
    choice("precision", "Precision", List.of("bf16", "fp32"), "bf16",
        "bf16 mixed precision with float32 master weights, or float32 throughout");
    text("output_dir", "Output directory", false,
        "Checkpoints, metrics.jsonl and the export go here", null);
  }

  public List<ConfigField> fields() {
    return fields;
  }

  public ConfigField field(String key) {
    return fields.stream().filter(f -> f.key().equals(key)).findFirst()
        .orElseThrow(() -> new IllegalArgumentException("no run-config field " + key));
  }

  /** The first field error, or empty when every field is valid. */
  public Optional<String> firstError() {
    return fields.stream().map(f -> f.error().get()).filter(e -> !e.isEmpty()).findFirst();
  }

  /**
   * The config as the file holds it. Datasets become a list of {path, format, template};
   * optional fields left empty are omitted so the trainer's defaults apply.
   */
  public Map<String, Object> toMap() {
    Map<String, Object> out = new LinkedHashMap<>();
    for (ConfigField f : fields) {
      switch (f.key()) {
        case "format", "template" -> { }
        case "datasets" -> {
          List<Map<String, Object>> ds = new ArrayList<>();
          for (String p : f.text().get().split(";")) {
            if (!p.isBlank()) {
              Map<String, Object> d = new LinkedHashMap<>();
              d.put("path", p.strip());
              d.put("format", field("format").value());
              d.put("template", field("template").value());
              ds.add(d);
            }
          }
          out.put("datasets", ds);
        }
        default -> {
          Object v = f.value();
          if (v != null) {
            out.put(f.key(), f.kind() == Kind.CHOICE && ("true".equals(v) || "false".equals(v))
                ? Boolean.valueOf((String) v) : v);
          }
        }
      }
    }
    return out;
  }

  /** Fills the form from a config map; keys it does not know are refused by name. */
  public void fromMap(Path file, Map<String, Object> map) {
    for (String k : map.keySet()) {
      if (!k.equals("datasets") && fields.stream().noneMatch(f -> f.key().equals(k))) {
        throw new IllegalArgumentException(file + ": unknown run-config field '" + k + "'");
      }
    }
    for (ConfigField f : fields) {
      if (!f.key().equals("datasets") && !f.key().equals("format")
          && !f.key().equals("template") && map.containsKey(f.key())) {
        f.setFromValue(map.get(f.key()));
      } else if (!map.containsKey(f.key()) && isOptional(f)) {
        f.text().set("");
      }
    }
    if (map.get("datasets") instanceof List<?> ds) {
      List<String> paths = new ArrayList<>();
      for (Object o : ds) {
        if (!(o instanceof Map<?, ?> d) || !(d.get("path") instanceof String p)) {
          throw new IllegalArgumentException(file + ": datasets: each entry needs a 'path'");
        }
        paths.add(p);
        if (d.get("format") != null) {
          field("format").setFromValue(d.get("format"));
        }
        if (d.get("template") != null) {
          field("template").setFromValue(d.get("template"));
        }
      }
      field("datasets").text().set(String.join(";", paths));
    }
  }

  /** Writes the config atomically (temp file, then rename) as JSON or YAML by extension. */
  public void save(Path file) throws IOException {
    Optional<String> err = firstError();
    if (err.isPresent()) {
      throw new IllegalArgumentException(file + ": not saved, " + err.get());
    }
    Path abs = file.toAbsolutePath();
    Files.createDirectories(abs.getParent());
    Path tmp = abs.resolveSibling(abs.getFileName() + ".tmp");
    mapperFor(abs).writeValue(tmp.toFile(), toMap());
    Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }

  @SuppressWarnings("unchecked")
  public void load(Path file) throws IOException {
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException(file + ": no such run-config file");
    }
    Map<String, Object> map;
    try {
      map = mapperFor(file).readValue(file.toFile(), Map.class);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalArgumentException(file + ": not valid " + (isYaml(file) ? "YAML" : "JSON")
          + ": " + e.getOriginalMessage().lines().findFirst().orElse(""), e);
    }
    fromMap(file, map == null ? Map.of() : map);
  }

  static boolean isYaml(Path file) {
    String n = file.getFileName().toString().toLowerCase(Locale.ROOT);
    return n.endsWith(".yaml") || n.endsWith(".yml");
  }

  private static ObjectMapper mapperFor(Path file) {
    return isYaml(file) ? YAML : JSON;
  }

  private boolean isOptional(ConfigField f) {
    return f.key().equals("max_steps") || f.key().equals("router_aux_loss_coef")
        || f.key().equals("freeze_layers");
  }

  private void field(ConfigField f) {
    fields.add(f);
  }

  private void text(String key, String label, boolean optional, String tip,
      java.util.function.Function<Object, String> check) {
    field(new ConfigField(key, label, Kind.TEXT, List.of(), "", optional, tip, check));
  }

  private void integer(String key, String label, String def, String tip,
      java.util.function.Function<Object, String> check) {
    field(new ConfigField(key, label, Kind.INT, List.of(), def, false, tip, check));
  }

  private void optionalInteger(String key, String label, String tip,
      java.util.function.Function<Object, String> check) {
    field(new ConfigField(key, label, Kind.INT, List.of(), "", true, tip, check));
  }

  private void number(String key, String label, String def, String tip,
      java.util.function.Function<Object, String> check) {
    field(new ConfigField(key, label, Kind.NUMBER, List.of(), def, false, tip, check));
  }

  private void optionalNumber(String key, String label, String tip,
      java.util.function.Function<Object, String> check) {
    field(new ConfigField(key, label, Kind.NUMBER, List.of(), "", true, tip, check));
  }

  private void choice(String key, String label, List<String> choices, String def, String tip) {
    field(new ConfigField(key, label, Kind.CHOICE, choices, def, false, tip, null));
  }

  private static java.util.function.Function<Object, String> min(long m) {
    return v -> ((Long) v) >= m ? null : "must be at least " + m;
  }

  private static java.util.function.Function<Object, String> min0() {
    return v -> ((Double) v) >= 0 && Double.isFinite((Double) v) ? null
        : "must be 0 or more";
  }

  private static java.util.function.Function<Object, String> positive() {
    return v -> ((Double) v) > 0 && Double.isFinite((Double) v) ? null
        : "must be greater than 0";
  }

  private static java.util.function.Function<Object, String> unit() {
    return v -> ((Double) v) >= 0 && ((Double) v) < 1 ? null : "must be in [0, 1)";
  }
}
