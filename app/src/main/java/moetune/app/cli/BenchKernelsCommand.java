package moetune.app.cli;

import java.util.concurrent.Callable;
import moetune.engine.backend.Backend;
import moetune.engine.backend.Backends;
import moetune.engine.bench.KernelBandwidthBench;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code moetune bench kernels}: memory-bound ops in GB/s next to a device-to-device copy. */
@Command(
    name = "kernels",
    mixinStandardHelpOptions = true,
    description = {
      "The memory-bound ops of a training step (RMSNorm, RoPE, embedding, cross-entropy,",
      "SwiGLU, AdamW, grad norm, clipping) in GB/s next to a copy measured in the same run."
    })
public final class BenchKernelsCommand implements Callable<Integer> {
  @Option(
      names = "--device",
      defaultValue = "cuda",
      paramLabel = "D",
      description = "cuda or cuda:N (default: ${DEFAULT-VALUE})")
  String device;

  @Option(
      names = "--reps",
      defaultValue = "20",
      paramLabel = "N",
      description = "timed calls per op; the median is reported (default: ${DEFAULT-VALUE})")
  int reps;

  @Override
  public Integer call() {
    try {
      if (reps < 1) {
        throw new IllegalArgumentException("--reps " + reps + ": must be at least 1");
      }
      Backend opened;
      try {
        opened = Backends.open(device, System.out::println);
      } catch (IllegalStateException e) {
        throw new IllegalArgumentException("--device " + device + ": " + e.getMessage(), e);
      }
      try (Backend be = opened) {
        KernelBandwidthBench.run(be, reps, 1, System.out);
      }
      return 0;
    } catch (Exception e) {
      return CliErrors.report("bench kernels", e, System.err);
    }
  }
}
