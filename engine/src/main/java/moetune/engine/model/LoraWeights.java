package moetune.engine.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.Function;
import moetune.engine.hf.CheckpointException;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.io.MixtralCheckpoint;
import moetune.engine.io.ModelDirectory;
import moetune.engine.io.SafetensorsIndex;
import moetune.engine.io.SafetensorsReader;
import moetune.engine.io.SafetensorsWriter;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;

/**
 * LoRA adapters on disk in PEFT's format, their initialisation, and merging them into the base
 * weights.
 *
 * <p>A PEFT adapter directory holds {@code adapter_config.json} and {@code
 * adapter_model.safetensors}, keys prefixed {@code base_model.model.}. The layout matched is PEFT
 * 0.17+ on transformers 5 (checked with PEFT 0.21 and transformers 5.18, the fused Mixtral
 * experts): attention projections are {@code target_modules} ({@code
 * model.layers.N.self_attn.q_proj.lora_A.weight} (r, D), {@code lora_B.weight} (O, r)); the router
 * and the experts are {@code target_parameters}, PEFT's {@code ParamWrapper}:
 *
 * <ul>
 *   <li>{@code mlp.gate.weight}: keys {@code model.layers.N.mlp.gate.lora_A.weight} (r, D) and
 *       {@code lora_B.weight} (E, r).
 *   <li>{@code mlp.experts.gate_up_proj} (E, 2F, D) and {@code mlp.experts.down_proj} (E, D, F):
 *       {@code lora_A.weight} (E*r, I) with expert e's A in rows [e*r, (e+1)*r), and {@code
 *       lora_B.weight} (O, r*E) with B[e][o][j] at column j*E + e. Both wrap the one {@code
 *       mlp.experts} module; PEFT nests the wrappers in target_parameters order, so with both the
 *       first (gate_up_proj) is the inner one and its keys read {@code
 *       mlp.experts.base_layer.lora_A.weight}, the outer (down_proj) {@code
 *       mlp.experts.lora_A.weight}; alone, either reads {@code mlp.experts.lora_A.weight}.
 * </ul>
 *
 * Inside moetune the expert adapters are A (E, r, I) and B (E, O, r) (see {@link Parameters}).
 */
public final class LoraWeights {
  public static final String CONFIG_FILE = "adapter_config.json";
  public static final String WEIGHTS_FILE = "adapter_model.safetensors";
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private LoraWeights() {}

  /** Whether a tensor name is one of an adapter's. */
  public static boolean isAdapterName(String name) {
    return MixtralNames.isLora(name);
  }

  /** Whether a directory holds model weights besides (or instead of) an adapter. */
  public static boolean hasWeights(Path dir) {
    return Files.isRegularFile(dir.resolve(MixtralCheckpoint.SINGLE_FILE))
        || Files.isRegularFile(dir.resolve(SafetensorsIndex.FILE_NAME));
  }

  /**
   * The base model directory of an adapter-only directory: adapter_config.json's
   * base_model_name_or_path, resolved against the adapter directory, which must be a local model
   * directory (moetune does not download).
   */
  public static Path baseModel(Path adapterDir) {
    Path file = adapterDir.resolve(CONFIG_FILE);
    JsonNode n;
    try {
      n = JSON.readTree(Files.readString(file, StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new CheckpointException(file, null, "cannot read: " + e.getMessage(), e);
    }
    JsonNode b = n.path("base_model_name_or_path");
    if (!b.isTextual() || b.asText().isBlank()) {
      throw new CheckpointException(
          file,
          "base_model_name_or_path",
          "is not set and the directory has no base weights; load the base model and give this"
              + " directory as its adapter");
    }
    Path base = adapterDir.resolve(b.asText());
    if (!Files.isRegularFile(base.resolve("config.json"))) {
      throw new CheckpointException(
          file,
          "base_model_name_or_path",
          "names "
              + base
              + ", which is not a local HuggingFace model directory; fix the path or load the"
              + " base model and give this directory as its adapter");
    }
    return base;
  }

  /** Whether a directory holds a PEFT adapter. */
  public static boolean isAdapterDir(Path dir) {
    return Files.isRegularFile(dir.resolve(CONFIG_FILE));
  }

  /**
   * PEFT's default initialisation: A as nn.Linear's weight (Kaiming-uniform with a = sqrt(5), that
   * is uniform in +-1/sqrt(in)), B zero. Deterministic in the config's seed.
   */
  static void initialise(Parameters p, LoraConfig c) {
    SplittableRandom root = new SplittableRandom(c.seed());
    for (Parameters.Slice s : p.slices()) {
      if (!s.isLora()) {
        continue;
      }
      SplittableRandom rnd = root.split();
      float[] v = new float[Math.toIntExact(s.numel())];
      if (MixtralNames.isLoraA(s.name())) {
        long in = s.shape()[s.shape().length - 1];
        double bound = 1.0 / Math.sqrt(in);
        for (int i = 0; i < v.length; i++) {
          v[i] = (float) rnd.nextDouble(-bound, bound);
        }
      }
      p.set(s, HostTensor.ofFloats(v, s.shape()));
    }
  }

  // ------------------------------------------------------------------ PEFT names

  /** The PEFT key of an adapter tensor by its moetune name. */
  static String peftKey(LoraConfig c, String name) {
    return MixtralNames.peftKey(name, c.down());
  }

  /** The adapter tensors by PEFT key, float32, from the moetune tensors by name. */
  public static Map<String, HostTensor> toPeft(
      LoraConfig c, Parameters p, Function<String, HostTensor> value) {
    Map<String, HostTensor> out = new LinkedHashMap<>();
    for (Parameters.Slice s : p.slices()) {
      if (!s.isLora()) {
        continue;
      }
      HostTensor t = value.apply(s.name()).to(DType.F32);
      if (MixtralNames.isExpertLora(s.name())) {
        long e = s.shape()[0];
        t =
            MixtralNames.isLoraA(s.name())
                ? t.reshape(e * s.shape()[1], s.shape()[2])
                : expertBToPeft(t, s.shape());
      }
      out.put(peftKey(c, s.name()), t);
    }
    return out;
  }

  /** (E, O, r) to PEFT's (O, r*E), B[e][o][j] at [o][j*E + e]. */
  private static HostTensor expertBToPeft(HostTensor t, long[] shape) {
    int e = (int) shape[0];
    int o = (int) shape[1];
    int r = (int) shape[2];
    float[] in = t.toFloatArray();
    float[] out = new float[in.length];
    for (int x = 0; x < e; x++) {
      for (int i = 0; i < o; i++) {
        for (int j = 0; j < r; j++) {
          out[i * r * e + j * e + x] = in[(x * o + i) * r + j];
        }
      }
    }
    return HostTensor.ofFloats(out, o, (long) r * e);
  }

  /** PEFT's (O, r*E) back to (E, O, r). */
  private static HostTensor expertBFromPeft(HostTensor t, long[] shape) {
    int e = (int) shape[0];
    int o = (int) shape[1];
    int r = (int) shape[2];
    float[] in = t.to(DType.F32).toFloatArray();
    float[] out = new float[in.length];
    for (int x = 0; x < e; x++) {
      for (int i = 0; i < o; i++) {
        for (int j = 0; j < r; j++) {
          out[(x * o + i) * r + j] = in[i * r * e + j * e + x];
        }
      }
    }
    return HostTensor.ofFloats(out, shape);
  }

  // ------------------------------------------------------------------ files

  /**
   * Writes adapter_config.json and adapter_model.safetensors (float32) into an existing directory,
   * each file atomically.
   */
  public static void write(Path dir, MixtralModel model, String baseModel) {
    Parameters p = model.parameters();
    LoraConfig c = p.lora();
    if (c == null) {
      throw new IllegalArgumentException("the model has no LoRA adapters to write");
    }
    List<SafetensorsWriter.Item> items = new ArrayList<>();
    for (Map.Entry<String, HostTensor> e : toPeft(c, p, model::parameter).entrySet()) {
      items.add(SafetensorsWriter.Item.of(e.getKey(), e.getValue()));
    }
    SafetensorsWriter.writeFile(dir.resolve(WEIGHTS_FILE), items, SafetensorsWriter.PT_METADATA);
    ModelDirectory.writeFile(
        dir.resolve(CONFIG_FILE), configJson(c, baseModel).getBytes(StandardCharsets.UTF_8));
  }

  /** adapter_config.json as PEFT writes it for these settings. */
  static String configJson(LoraConfig c, String baseModel) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("base_model_name_or_path", baseModel);
    m.put("bias", "none");
    m.put("fan_in_fan_out", false);
    m.put("inference_mode", true);
    m.put("init_lora_weights", true);
    m.put("layers_to_transform", null);
    m.put("lora_alpha", c.alpha() == Math.rint(c.alpha()) ? (Object) (long) c.alpha() : c.alpha());
    m.put("lora_dropout", c.dropout());
    m.put("modules_to_save", null);
    m.put("peft_type", "LORA");
    m.put("r", c.r());
    m.put("target_modules", c.peftTargetModules());
    m.put("target_parameters", c.peftTargetParameters());
    m.put("task_type", "CAUSAL_LM");
    m.put("use_dora", false);
    m.put("use_rslora", c.rslora());
    try {
      return JSON.writeValueAsString(m) + "\n";
    } catch (IOException e) {
      throw new IllegalStateException("adapter_config.json: " + e.getMessage(), e);
    }
  }

  /**
   * Reads a PEFT adapter_config.json into moetune's settings (seed from the caller: it matters only
   * for a fresh initialisation). Settings moetune does not implement are refused by name.
   */
  public static LoraConfig readConfig(Path dir, long seed) {
    Path file = dir.resolve(CONFIG_FILE);
    JsonNode n;
    try {
      n = JSON.readTree(Files.readString(file, StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new CheckpointException(file, null, "cannot read: " + e.getMessage(), e);
    }
    if (!"LORA".equals(n.path("peft_type").asText("LORA"))) {
      throw new CheckpointException(
          file, "peft_type", "is " + n.path("peft_type") + "; moetune reads LORA adapters only");
    }
    refuse(file, n, "use_dora", v -> v.asBoolean(false), "DoRA is not supported");
    refuse(file, n, "fan_in_fan_out", v -> v.asBoolean(false), "must be false for Mixtral");
    refuse(file, n, "bias", v -> !v.isNull() && !"none".equals(v.asText()), "must be \"none\"");
    refuse(file, n, "modules_to_save", v -> !v.isNull(), "is not supported; must be null");
    refuse(file, n, "layers_to_transform", v -> !v.isNull(), "is not supported; must be null");
    refuse(file, n, "rank_pattern", v -> v.size() > 0, "per-module ranks are not supported");
    refuse(file, n, "alpha_pattern", v -> v.size() > 0, "per-module alphas are not supported");
    Set<String> targets = new LinkedHashSet<>();
    for (JsonNode t : n.path("target_modules")) {
      String s = t.asText();
      if (!LoraConfig.ATTENTION.contains(s)) {
        throw new CheckpointException(
            file,
            "target_modules",
            "names '" + s + "'; moetune adapts q_proj, k_proj, v_proj, o_proj as modules");
      }
      targets.add(s);
    }
    if (n.path("target_modules").isTextual()) {
      throw new CheckpointException(
          file, "target_modules", "is a pattern; moetune needs an explicit list");
    }
    for (JsonNode t : n.path("target_parameters")) {
      switch (t.asText()) {
        case MixtralNames.GATE_UP_PARAMETER -> {
          targets.add("w1");
          targets.add("w3");
        }
        case MixtralNames.DOWN_PARAMETER -> targets.add("w2");
        case MixtralNames.ROUTER_PARAMETER -> targets.add("gate");
        default ->
            throw new CheckpointException(
                file,
                "target_parameters",
                "names '"
                    + t.asText()
                    + "'; moetune adapts "
                    + MixtralNames.GATE_UP_PARAMETER
                    + ", "
                    + MixtralNames.DOWN_PARAMETER
                    + " and "
                    + MixtralNames.ROUTER_PARAMETER);
      }
    }
    if (!n.path("target_parameters").isMissingNode()
        && !n.path("target_parameters").isNull()
        && n.path("target_parameters").size() > 0) {
      List<String> order = new ArrayList<>();
      n.path("target_parameters").forEach(t -> order.add(t.asText()));
      int gateUp = order.indexOf(MixtralNames.GATE_UP_PARAMETER);
      int down = order.indexOf(MixtralNames.DOWN_PARAMETER);
      if (gateUp >= 0 && down >= 0 && gateUp > down) {
        throw new CheckpointException(
            file,
            "target_parameters",
            "lists down_proj before gate_up_proj; moetune reads the nesting PEFT gives the"
                + " order gate_up_proj, down_proj");
      }
    }
    try {
      return new LoraConfig(
          n.path("r").asInt(8),
          n.path("lora_alpha").asDouble(8),
          n.path("lora_dropout").asDouble(0),
          targets,
          n.path("use_rslora").asBoolean(false),
          seed);
    } catch (IllegalArgumentException e) {
      throw new CheckpointException(file, null, e.getMessage(), e);
    }
  }

  private static void refuse(
      Path file, JsonNode n, String field, java.util.function.Predicate<JsonNode> bad, String why) {
    JsonNode v = n.path(field);
    if (!v.isMissingNode() && bad.test(v)) {
      throw new CheckpointException(file, field, why);
    }
  }

  /**
   * Reads adapter_model.safetensors and writes every adapter tensor into the model (which must have
   * been built with the adapter's {@link LoraConfig}).
   */
  public static void load(Path dir, MixtralModel model) {
    Parameters p = model.parameters();
    if (p.lora() == null) {
      throw new IllegalArgumentException("the model was built without LoRA adapters");
    }
    for (Map.Entry<String, HostTensor> e : read(dir, p.lora(), model.config()).entrySet()) {
      p.set(p.slice(e.getKey()), e.getValue());
    }
  }

  /**
   * Reads adapter_model.safetensors into moetune's adapter tensors by name, float32. Every tensor
   * the settings call for must be present with its shape, and no other may be.
   */
  public static Map<String, HostTensor> read(Path dir, LoraConfig c, MixtralConfig mc) {
    Path file = dir.resolve(WEIGHTS_FILE);
    Map<String, HostTensor> out = new LinkedHashMap<>();
    try (SafetensorsReader r = SafetensorsReader.open(file)) {
      Set<String> unused = new LinkedHashSet<>(r.names());
      for (Map.Entry<String, long[]> e : Parameters.loraShapes(mc, c).entrySet()) {
        String name = e.getKey();
        long[] shape = e.getValue();
        String key = peftKey(c, name);
        if (!r.contains(key)) {
          throw new CheckpointException(
              file, key, "is missing; the adapter does not match adapter_config.json");
        }
        unused.remove(key);
        HostTensor t = r.read(key);
        boolean expert = MixtralNames.isExpertLora(name);
        long[] want =
            !expert
                ? shape
                : MixtralNames.isLoraA(name)
                    ? new long[] {shape[0] * shape[1], shape[2]}
                    : new long[] {shape[1], shape[2] * shape[0]};
        if (!java.util.Arrays.equals(t.shape(), want)) {
          throw new CheckpointException(
              file,
              key,
              "has shape "
                  + java.util.Arrays.toString(t.shape())
                  + ", the model and adapter_config.json need "
                  + java.util.Arrays.toString(want));
        }
        out.put(
            name,
            expert && !MixtralNames.isLoraA(name)
                ? expertBFromPeft(t, shape)
                : t.to(DType.F32).reshape(shape));
      }
      if (!unused.isEmpty()) {
        throw new CheckpointException(
            file,
            unused.iterator().next(),
            "is not an adapter tensor moetune knows ("
                + unused.size()
                + " such); the adapter does not match adapter_config.json");
      }
    }
    return out;
  }

  // ------------------------------------------------------------------ merging

  /**
   * The merged value of a hub-layout base tensor: W + scaling * B A for an adapted one (per expert
   * for w1/w3/w2), W itself otherwise. base gives the base tensor by hub name; adapter the moetune
   * adapter tensors by name (float32). Computed in float32 on the host.
   */
  public static HostTensor merged(
      LoraConfig c,
      MixtralConfig mc,
      String hubName,
      HostTensor base,
      Function<String, HostTensor> adapter) {
    float s = c.scaling();
    int layer = MixtralNames.layerOf(hubName);
    String proj = MixtralNames.parseAttention(hubName); // or null
    MixtralNames.ExpertWeight expert = MixtralNames.parseExpert(hubName); // or null
    if (proj != null || MixtralNames.parseRouter(hubName) >= 0) {
      String target = proj != null ? proj : "gate";
      if (!c.targets(target)) {
        return base;
      }
      String module =
          proj != null
              ? MixtralNames.attention(layer, proj)
              : MixtralNames.fusedRouterModule(layer);
      float[] w = base.to(DType.F32).toFloatArray();
      HostTensor a = adapter.apply(MixtralNames.lora(module, "A"));
      HostTensor b = adapter.apply(MixtralNames.lora(module, "B"));
      addProduct(w, 0, b.toFloatArray(), 0, a.toFloatArray(), 0, b.dim(0), a.dim(1), c.r(), s);
      return HostTensor.ofFloats(w, base.shape());
    }
    if (expert == null) {
      return base;
    }
    int e = expert.expert();
    String wn = expert.w();
    boolean gateUp = !wn.equals("w2");
    if (gateUp ? !c.gateUp() : !c.down()) {
      return base;
    }
    String array = gateUp ? MixtralNames.fusedGateUp(layer) : MixtralNames.fusedDown(layer);
    float[] w = base.to(DType.F32).toFloatArray();
    HostTensor a = adapter.apply(MixtralNames.fusedLora(array, "A")); // (E, r, I)
    HostTensor b = adapter.apply(MixtralNames.fusedLora(array, "B")); // (E, O, r)
    long r = c.r();
    long in = a.dim(2);
    long out = b.dim(1);
    long rowsHere = base.dim(0); // F for w1/w3, D for w2
    long firstRow = wn.equals("w3") ? mc.intermediateSize : 0;
    addProduct(
        w,
        0,
        b.toFloatArray(),
        (e * out + firstRow) * r,
        a.toFloatArray(),
        e * r * in,
        rowsHere,
        in,
        (int) r,
        s);
    return HostTensor.ofFloats(w, base.shape());
  }

  /** w[rows, cols] += s * b[rows, r] a[r, cols], at the given element offsets. */
  private static void addProduct(
      float[] w,
      long wOff,
      float[] b,
      long bOff,
      float[] a,
      long aOff,
      long rows,
      long cols,
      int r,
      float s) {
    for (long i = 0; i < rows; i++) {
      for (long j = 0; j < cols; j++) {
        double acc = 0;
        for (int q = 0; q < r; q++) {
          acc += (double) b[(int) (bOff + i * r + q)] * a[(int) (aOff + q * cols + j)];
        }
        w[(int) (wOff + i * cols + j)] += (float) (s * acc);
      }
    }
  }
}
