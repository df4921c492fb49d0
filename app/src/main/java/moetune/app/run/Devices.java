package moetune.app.run;

import java.util.function.Consumer;
import moetune.app.config.ConfigException;
import moetune.engine.backend.Backend;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.tensor.DType;

/**
 * Opens the backend a {@code --device} value names and resolves {@code --precision auto}. Says
 * which device {@code auto} picked; never falls back silently.
 */
public final class Devices {
  private Devices() {}

  /** cpu, cuda, cuda:N or auto. */
  public static Backend open(String device, Consumer<String> log) {
    return switch (device) {
      case "cpu" -> cpu(log);
      case "auto" -> {
        log.accept("device auto: no CUDA backend in this build, using the CPU");
        yield cpu(log);
      }
      default ->
          throw new ConfigException(
              "field 'device': " + device + " is not available in this build (no CUDA backend); "
                  + "use --device cpu");
    };
  }

  private static Backend cpu(Consumer<String> log) {
    Backend b = new CpuBackend();
    log.accept("device: " + b.describe());
    return b;
  }

  /** The activation dtype for a precision value on a backend: auto is bf16 on a GPU, fp32 on the CPU. */
  public static DType precision(String precision, Backend backend) {
    DType d =
        switch (precision) {
          case "fp32" -> DType.F32;
          case "bf16" -> DType.BF16;
          default -> backend.name().startsWith("cuda") ? DType.BF16 : DType.F32;
        };
    if (!backend.supports(d)) {
      throw new ConfigException(
          "field 'precision': " + precision + " is not supported on " + backend.name()
              + "; use fp32");
    }
    return d;
  }
}
