package moetune.app.run;

import java.util.function.Consumer;
import moetune.app.config.ConfigException;
import moetune.engine.backend.Backend;
import moetune.engine.backend.Backends;
import moetune.engine.tensor.DType;

/**
 * Opens the backend a {@code --device} value names and resolves {@code --precision auto}. Says
 * which device {@code auto} picked; never falls back silently.
 */
public final class Devices {
  private Devices() {}

  /**
   * cpu, cuda, cuda:N or auto (see {@link Backends#open}); problems become one-line config errors.
   */
  public static Backend open(String device, Consumer<String> log) {
    Backend b;
    try {
      b = Backends.open(device, log);
    } catch (IllegalArgumentException | IllegalStateException e) {
      throw new ConfigException("field 'device': " + e.getMessage());
    }
    log.accept("device: " + b.describe());
    return b;
  }

  /**
   * The activation dtype for a precision value on a backend: auto is bf16 on a GPU, fp32 on the
   * CPU.
   */
  public static DType precision(String precision, Backend backend) {
    DType d =
        switch (precision) {
          case "fp32" -> DType.F32;
          case "bf16" -> DType.BF16;
          default -> backend.name().startsWith("cuda") ? DType.BF16 : DType.F32;
        };
    if (!backend.supports(d)) {
      throw new ConfigException(
          "field 'precision': "
              + precision
              + " is not supported on "
              + backend.name()
              + "; use fp32");
    }
    return d;
  }
}
