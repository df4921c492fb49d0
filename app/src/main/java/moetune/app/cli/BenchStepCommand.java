package moetune.app.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import moetune.engine.bench.StepBench;
import moetune.engine.bench.StepBenchReport;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.tensor.DType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

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

  @Override
  public Integer call() {
    try {
      DType act =
          switch (precision) {
            case "bf16" -> DType.BF16;
            case "fp32" -> DType.F32;
            default ->
                throw new IllegalArgumentException(
                    "--precision " + precision + ": use bf16 or fp32");
          };
      MixtralConfig c = StepBenchReport.configOf(model, config);
      StepBench.Settings s = new StepBench.Settings(microBatch, seqLen, steps, warmup, act, seed);
      StepBenchReport.run(c, model, s, device, reference, python, referenceScript, System.out);
      return 0;
    } catch (Exception e) {
      return CliErrors.report("bench step", e, System.err);
    }
  }
}
