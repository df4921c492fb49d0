package moetune.engine.bench;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import moetune.engine.backend.Backend;
import moetune.engine.backend.Backends;
import moetune.engine.backend.Communicator;
import moetune.engine.backend.OpProfiler;
import moetune.engine.dist.LaunchEnv;
import moetune.engine.dist.RankGroups;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.io.MixtralCheckpoint;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;

/**
 * Prints {@code bench step}'s tables: the rows (moetune and, when asked, the reference measured in
 * the same invocation) with their ratio, then the phase breakdown of the profiled step. Also the
 * entry point the GPU host runs without the app ({@link #main}); {@code moetune bench step} is the
 * same with picocli's options.
 */
public final class StepBenchReport {
  private StepBenchReport() {}

  /**
   * The rows table, moetune first, then the reference rows (may be empty), the ratio to each and,
   * with several, the ratio to the fastest reference row (the one a claim is made against).
   */
  public static void printRows(
      PrintStream out,
      MixtralConfig c,
      StepBench.Settings s,
      String device,
      StepBench.Row ours,
      List<StepBench.Row> refs) {
    if (refs == null) {
      refs = List.of();
    }
    out.printf(
        "%nbench step: Mixtral %.2fB parameters (L %d, D %d, F %d, E %d top-%d, H %d/%d, V %d),"
            + " %d x %d tokens per step, %s, median of %d steps after %d warm-up, %s,"
            + " %.2f GFLOP per token%n",
        ours.params() / 1e9,
        c.numHiddenLayers,
        c.hiddenSize,
        c.intermediateSize,
        c.numLocalExperts,
        c.numExpertsPerTok,
        c.numAttentionHeads,
        c.numKeyValueHeads,
        c.vocabSize,
        s.microBatch(),
        s.seqLen(),
        s.activations() == DType.BF16 ? "bf16 (fp32 master weights)" : "fp32",
        s.steps(),
        s.warmup(),
        device,
        StepBench.flopsPerToken(c, s.seqLen()) / 1e9);
    out.println();
    out.println(
        "| implementation | tokens/s | step ms (median, min-max) | model TFLOP/s"
            + " | peak memory (allocator) | device memory in use (driver) | last loss |");
    out.println("|---|---|---|---|---|---|---|");
    row(out, ours);
    for (StepBench.Row ref : refs) {
      row(out, ref);
    }
    if (!refs.isEmpty()) {
      out.println();
    }
    for (StepBench.Row ref : refs) {
      out.printf(
          "moetune / %s: %.2fx the tokens/s, %.2fx the peak memory (allocators)%n",
          ref.impl(),
          ours.tokensPerS() / ref.tokensPerS(),
          ours.peakBytes() / (double) ref.peakBytes());
    }
    if (refs.size() > 1) {
      StepBench.Row best = fastest(refs);
      out.printf(
          "moetune / the fastest reference row (%s): %.2fx the tokens/s%n",
          best.impl(), ours.tokensPerS() / best.tokensPerS());
    }
  }

  /** The reference row with the most tokens/s. */
  static StepBench.Row fastest(List<StepBench.Row> refs) {
    StepBench.Row best = refs.get(0);
    for (StepBench.Row r : refs) {
      if (r.tokensPerS() > best.tokensPerS()) {
        best = r;
      }
    }
    return best;
  }

  private static void row(PrintStream out, StepBench.Row r) {
    out.printf(
        "| %s | %,.0f | %.1f (%.1f-%.1f) | %.1f | %s | %s | %.4f |%n",
        r.impl(),
        r.tokensPerS(),
        r.stepMsMedian(),
        r.stepMsMin(),
        r.stepMsMax(),
        r.tflops(),
        gib(r.peakBytes()),
        r.driverBytes() < 0 ? "n/a" : gib(r.driverBytes()),
        r.lastLoss());
  }

  /** The breakdown table of the profiled step. */
  public static void printBreakdown(PrintStream out, StepBench.Result r) {
    OpProfiler.Breakdown b = r.breakdown();
    out.printf(
        "%nphase breakdown of one more step, every op between two queue stamps (%,d ops,"
            + " %d host syncs; profiled step %.1f ms wall, %.1f ms on the device clock, vs"
            + " the %.1f ms median):%n%n",
        b.ops(), b.syncs(), r.profiledStepMs(), b.totalMs(), r.row().stepMsMedian());
    out.println("| phase | ms | share |");
    out.println("|---|---|---|");
    for (Map.Entry<OpProfiler.Phase, Double> e : b.byPhase().entrySet()) {
      out.printf(
          "| %s | %.2f | %.1f%% |%n",
          e.getKey().label, e.getValue(), 100 * e.getValue() / b.totalMs());
    }
    out.printf(
        "%nof the idle time, %.2f ms directly follows the %d syncs%n",
        b.idleAfterSyncsMs(), b.syncs());
    out.println();
    out.println("| op (Backend method) | ms |");
    out.println("|---|---|");
    int shown = 0;
    for (Map.Entry<String, Double> e : b.byOp().entrySet()) {
      if (shown++ == 12) {
        break;
      }
      out.printf("| %s | %.2f |%n", e.getKey(), e.getValue());
    }
    out.println();
    out.println(r.plan().describe());
    long peak = r.row().peakBytes();
    out.printf(
        "peak in the timed steps %s: %s for activations, their gradients and scratch%n",
        gib(peak), gib(peak - r.plan().totalBytes()));
  }

  static String gib(long bytes) {
    return String.format("%.2f GiB", bytes / (double) (1L << 30));
  }

  /**
   * For a GPU host without the app: {@code [--config 1.5b|FILE | --model DIR] [--device cuda]
   * [--micro-batch 4] [--seq-len 2048] [--steps 10] [--warmup 3] [--precision bf16|fp32]
   * [--reference transformers] [--python python3] [--reference-script PATH]}.
   *
   * <p>Under a launcher's variables (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT; set by
   * scripts/device/run-multi-gpu.sh, torchrun or srun) it is one rank of a data-parallel benchmark
   * (see {@link StepBench#run(MixtralConfig, Map, Backend, StepBench.Settings, PrintStream,
   * Communicator)}): each rank on cuda:LOCAL_RANK with its own micro-batch; rank 0 prints the
   * group's row and, when MOETUNE_BENCH_RESULT names a file, writes "tokens/s median-ms" there
   * (also for WORLD_SIZE=1, the one-GPU reference of the same script).
   */
  public static void main(String[] args) throws Exception {
    Map<String, String> a = new java.util.HashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) {
      if (!args[i].startsWith("--")) {
        throw new IllegalArgumentException("expected --option value, got " + args[i]);
      }
      a.put(args[i].substring(2), args[i + 1]);
    }
    Path model = a.containsKey("model") ? Path.of(a.get("model")) : null;
    MixtralConfig c = configOf(model, a.get("config"));
    StepBench.Settings s =
        new StepBench.Settings(
            Integer.parseInt(a.getOrDefault("micro-batch", "4")),
            Integer.parseInt(a.getOrDefault("seq-len", "2048")),
            Integer.parseInt(a.getOrDefault("steps", "10")),
            Integer.parseInt(a.getOrDefault("warmup", "3")),
            a.getOrDefault("precision", "bf16").equals("fp32") ? DType.F32 : DType.BF16,
            Long.parseLong(a.getOrDefault("seed", "1234")));
    LaunchEnv launch = LaunchEnv.from(System.getenv());
    if (launch != null) {
      rank(c, s, a.getOrDefault("device", "cuda"), launch);
      return;
    }
    run(
        c,
        model,
        s,
        a.getOrDefault("device", "cuda"),
        a.get("reference"),
        a.getOrDefault("python", "python3"),
        a.containsKey("reference-script") ? Path.of(a.get("reference-script")) : null,
        System.out);
  }

  /** One rank of the data-parallel benchmark on random weights (see {@link #main}). */
  private static void rank(MixtralConfig c, StepBench.Settings s, String device, LaunchEnv launch)
      throws Exception {
    boolean zero = launch.rank() == 0;
    PrintStream log = zero ? System.out : new PrintStream(java.io.OutputStream.nullOutputStream());
    try (Backend be = Backends.open(RankGroups.device(device, launch), log::println);
        Communicator comm = RankGroups.join(be, launch, log::println)) {
      StepBench.Result r = StepBench.run(c, StepBench.randomWeights(c, s.seed()), be, s, log, comm);
      if (zero) {
        printRows(System.out, c, s, be.name(), r.row(), List.of());
        String file = System.getenv("MOETUNE_BENCH_RESULT");
        if (file != null) {
          java.nio.file.Files.writeString(
              Path.of(file),
              String.format(
                  java.util.Locale.ROOT, "%s %s%n", r.row().tokensPerS(), r.row().stepMsMedian()));
        }
      }
    }
  }

  /**
   * The whole benchmark: the reference first (when asked; it has the device to itself), then
   * moetune (random weights, or those of modelDir when not null), then the tables. Returns
   * moetune's result.
   */
  public static StepBench.Result run(
      MixtralConfig c,
      Path modelDir,
      StepBench.Settings s,
      String device,
      String reference,
      String python,
      Path script,
      PrintStream out)
      throws Exception {
    List<StepBench.Row> refs = List.of();
    if (reference != null) {
      if (!reference.equals("transformers")) {
        throw new IllegalArgumentException(
            "--reference " + reference + ": the only reference is 'transformers'");
      }
      Path sc = TransformersReference.findScript(script);
      out.println("reference: " + python + " " + sc);
      refs = TransformersReference.run(python, sc, c, s, out);
    }
    Backend opened;
    try {
      opened = Backends.open(device, out::println);
    } catch (IllegalStateException e) {
      throw new IllegalArgumentException("--device " + device + ": " + e.getMessage(), e);
    }
    try (Backend be = opened) {
      out.println("device: " + be.describe());
      StepBench.Result r;
      if (modelDir != null) {
        // the checkpoint stays open (its tensors are memory-mapped) until they are on the device
        try (MixtralCheckpoint ckpt = MixtralCheckpoint.load(modelDir)) {
          Map<String, HostTensor> weights = new LinkedHashMap<>();
          for (String name : ckpt.names()) {
            weights.put(name, ckpt.tensor(name));
          }
          r = StepBench.run(c, weights, be, s, out);
        }
      } else {
        long t0 = System.nanoTime();
        Map<String, HostTensor> weights = StepBench.randomWeights(c, s.seed());
        out.printf("random weights: %.1f s%n", (System.nanoTime() - t0) / 1e9);
        r = StepBench.run(c, weights, be, s, out);
      }
      printRows(out, c, s, be.name(), r.row(), refs);
      printBreakdown(out, r);
      return r;
    }
  }

  /** The config of a model directory's config.json, or of a --config value when dir is null. */
  public static MixtralConfig configOf(Path modelDir, String configSpec) {
    if (modelDir != null) {
      if (configSpec != null) {
        throw new IllegalArgumentException(
            "bench step: give --config (a new model of that shape) or --model DIR, not both");
      }
      return MixtralConfig.load(modelDir);
    }
    return StepBench.config(configSpec);
  }
}
