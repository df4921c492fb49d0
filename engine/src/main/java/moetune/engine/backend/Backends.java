package moetune.engine.backend;

import java.util.Locale;
import java.util.function.Consumer;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.backend.cuda.CudaBackend;
import moetune.engine.backend.cuda.CudaProbe;

/**
 * Opens the backend a user asked for: {@code cpu}, {@code cuda} (device 0), {@code cuda:N} or
 * {@code auto}. Nothing falls back silently: an explicit cuda request without a usable GPU is an
 * error naming why, and {@code auto} logs which backend it chose and, if the CPU, why.
 */
public final class Backends {
  private Backends() {}

  public static Backend open(String device, Consumer<String> log) {
    String d = device == null ? "" : device.trim().toLowerCase(Locale.ROOT);
    if (d.equals("cpu")) {
      return new CpuBackend();
    }
    if (d.equals("auto")) {
      String why = CudaProbe.unavailableReason(0);
      if (why == null) {
        Backend b = new CudaBackend(0, false);
        log.accept("device auto: chose " + b.describe());
        return b;
      }
      Backend b = new CpuBackend();
      log.accept("device auto: chose cpu because " + why);
      return b;
    }
    if (d.equals("cuda") || d.startsWith("cuda:")) {
      int ordinal = 0;
      if (d.startsWith("cuda:")) {
        try {
          ordinal = Integer.parseInt(d.substring(5));
        } catch (NumberFormatException e) {
          throw new IllegalArgumentException(
              "device '" + device + "': expected cuda:N with N a device number, e.g. cuda:0");
        }
      }
      String why = CudaProbe.unavailableReason(ordinal);
      if (why != null) {
        throw new IllegalStateException(
            "device '"
                + device
                + "' is not usable: "
                + why
                + "; use --device cpu to run on the CPU");
      }
      return new CudaBackend(ordinal, false);
    }
    throw new IllegalArgumentException(
        "device '" + device + "': use one of cpu, cuda, cuda:N, auto");
  }
}
