package moetune.app.cli;

import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import moetune.app.run.RankGroup;
import moetune.engine.backend.Backend;
import moetune.engine.backend.Backends;
import moetune.engine.backend.Communicator;
import moetune.engine.backend.cuda.CudaProbe;
import moetune.engine.bench.StepBench;
import moetune.engine.bench.StepBenchReport;
import moetune.engine.dist.LaunchEnv;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.io.MixtralCheckpoint;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.files.AtomicFiles;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code moetune bench step}: tokens/s, step time, model TFLOP/s and peak memory of whole training
 * steps, a per-phase breakdown from queue stamps (CUDA events), and optionally transformers' row
 * from the same run ({@link StepBenchReport}).
 */
@Command(
    name = "step",
    mixinStandardHelpOptions = true,
    description = {
      "Whole training steps (forward, backward, clip, AdamW) of a Mixtral on random tokens:",
      "tokens/s, step time, model TFLOP/s, peak memory and where the time goes.",
      "Example: moetune bench step --config 1.5b --micro-batch 4 --seq-len 2048"
          + " --reference transformers"
    })
public final class BenchStepCommand implements Callable<Integer> {

  @Option(
      names = "--config",
      paramLabel = "FILE",
      description =
          "a Mixtral config.json for a new model with random weights, or 1.5b (the default: the"
              + " 1.5B model of docs/performance.md)")
  String config;

  @Option(
      names = "--model",
      paramLabel = "DIR",
      description = "a HuggingFace Mixtral directory to take the shape and weights from")
  Path model;

  @Option(
      names = "--device",
      defaultValue = "cuda",
      paramLabel = "D",
      description = "cuda, cuda:N or cpu (default: ${DEFAULT-VALUE})")
  String device;

  @Option(
      names = "--precision",
      defaultValue = "bf16",
      paramLabel = "P",
      description = "bf16 (fp32 master weights) or fp32 (default: ${DEFAULT-VALUE})")
  String precision;

  @Option(
      names = "--micro-batch",
      defaultValue = "4",
      paramLabel = "B",
      description = "sequences per step (default: ${DEFAULT-VALUE})")
  int microBatch;

  @Option(
      names = "--seq-len",
      defaultValue = "2048",
      paramLabel = "T",
      description = "tokens per sequence (default: ${DEFAULT-VALUE})")
  int seqLen;

  @Option(
      names = "--steps",
      defaultValue = "10",
      paramLabel = "N",
      description = "timed steps; the median is reported (default: ${DEFAULT-VALUE})")
  int steps;

  @Option(
      names = "--warmup",
      defaultValue = "3",
      paramLabel = "N",
      description = "untimed steps first (default: ${DEFAULT-VALUE})")
  int warmup;

  @Option(
      names = "--seed",
      defaultValue = "1234",
      paramLabel = "S",
      description = "random weights and tokens (default: ${DEFAULT-VALUE})")
  long seed;

  @Option(
      names = "--reference",
      paramLabel = "R",
      description =
          "also time transformers on the same config, batch and precision (tools/"
              + "bench_transformers_step.py; needs python with torch and transformers)")
  String reference;

  @Option(
      names = "--python",
      defaultValue = "python3",
      paramLabel = "EXE",
      description = "python for --reference (default: ${DEFAULT-VALUE})")
  String python;

  @Option(
      names = "--reference-script",
      paramLabel = "FILE",
      description = "the reference script, when not run from the moetune checkout")
  Path referenceScript;

  @Option(
      names = "--gpus",
      paramLabel = "N",
      description =
          "data-parallel scaling: times one GPU, then N worker processes (one per GPU, --micro-batch"
              + " sequences each, ZeRO-1 AdamW), and prints the scaling efficiency (tokens/s on N"
              + " over N x one GPU's); with --device cpu, N CPU processes (a test of the path, not"
              + " of speed)")
  Integer gpus;

  @Spec CommandSpec spec;

  /** Where a launched rank 0 writes its result for the launcher: "tokens/s median-ms". */
  static final String RESULT_ENV = "MOETUNE_BENCH_RESULT";

  @Override
  public Integer call() {
    try {
      LaunchEnv launch = LaunchEnv.from(System.getenv());
      if (launch != null) {
        return rank(launch);
      }
      if (gpus != null && gpus > 1) {
        return scaling(gpus);
      }
      MixtralConfig c = StepBenchReport.configOf(model, config);
      StepBenchReport.run(
          c, model, settings(), device, reference, python, referenceScript, System.out);
      return 0;
    } catch (Exception e) {
      return CliErrors.report("bench step", e, System.err);
    }
  }

  private StepBench.Settings settings() {
    DType act =
        switch (precision) {
          case "bf16" -> DType.BF16;
          case "fp32" -> DType.F32;
          default ->
              throw new IllegalArgumentException("--precision " + precision + ": use bf16 or fp32");
        };
    return new StepBench.Settings(microBatch, seqLen, steps, warmup, act, seed);
  }

  /**
   * One GPU, then N ranks, then the efficiency. The N-rank part is N processes of this command (see
   * {@link RankLauncher}); its rank 0 hands its tokens/s back through a file.
   */
  private int scaling(int n) throws Exception {
    if (reference != null) {
      throw new IllegalArgumentException(
          "bench step: --reference with --gpus; time the reference without --gpus");
    }
    String d = device.strip().toLowerCase(Locale.ROOT);
    RankGroup.device(d, new LaunchEnv(n, 0, 0, "127.0.0.1", 1)); // cuda:N is one line
    if (!d.equals("cpu")) {
      String why = CudaProbe.unavailableReason(n - 1);
      if (why != null) {
        throw new IllegalArgumentException(
            "bench step --gpus "
                + n
                + ": needs "
                + n
                + " GPUs but cuda:"
                + (n - 1)
                + " is not usable ("
                + why
                + "); run it on a host with "
                + n
                + " or more GPUs (scripts/device/run-multi-gpu.sh does)");
      }
    }
    MixtralConfig c = StepBenchReport.configOf(model, config);
    StepBench.Settings s = settings();
    System.out.println("one rank (" + (d.equals("cpu") ? "cpu" : "cuda:0") + "):");
    StepBench.Result one =
        StepBenchReport.run(
            c, model, s, d.equals("cpu") ? "cpu" : "cuda:0", null, python, null, System.out);
    System.out.println();
    System.out.println(n + " ranks (one process each):");
    System.out.flush();
    Path result = Files.createTempFile("moetune-bench-", ".txt");
    try {
      int status =
          new RankLauncher(
                  "bench step",
                  n,
                  RankLauncher.withoutGpus(spec.commandLine().getParseResult().originalArgs()),
                  Map.of(RESULT_ENV, result.toString()),
                  System.err,
                  TrainCommand.STOP_GRACE_S)
              .run();
      if (status != 0) {
        return status;
      }
      String[] got = Files.readString(result).strip().split(" ");
      double tokN = Double.parseDouble(got[0]);
      double msN = Double.parseDouble(got[1]);
      StepBench.Row r1 = one.row();
      System.out.println();
      System.out.printf(
          Locale.ROOT,
          "data-parallel scaling, %s, %d x %d tokens per rank and step:%n",
          c.numHiddenLayers + "-layer config",
          s.microBatch(),
          s.seqLen());
      System.out.println("| ranks | step ms (median) | tokens/s | scaling efficiency |");
      System.out.println("|---|---|---|---|");
      System.out.printf(
          Locale.ROOT,
          "| 1 | %.1f | %,.0f | 100%% (reference) |%n",
          r1.stepMsMedian(),
          r1.tokensPerS());
      System.out.printf(
          Locale.ROOT,
          "| %d | %.1f | %,.0f | %.1f%% |%n",
          n,
          msN,
          tokN,
          100 * tokN / (n * r1.tokensPerS()));
      return 0;
    } finally {
      Files.deleteIfExists(result);
    }
  }

  /** One rank of a group (launched by {@link #scaling} or by torchrun). */
  private int rank(LaunchEnv launch) throws Exception {
    boolean zero = launch.rank() == 0;
    PrintStream log = zero ? System.out : new PrintStream(OutputStream.nullOutputStream());
    MixtralConfig c = StepBenchReport.configOf(model, config);
    StepBench.Settings s = settings();
    Backend be;
    try {
      be = Backends.open(RankGroup.device(device, launch), log::println);
    } catch (IllegalStateException e) {
      throw new IllegalArgumentException("--device " + device + ": " + e.getMessage(), e);
    }
    try (be;
        Communicator comm = RankGroup.join(be, launch, log::println)) {
      StepBench.Result r;
      if (model != null) {
        // memory-mapped until the weights are on the device
        try (MixtralCheckpoint ckpt = MixtralCheckpoint.load(model)) {
          Map<String, HostTensor> weights = new java.util.LinkedHashMap<>();
          for (String name : ckpt.names()) {
            weights.put(name, ckpt.tensor(name));
          }
          r = StepBench.run(c, weights, be, s, log, comm);
        }
      } else {
        r = StepBench.run(c, StepBench.randomWeights(c, s.seed()), be, s, log, comm);
      }
      if (zero) {
        StepBenchReport.printRows(log, c, s, be.name(), r.row(), java.util.List.of());
        String file = System.getenv(RESULT_ENV);
        if (file != null) {
          AtomicFiles.writeString(
              Path.of(file),
              String.format(Locale.ROOT, "%s %s%n", r.row().tokensPerS(), r.row().stepMsMedian()));
        }
      }
      return 0;
    }
  }
}
