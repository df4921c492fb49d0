package moetune.engine.dist;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The GPUs of a one-process data-parallel run, as {@code --devices cuda:0,cuda:1} names them: one
 * rank (a thread with its own backend) per device, rank i on the i-th device listed. A bad list is
 * one line naming the entry and the fix.
 */
public final class DeviceList {
  private DeviceList() {}

  /**
   * The CUDA ordinals of a comma-separated list of {@code cuda:N}, distinct, each below {@code
   * available} (the machine's device count).
   */
  public static List<Integer> parse(String spec, int available) {
    if (spec == null || spec.isBlank()) {
      throw new IllegalArgumentException(
          "--devices is empty; give the GPUs as cuda:0,cuda:1 (one rank per GPU)");
    }
    List<Integer> out = new ArrayList<>();
    Set<Integer> seen = new LinkedHashSet<>();
    for (String raw : spec.split(",", -1)) {
      String s = raw.strip();
      if (!s.matches("cuda:\\d{1,4}")) {
        throw new IllegalArgumentException(
            "--devices "
                + spec
                + ": '"
                + s
                + "' is not cuda:N; give the GPUs as cuda:0,cuda:1 (cpu and auto are one-device"
                + " choices for --device)");
      }
      int n = Integer.parseInt(s.substring(5));
      if (n >= available) {
        throw new IllegalArgumentException(
            "--devices "
                + spec
                + ": "
                + s
                + " does not exist, this machine has "
                + available
                + " CUDA device(s) (cuda:0 to cuda:"
                + (available - 1)
                + ")");
      }
      if (!seen.add(n)) {
        throw new IllegalArgumentException(
            "--devices " + spec + ": " + s + " is listed twice; each GPU takes one rank");
      }
      out.add(n);
    }
    return List.copyOf(out);
  }
}
