package moetune.app.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import moetune.app.run.Devices;
import moetune.engine.bench.LoraBench;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.model.Recompute;
import moetune.engine.tensor.DType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code moetune bench lora}: LoRA training steps of a model of CONFIG's shape with random weights
 * made on the device, next to transformers + PEFT ({@code tools/bench_peft_lora.py}, same shape,
 * rank, targets and sequence, gradient checkpointing) run after it in the same invocation: {@link
 * LoraBench}. Prints tokens/s from the median step and the peak device memory of each, and their
 * ratios; several target lists separated by ';' give one row pair each.
 */
@Command(
    name = "lora",
    mixinStandardHelpOptions = true,
    description = {
      "Time LoRA training steps against transformers + PEFT (tools/bench_peft_lora.py) in the",
      "same run, e.g. --config tools/mixtral-8x7b-config.json --seq-len 4096 --r 16"
    })
public final class BenchLoraCommand implements Callable<Integer> {
  @Option(names = "--config", required = true, paramLabel = "CONFIG.json")
  Path config;

  @Option(names = "--seq-len", defaultValue = "4096")
  int seqLen;

  @Option(names = "--micro-batch", defaultValue = "1")
  int microBatch;

  @Option(names = "--r", defaultValue = "16")
  int r;

  @Option(names = "--alpha", defaultValue = "32")
  double alpha;

  @Option(
      names = "--targets",
      defaultValue = "q_proj,k_proj,v_proj,o_proj",
      description = "target lists, ';' between lists (one row pair each)")
  String targets;

  @Option(
      names = "--recompute",
      defaultValue = "layer",
      description = "none, attention or layer (default: ${DEFAULT-VALUE})")
  String recompute;

  @Option(
      names = "--residual",
      defaultValue = "fp32",
      description = "dtype of the residual stream: fp32 or bf16 (default: ${DEFAULT-VALUE})")
  String residual;

  @Option(
      names = "--reference-script",
      defaultValue = LoraBench.SCRIPT,
      description = "the reference (default: ${DEFAULT-VALUE})")
  Path script;

  @Option(names = "--steps", defaultValue = "5")
  int steps;

  @Option(names = "--warmup", defaultValue = "2")
  int warmup;

  @Option(names = "--device", defaultValue = "cuda")
  String device;

  @Option(names = "--precision", defaultValue = "auto", description = "fp32, bf16 or auto")
  String precision;

  @Option(
      names = "--python",
      defaultValue = "python3",
      description = "the Python that runs the reference (default: ${DEFAULT-VALUE})")
  String python;

  @Option(names = "--no-reference", description = "skip transformers + PEFT")
  boolean noReference;

  @Option(names = "--seed", defaultValue = "1234")
  long seed;

  @Override
  public Integer call() {
    try {
      MixtralConfig c = MixtralConfig.load(config);
      if (!residual.equals("fp32") && !residual.equals("bf16")) {
        throw new moetune.app.config.ConfigException(
            "--residual: must be fp32 or bf16, got '" + residual + "'");
      }
      LoraBench.Settings s =
          new LoraBench.Settings(
              c,
              config,
              seqLen,
              microBatch,
              r,
              alpha,
              targets,
              steps,
              warmup,
              seed,
              Recompute.parse(recompute),
              residual.equals("bf16") ? DType.BF16 : DType.F32,
              noReference ? null : python,
              script);
      DType act =
          switch (precision) {
            case "auto" -> null;
            case "fp32" -> DType.F32;
            case "bf16" -> DType.BF16;
            default ->
                throw new moetune.app.config.ConfigException(
                    "--precision: must be fp32, bf16 or auto, got '" + precision + "'");
          };
      LoraBench.run(s, () -> Devices.open(device, System.out::println), act, System.out);
      return 0;
    } catch (Exception e) {
      return CliErrors.report("bench lora", e, System.err);
    }
  }
}
