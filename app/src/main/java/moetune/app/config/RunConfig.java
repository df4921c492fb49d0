package moetune.app.config;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import java.nio.file.Path;
import java.util.ArrayList;
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
 * A validated run config: one typed component per field of {@link RunConfigFields}, in its order
 * (the field's key in camel case: {@code micro-batch} is {@link #microBatch}), null where a field
 * has no default and none was given. Every value has passed its field's validator ({@link
 * ConfigField}: its type, range or choices and its own rule), which {@link RunConfigParser} runs on
 * a file's and the flags' values with one line naming the file (or flag), the field and the fix.
 * Immutable; {@link #with} makes an edited copy (the GUI's form edits through it).
 *
 * <p>{@code datasets} and {@code evalDatasets} are as given (a dataset without its own format,
 * template or labels takes the top-level one when read through {@link #resolvedDatasets}).
 */
public record RunConfig(
    String model,
    String tokenizer,
    List<DatasetSpec> datasets,
    String format,
    String template,
    String templateFile,
    boolean addSpecialTokens,
    String labels,
    List<DatasetSpec> evalDatasets,
    double evalSplit,
    boolean skipInvalid,
    int maxLength,
    boolean packing,
    int microBatch,
    int gradAccum,
    int epochs,
    long maxSteps,
    double lr,
    double beta1,
    double beta2,
    double eps,
    double weightDecay,
    String decay,
    String schedule,
    long warmupSteps,
    double minLrRatio,
    double clip,
    String onNonfinite,
    Double auxLossCoef,
    double routerZLossCoef,
    String recompute,
    List<String> freeze,
    int loraR,
    double loraAlpha,
    double loraDropout,
    List<String> loraTargets,
    boolean useRslora,
    String loraAdapter,
    long evalEvery,
    List<String> reportTo,
    long seed,
    boolean shuffle,
    String device,
    String precision,
    String out,
    long checkpointEvery,
    int keepLast) {

  public RunConfig {
    datasets = List.copyOf(datasets);
    evalDatasets = List.copyOf(evalDatasets);
    freeze = List.copyOf(freeze);
    loraTargets = List.copyOf(loraTargets);
    reportTo = List.copyOf(reportTo);
  }

  /** A config from validated values by field key (the parser's map), every field present. */
  @SuppressWarnings("unchecked")
  static RunConfig fromValues(Map<String, Object> v) {
    for (ConfigField f : RunConfigFields.ALL) {
      if (!v.containsKey(f.key())) {
        throw new IllegalArgumentException("run config: no value for field '" + f.key() + "'");
      }
    }
    return new RunConfig(
        (String) v.get("model"),
        (String) v.get("tokenizer"),
        (List<DatasetSpec>) v.get("datasets"),
        (String) v.get("format"),
        (String) v.get("template"),
        (String) v.get("template-file"),
        (Boolean) v.get("add-special-tokens"),
        (String) v.get("labels"),
        (List<DatasetSpec>) v.get("eval-datasets"),
        (Double) v.get("eval-split"),
        (Boolean) v.get("skip-invalid"),
        (Integer) v.get("max-length"),
        (Boolean) v.get("packing"),
        (Integer) v.get("micro-batch"),
        (Integer) v.get("grad-accum"),
        (Integer) v.get("epochs"),
        (Long) v.get("max-steps"),
        (Double) v.get("lr"),
        (Double) v.get("beta1"),
        (Double) v.get("beta2"),
        (Double) v.get("eps"),
        (Double) v.get("weight-decay"),
        (String) v.get("decay"),
        (String) v.get("schedule"),
        (Long) v.get("warmup-steps"),
        (Double) v.get("min-lr-ratio"),
        (Double) v.get("clip"),
        (String) v.get("on-nonfinite"),
        (Double) v.get("aux-loss-coef"),
        (Double) v.get("router-z-loss-coef"),
        (String) v.get("recompute"),
        (List<String>) v.get("freeze"),
        (Integer) v.get("lora-r"),
        (Double) v.get("lora-alpha"),
        (Double) v.get("lora-dropout"),
        (List<String>) v.get("lora-targets"),
        (Boolean) v.get("use-rslora"),
        (String) v.get("lora-adapter"),
        (Long) v.get("eval-every"),
        (List<String>) v.get("report-to"),
        (Long) v.get("seed"),
        (Boolean) v.get("shuffle"),
        (String) v.get("device"),
        (String) v.get("precision"),
        (String) v.get("out"),
        (Long) v.get("checkpoint-every"),
        (Integer) v.get("keep-last"));
  }

  /** Every field at its default. */
  public static RunConfig defaults() {
    Map<String, Object> m = new LinkedHashMap<>();
    for (ConfigField f : RunConfigFields.ALL) {
      m.put(f.key(), f.defaultValue());
    }
    return fromValues(m);
  }

  /** The raw value of a field by key. */
  public Object get(String key) {
    Map<String, Object> m = values();
    if (!m.containsKey(key)) {
      throw new IllegalArgumentException("no run config field '" + key + "'");
    }
    return m.get(key);
  }

  /** A copy with one field set from text, validated as a flag would be. */
  public RunConfig with(String key, String text) {
    return RunConfigParser.override(this, Map.of(key, text));
  }

  /** Every value by field key, in field order (what the parser edits). */
  Map<String, Object> values() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("model", model);
    m.put("tokenizer", tokenizer);
    m.put("datasets", datasets);
    m.put("format", format);
    m.put("template", template);
    m.put("template-file", templateFile);
    m.put("add-special-tokens", addSpecialTokens);
    m.put("labels", labels);
    m.put("eval-datasets", evalDatasets);
    m.put("eval-split", evalSplit);
    m.put("skip-invalid", skipInvalid);
    m.put("max-length", maxLength);
    m.put("packing", packing);
    m.put("micro-batch", microBatch);
    m.put("grad-accum", gradAccum);
    m.put("epochs", epochs);
    m.put("max-steps", maxSteps);
    m.put("lr", lr);
    m.put("beta1", beta1);
    m.put("beta2", beta2);
    m.put("eps", eps);
    m.put("weight-decay", weightDecay);
    m.put("decay", decay);
    m.put("schedule", schedule);
    m.put("warmup-steps", warmupSteps);
    m.put("min-lr-ratio", minLrRatio);
    m.put("clip", clip);
    m.put("on-nonfinite", onNonfinite);
    m.put("aux-loss-coef", auxLossCoef);
    m.put("router-z-loss-coef", routerZLossCoef);
    m.put("recompute", recompute);
    m.put("freeze", freeze);
    m.put("lora-r", loraR);
    m.put("lora-alpha", loraAlpha);
    m.put("lora-dropout", loraDropout);
    m.put("lora-targets", loraTargets);
    m.put("use-rslora", useRslora);
    m.put("lora-adapter", loraAdapter);
    m.put("eval-every", evalEvery);
    m.put("report-to", reportTo);
    m.put("seed", seed);
    m.put("shuffle", shuffle);
    m.put("device", device);
    m.put("precision", precision);
    m.put("out", out);
    m.put("checkpoint-every", checkpointEvery);
    m.put("keep-last", keepLast);
    return m;
  }

  /** The training datasets, with the top-level format, template and labels filled in. */
  public List<DatasetSpec> resolvedDatasets() {
    return resolved(datasets);
  }

  /** The held-out datasets, resolved like {@link #resolvedDatasets}. */
  public List<DatasetSpec> resolvedEvalDatasets() {
    return resolved(evalDatasets);
  }

  private List<DatasetSpec> resolved(List<DatasetSpec> specs) {
    List<DatasetSpec> out = new ArrayList<>();
    for (DatasetSpec d : specs) {
      out.add(
          new DatasetSpec(
              d.path(),
              d.format() != null ? d.format() : format,
              d.template() != null ? d.template() : template,
              d.labels() != null ? d.labels() : labels,
              d.weight()));
    }
    return List.copyOf(out);
  }

  /** Whether the run writes TensorBoard event files ({@code report-to: tensorboard}). */
  public boolean tensorBoard() {
    return reportTo.contains("tensorboard");
  }

  /** The frozen parameters ({@link #freeze}'s words parsed). */
  public FreezeSpec freezeSpec() {
    return FreezeSpec.parse(freeze);
  }

  /**
   * The LoRA adapters to train, or null for full finetuning: from {@code lora-adapter}'s
   * adapter_config.json when given, else from lora-r (0: none) and the other lora fields.
   */
  public LoraConfig lora() {
    String adapter = loraAdapter();
    if (adapter != null) {
      try {
        return LoraWeights.readConfig(Path.of(adapter), seed());
      } catch (RuntimeException e) {
        throw new ConfigException("field 'lora-adapter': " + e.getMessage());
      }
    }
    int r = loraR;
    if (r == 0) {
      return null;
    }
    try {
      return new LoraConfig(
          r, loraAlpha, loraDropout, new LinkedHashSet<>(loraTargets), useRslora, seed());
    } catch (IllegalArgumentException e) {
      throw new ConfigException("fields 'lora-*': " + e.getMessage());
    }
  }

  /** The engine's options, with the aux-loss coefficient resolved by the caller. */
  public TrainOptions trainOptions(double auxLossCoef) {
    return TrainOptions.builder(
            new AdamWOptions(lr, beta1, beta2, eps, weightDecay, AdamWOptions.Decay.parse(decay)))
        .microBatch(microBatch)
        .gradAccum(gradAccum)
        .epochs(epochs)
        .maxSteps(maxSteps)
        .schedule(LrSchedule.Kind.parse(schedule))
        .warmupSteps(warmupSteps)
        .minLrRatio(minLrRatio)
        .clipNorm(clip)
        .auxLossCoef(auxLossCoef)
        .routerZLossCoef(routerZLossCoef)
        .freeze(freezeSpec())
        .evalEvery(evalEvery)
        .checkpointEvery(checkpointEvery)
        .keepLast(keepLast)
        .seed(seed)
        .shuffle(shuffle)
        .onNonFinite(OnNonFinite.valueOf(onNonfinite.toUpperCase(Locale.ROOT)))
        .recompute(Recompute.parse(recompute))
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
    Map<String, Object> values = values();
    for (ConfigField f : RunConfigFields.ALL) {
      Object v = values.get(f.key());
      if (f.type() == FieldType.DATASETS) {
        List<Object> list = new ArrayList<>();
        @SuppressWarnings("unchecked")
        List<DatasetSpec> specs = (List<DatasetSpec>) v;
        for (DatasetSpec d : resolved(specs)) {
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
