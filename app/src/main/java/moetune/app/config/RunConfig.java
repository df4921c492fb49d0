package moetune.app.config;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import moetune.engine.model.LoraConfig;
import moetune.engine.model.LoraWeights;
import moetune.engine.model.Recompute;
import moetune.engine.train.AdamWOptions;
import moetune.engine.train.FreezeSpec;
import moetune.engine.train.LrSchedule;
import moetune.engine.train.OnNonFinite;
import moetune.engine.train.TrainOptions;

/**
 * A validated run config: every field of {@link RunConfigFields} with a value of its type (or null
 * where a field has no default and none was given). Immutable; {@link #with} makes an edited copy
 * (the GUI's form edits through it). Built by {@link RunConfigParser}.
 */
public final class RunConfig {
  private final Map<String, Object> values; // key -> String, Integer, Long, Double, Boolean, List

  RunConfig(Map<String, Object> values) {
    this.values = Collections.unmodifiableMap(new LinkedHashMap<>(values));
  }

  /** Every field at its default. */
  public static RunConfig defaults() {
    Map<String, Object> m = new LinkedHashMap<>();
    for (ConfigField f : RunConfigFields.ALL) {
      m.put(f.key(), f.defaultValue());
    }
    return new RunConfig(m);
  }

  /** The raw value of a field. */
  public Object get(String key) {
    if (!values.containsKey(key)) {
      throw new IllegalArgumentException("no run config field '" + key + "'");
    }
    return values.get(key);
  }

  /** A copy with one field set from text, validated as a flag would be. */
  public RunConfig with(String key, String text) {
    return RunConfigParser.override(this, Map.of(key, text));
  }

  Map<String, Object> values() {
    return values;
  }

  public String model() {
    return (String) values.get("model");
  }

  public String tokenizer() {
    return (String) values.get("tokenizer");
  }

  /** The JSON file of user FastChat templates, or null. */
  public String templateFile() {
    return (String) values.get("template-file");
  }

  /** The training datasets, with the top-level format, template and labels filled in. */
  public List<DatasetSpec> datasets() {
    return resolved("datasets");
  }

  /** The held-out datasets, resolved like {@link #datasets}. */
  public List<DatasetSpec> evalDatasets() {
    return resolved("eval-datasets");
  }

  private List<DatasetSpec> resolved(String key) {
    List<DatasetSpec> out = new ArrayList<>();
    for (Object o : (List<?>) values.get(key)) {
      DatasetSpec d = (DatasetSpec) o;
      out.add(
          new DatasetSpec(
              d.path(),
              d.format() != null ? d.format() : (String) values.get("format"),
              d.template() != null ? d.template() : (String) values.get("template"),
              d.labels() != null ? d.labels() : (String) values.get("labels"),
              d.weight()));
    }
    return List.copyOf(out);
  }

  public double evalSplit() {
    return (Double) values.get("eval-split");
  }

  /** Whether the run writes TensorBoard event files ({@code report-to: tensorboard}). */
  public boolean tensorBoard() {
    return ((List<?>) values.get("report-to")).contains("tensorboard");
  }

  public boolean skipInvalid() {
    return (Boolean) values.get("skip-invalid");
  }

  public int maxLength() {
    return (Integer) values.get("max-length");
  }

  /** Add the template's split role markers to the tokenizer as special tokens. */
  public boolean addSpecialTokens() {
    return Boolean.TRUE.equals(values.get("add-special-tokens"));
  }

  public boolean packing() {
    return (Boolean) values.get("packing");
  }

  public long seed() {
    return (Long) values.get("seed");
  }

  public String device() {
    return (String) values.get("device");
  }

  public String precision() {
    return (String) values.get("precision");
  }

  public String out() {
    return (String) values.get("out");
  }

  /** The aux-loss coefficient given, or null to use the model config's. */
  public Double auxLossCoef() {
    return (Double) values.get("aux-loss-coef");
  }

  /** The router z-loss coefficient (0: off). */
  public double routerZLossCoef() {
    return (Double) values.get("router-z-loss-coef");
  }

  @SuppressWarnings("unchecked")
  public FreezeSpec freeze() {
    return FreezeSpec.parse((List<String>) values.get("freeze"));
  }

  /**
   * The LoRA adapters to train, or null for full finetuning: from {@code lora-adapter}'s
   * adapter_config.json when given, else from lora-r (0: none) and the other lora fields.
   */
  @SuppressWarnings("unchecked")
  public LoraConfig lora() {
    String adapter = loraAdapter();
    if (adapter != null) {
      try {
        return LoraWeights.readConfig(Path.of(adapter), seed());
      } catch (RuntimeException e) {
        throw new ConfigException("field 'lora-adapter': " + e.getMessage());
      }
    }
    int r = (Integer) values.get("lora-r");
    if (r == 0) {
      return null;
    }
    try {
      return new LoraConfig(
          r,
          (Double) values.get("lora-alpha"),
          (Double) values.get("lora-dropout"),
          new LinkedHashSet<>((List<String>) values.get("lora-targets")),
          (Boolean) values.get("use-rslora"),
          seed());
    } catch (IllegalArgumentException e) {
      throw new ConfigException("fields 'lora-*': " + e.getMessage());
    }
  }

  /** A PEFT adapter directory to continue training from, or null. */
  public String loraAdapter() {
    return (String) values.get("lora-adapter");
  }

  /** The engine's options, with the aux-loss coefficient resolved by the caller. */
  public TrainOptions trainOptions(double auxLossCoef) {
    return TrainOptions.builder(
            new AdamWOptions(
                (Double) values.get("lr"),
                (Double) values.get("beta1"),
                (Double) values.get("beta2"),
                (Double) values.get("eps"),
                (Double) values.get("weight-decay"),
                AdamWOptions.Decay.parse((String) values.get("decay"))))
        .microBatch((Integer) values.get("micro-batch"))
        .gradAccum((Integer) values.get("grad-accum"))
        .epochs((Integer) values.get("epochs"))
        .maxSteps((Long) values.get("max-steps"))
        .schedule(LrSchedule.Kind.parse((String) values.get("schedule")))
        .warmupSteps((Long) values.get("warmup-steps"))
        .minLrRatio((Double) values.get("min-lr-ratio"))
        .clipNorm((Double) values.get("clip"))
        .auxLossCoef(auxLossCoef)
        .routerZLossCoef(routerZLossCoef())
        .freeze(freeze())
        .evalEvery((Long) values.get("eval-every"))
        .checkpointEvery((Long) values.get("checkpoint-every"))
        .keepLast((Integer) values.get("keep-last"))
        .seed(seed())
        .shuffle((Boolean) values.get("shuffle"))
        .onNonFinite(
            OnNonFinite.valueOf(((String) values.get("on-nonfinite")).toUpperCase(Locale.ROOT)))
        .recompute(Recompute.parse((String) values.get("recompute")))
        .build();
  }

  /**
   * Datasets as the text after {@code --datasets}: comma-separated paths when no dataset has its
   * own settings, else a JSON list (which the flag also reads) that keeps each one's format,
   * template, labels and weight: {@code [{"path":"a.jsonl","format":"openai"},"b.jsonl"]}.
   */
  public static String datasetsText(List<DatasetSpec> specs) {
    boolean plain =
        specs.stream()
            .allMatch(
                d ->
                    d.format() == null
                        && d.template() == null
                        && d.labels() == null
                        && d.weight() == null
                        && !d.path().contains(",")
                        && !d.path().startsWith("[")
                        && !d.path().startsWith("{"));
    if (plain) {
      return String.join(",", specs.stream().map(DatasetSpec::path).toList());
    }
    List<Object> list = new ArrayList<>();
    for (DatasetSpec d : specs) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("path", d.path());
      if (d.format() != null) {
        m.put("format", d.format());
      }
      if (d.template() != null) {
        m.put("template", d.template());
      }
      if (d.labels() != null) {
        m.put("labels", d.labels());
      }
      if (d.weight() != null) {
        m.put("weight", d.weight());
      }
      list.add(m.size() == 1 ? d.path() : m);
    }
    try {
      return new ObjectMapper().writeValueAsString(list);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException("cannot print the datasets", e);
    }
  }

  /** The config as a tree of plain values, in field order (what {@link #toYaml} prints). */
  public Map<String, Object> toTree() {
    Map<String, Object> m = new LinkedHashMap<>();
    for (ConfigField f : RunConfigFields.ALL) {
      Object v = values.get(f.key());
      if (f.type() == FieldType.DATASETS) {
        List<Object> list = new ArrayList<>();
        for (DatasetSpec d : resolved(f.key())) {
          Map<String, Object> dm = new LinkedHashMap<>();
          dm.put("path", d.path());
          dm.put("format", d.format());
          dm.put("template", d.template());
          dm.put("labels", d.labels());
          if (d.weight() != null) {
            dm.put("weight", d.weight());
          }
          list.add(dm);
        }
        v = list;
      }
      m.put(f.key(), v);
    }
    return m;
  }

  /** The full config as YAML that {@link RunConfigParser} reads back to an equal config. */
  public String toYaml() {
    try {
      ObjectMapper yaml =
          new ObjectMapper(
              YAMLFactory.builder()
                  .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
                  .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES)
                  .build());
      return yaml.writeValueAsString(toTree());
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException("cannot print the run config", e);
    }
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof RunConfig r && r.toTree().equals(toTree());
  }

  @Override
  public int hashCode() {
    return toTree().hashCode();
  }
}
