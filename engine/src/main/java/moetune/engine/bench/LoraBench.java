package moetune.engine.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Supplier;
import moetune.engine.backend.Backend;
import moetune.engine.backend.OpProfiler;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.model.Batch;
import moetune.engine.model.LoraConfig;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.ModelOptions;
import moetune.engine.model.Recompute;
import moetune.engine.optim.AdamW;
import moetune.engine.tensor.DType;
import moetune.engine.train.MemoryPlan;

/**
 * LoRA training steps of a model of a config's shape with random weights made on the device ({@link
 * MixtralModel#createRandom}), next to transformers + PEFT ({@code tools/bench_peft_lora.py}: same
 * shape, rank, targets and sequence, gradient checkpointing, random bf16 weights) run in the same
 * invocation after moetune's backend is closed (the device is then free). One row per target set.
 * Tokens/s come from the median step; peak memory is the most live tensor bytes during the timed
 * steps on each side (torch.cuda.max_memory_allocated for the reference).
 *
 * <p>moetune's step: zero gradients, forward and backward of one micro-batch, AdamW on the
 * adapters, timed from one device synchronisation to the next.
 *
 * <p>{@code moetune bench lora} runs it; {@link #main} runs it without the app (a GPU host with
 * only a JRE and the engine's jars): {@code --config C --seq-len 4096 --r 16 --targets
 * q_proj,k_proj,v_proj,o_proj;q_proj,k_proj,v_proj,o_proj,w1,w2,w3 --recompute layer}.
 */
public final class LoraBench {
  public static final String SCRIPT = "tools/bench_peft_lora.py";

  /**
   * @param targetSets one or more target lists, each comma-separated, the lists separated by ';'
   * @param python the Python that runs the reference, or null to skip it
   * @param script the reference script
   */
  public record Settings(
      MixtralConfig config,
      Path configFile,
      int seqLen,
      int microBatch,
      int r,
      double alpha,
      String targetSets,
      int steps,
      int warmup,
      long seed,
      Recompute recompute,
      DType residual,
      String python,
      Path script,
      boolean profile) {
    /** Without the profiled step. */
    public Settings(
        MixtralConfig config,
        Path configFile,
        int seqLen,
        int microBatch,
        int r,
        double alpha,
        String targetSets,
        int steps,
        int warmup,
        long seed,
        Recompute recompute,
        DType residual,
        String python,
        Path script) {
      this(
          config,
          configFile,
          seqLen,
          microBatch,
          r,
          alpha,
          targetSets,
          steps,
          warmup,
          seed,
          recompute,
          residual,
          python,
          script,
          false);
    }
  }

  /** One implementation's timing of one target set. */
  public record Row(String impl, String targets, double[] stepMs, long peakBytes, String plan) {
    public double medianMs() {
      double[] s = stepMs.clone();
      Arrays.sort(s);
      return s[s.length / 2];
    }
  }

  private LoraBench() {}

  /**
   * Runs moetune on a backend from {@code open}, closes it (the device is then free), then the
   * reference when asked; prints the rows and the ratios.
   */
  public static List<Row[]> run(
      Settings s, Supplier<Backend> open, DType precision, PrintStream out) throws Exception {
    List<Row> ours = new ArrayList<>();
    try (Backend be = open.get()) {
      DType act =
          precision == null ? (be.supports(DType.BF16) ? DType.BF16 : DType.F32) : precision;
      for (String targets : s.targetSets().split(";")) {
        ours.add(moetune(s, be, act, targets.trim(), out));
      }
    }
    Map<String, Row> ref = s.python() == null ? Map.of() : reference(s, out);
    List<Row[]> rows = new ArrayList<>();
    for (Row r : ours) {
      rows.add(new Row[] {ref.get(r.targets()), r});
    }
    print(s, rows, out);
    return rows;
  }

  private static Row moetune(Settings s, Backend be, DType act, String targets, PrintStream out) {
    if (!s.profile()) {
      return moetune(s, be, null, act, targets, out);
    }
    OpProfiler profiler = OpProfiler.wrap(be);
    try {
      return moetune(s, profiler.backend(), profiler, act, targets, out);
    } finally {
      profiler.close();
    }
  }

  /**
   * The timed steps on {@code be}; with a profiler (be is then its wrapper) one more step with
   * every Backend call stamped, printed as time per phase and the slowest ops.
   */
  private static Row moetune(
      Settings s, Backend be, OpProfiler profiler, DType act, String targets, PrintStream out) {
    LoraConfig lora =
        new LoraConfig(s.r(), s.alpha(), 0, LoraConfig.parseTargets(targets), false, s.seed());
    ModelOptions o =
        new ModelOptions(act, s.seed(), s.residual()).withLora(lora).withRecompute(s.recompute());
    long t0 = System.nanoTime();
    try (MixtralModel m = MixtralModel.createRandom(s.config(), be, o, s.seed());
        AdamW opt = new AdamW(m.parameters(), AdamW.Settings.defaults(), AdamW.DECAY_MATRICES)) {
      be.synchronize();
      String plan =
          MemoryPlan.of(m).describe()
              + "\n"
              + MemoryPlan.describeActivations(s.config(), o, (long) s.microBatch() * s.seqLen());
      out.printf(
          Locale.ROOT,
          "moetune %s: model built on the device in %.1f s%n%s%n",
          targets,
          (System.nanoTime() - t0) / 1e9,
          plan);
      Batch batch = batch(s);
      for (int i = 0; i < s.warmup(); i++) {
        step(m, opt, batch);
      }
      be.synchronize();
      be.resetPeak();
      double[] ms = new double[s.steps()];
      for (int i = 0; i < s.steps(); i++) {
        long t = System.nanoTime();
        step(m, opt, batch);
        be.synchronize();
        ms[i] = (System.nanoTime() - t) / 1e6;
        out.printf(Locale.ROOT, "  step %d: %.1f ms%n", i, ms[i]);
      }
      long peak = be.peakBytes();
      if (profiler != null) {
        profiler.begin();
        step(m, opt, batch);
        printProfile(profiler.end(), out);
      }
      return new Row(
          "moetune (" + be.name() + ", recompute " + s.recompute().key() + ")",
          targets,
          ms,
          peak,
          plan);
    }
  }

  private static void printProfile(OpProfiler.Breakdown b, PrintStream out) {
    out.printf(
        Locale.ROOT,
        "  profiled step: %.1f ms on the device clock, %d ops, %d host syncs%n",
        b.totalMs(),
        b.ops(),
        b.syncs());
    for (Map.Entry<OpProfiler.Phase, Double> e : b.byPhase().entrySet()) {
      out.printf(
          Locale.ROOT,
          "    %-60s %8.1f ms %5.1f%%%n",
          e.getKey().label,
          e.getValue(),
          100 * e.getValue() / b.totalMs());
    }
    int shown = 0;
    for (Map.Entry<String, Double> e : b.byOp().entrySet()) {
      if (shown++ == 12) {
        break;
      }
      out.printf(Locale.ROOT, "    op %-40s %8.1f ms%n", e.getKey(), e.getValue());
    }
  }

  private static void step(MixtralModel m, AdamW opt, Batch batch) {
    m.zeroGrad();
    m.forward(batch);
    m.backward();
    opt.step(1e-4f); // the learning rate torch's reference uses too
  }

  private static Batch batch(Settings s) {
    SplittableRandom rnd = new SplittableRandom(s.seed());
    int[][] ids = new int[s.microBatch()][s.seqLen()];
    for (int[] row : ids) {
      for (int t = 0; t < row.length; t++) {
        row[t] = rnd.nextInt(s.config().vocabSize);
      }
    }
    return Batch.of(ids, ids);
  }

  /** The reference's RESULT lines by target list; fails naming the command when it fails. */
  private static Map<String, Row> reference(Settings s, PrintStream out) throws Exception {
    List<String> cmd =
        List.of(
            s.python(),
            s.script().toString(),
            "--config",
            s.configFile().toString(),
            "--seq-len",
            Integer.toString(s.seqLen()),
            "--micro-batch",
            Integer.toString(s.microBatch()),
            "--r",
            Integer.toString(s.r()),
            "--alpha",
            Double.toString(s.alpha()),
            "--targets",
            s.targetSets(),
            "--steps",
            Integer.toString(s.steps()),
            "--warmup",
            Integer.toString(s.warmup()),
            "--seed",
            Long.toString(s.seed()));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    Map<String, Row> rows = new LinkedHashMap<>();
    List<String> tail = new ArrayList<>();
    try (BufferedReader in =
        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      for (String line = in.readLine(); line != null; line = in.readLine()) {
        out.println("  [reference] " + line);
        if (line.startsWith("RESULT ")) {
          JsonNode r = new ObjectMapper().readTree(line.substring("RESULT ".length()));
          double[] ms = new double[r.get("step_ms").size()];
          for (int i = 0; i < ms.length; i++) {
            ms[i] = r.get("step_ms").get(i).asDouble();
          }
          rows.put(
              r.get("targets").asText(),
              new Row(
                  r.get("impl").asText(),
                  r.get("targets").asText(),
                  ms,
                  r.get("peak_bytes").asLong(),
                  null));
        }
        tail.add(line);
        if (tail.size() > 20) {
          tail.removeFirst();
        }
      }
    }
    int code = p.waitFor();
    if (code != 0 && !rows.isEmpty()) {
      out.println(
          "warning: the reference exited with "
              + code
              + " after "
              + rows.size()
              + " target list(s): "
              + tail.getLast());
    }
    if (rows.isEmpty()) {
      throw new IllegalStateException(
          "the reference "
              + String.join(" ", cmd)
              + " failed (exit "
              + code
              + "): "
              + (tail.isEmpty() ? "no output" : tail.getLast())
              + "; it needs a GPU with torch, transformers and peft, or skip it");
    }
    return rows;
  }

  private static void print(Settings s, List<Row[]> rows, PrintStream out) {
    MixtralConfig c = s.config();
    out.printf(
        Locale.ROOT,
        "LoRA r=%d alpha=%s, %d x %d tokens, hidden %d, %d layers, %d experts top-%d,"
            + " %d steps after %d warm-up%n",
        s.r(),
        s.alpha(),
        s.microBatch(),
        s.seqLen(),
        c.hiddenSize,
        c.numHiddenLayers,
        c.numLocalExperts,
        c.numExpertsPerTok,
        s.steps(),
        s.warmup());
    out.println("| targets | impl | tokens/s | step ms median (min-max) | peak GiB |");
    out.println("|---|---|---|---|---|");
    double tokens = (double) s.microBatch() * s.seqLen();
    for (Row[] pair : rows) {
      for (Row r : pair) {
        if (r == null) {
          continue;
        }
        double[] sorted = r.stepMs().clone();
        Arrays.sort(sorted);
        out.printf(
            Locale.ROOT,
            "| %s | %s | %.0f | %.1f (%.1f-%.1f) | %.2f |%n",
            r.targets(),
            r.impl(),
            tokens / (r.medianMs() / 1000),
            r.medianMs(),
            sorted[0],
            sorted[sorted.length - 1],
            r.peakBytes() / (double) (1L << 30));
      }
    }
    for (Row[] pair : rows) {
      if (pair[0] != null) {
        out.printf(
            Locale.ROOT,
            "%s: moetune / reference: tokens/s %.2fx, peak memory %.2fx%n",
            pair[1].targets(),
            pair[0].medianMs() / pair[1].medianMs(),
            pair[1].peakBytes() / (double) pair[0].peakBytes());
      }
    }
  }

  /**
   * {@code --config C [--seq-len 4096] [--micro-batch 1] [--r 16] [--alpha 32] [--targets
   * LIST;LIST] [--steps 5] [--warmup 2] [--seed 1234] [--recompute layer] [--residual fp32|bf16]
   * [--python python3 | --no-reference] [--script tools/bench_peft_lora.py] [--device N]
   * [--profile]} on a CUDA device; --profile adds one step with every op timed, after the timed
   * steps (it changes none of their numbers).
   */
  public static void main(String[] args) throws Exception {
    Map<String, String> a = new LinkedHashMap<>();
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--no-reference") || args[i].equals("--profile")) {
        a.put(args[i].substring(2), "true");
      } else if (args[i].startsWith("--") && i + 1 < args.length) {
        a.put(args[i].substring(2), args[++i]);
      } else {
        throw new IllegalArgumentException("LoraBench: unexpected argument '" + args[i] + "'");
      }
    }
    Path configFile = Path.of(a.getOrDefault("config", "tools/mixtral-8x7b-config.json"));
    Settings s =
        new Settings(
            MixtralConfig.load(configFile),
            configFile,
            Integer.parseInt(a.getOrDefault("seq-len", "4096")),
            Integer.parseInt(a.getOrDefault("micro-batch", "1")),
            Integer.parseInt(a.getOrDefault("r", "16")),
            Double.parseDouble(a.getOrDefault("alpha", "32")),
            a.getOrDefault("targets", "q_proj,k_proj,v_proj,o_proj"),
            Integer.parseInt(a.getOrDefault("steps", "5")),
            Integer.parseInt(a.getOrDefault("warmup", "2")),
            Long.parseLong(a.getOrDefault("seed", "1234")),
            Recompute.parse(a.getOrDefault("recompute", "layer")),
            a.getOrDefault("residual", "fp32").equals("bf16") ? DType.BF16 : DType.F32,
            a.containsKey("no-reference") ? null : a.getOrDefault("python", "python3"),
            Path.of(a.getOrDefault("script", SCRIPT)),
            a.containsKey("profile"));
    int device = Integer.parseInt(a.getOrDefault("device", "0"));
    run(s, () -> new moetune.engine.backend.cuda.CudaBackend(device, false), null, System.out);
  }
}
