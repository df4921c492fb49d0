package moetune.engine.train;

import java.util.Locale;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.Parameters;
import moetune.engine.tensor.DType;

/**
 * The memory a model's parameters take on its device, as {@link Parameters} lays them out, printed
 * at the start of a run:
 *
 * <pre>
 *   trainable P:  4 (float32 master) + 4 (float32 gradient) + 8 (AdamW m, v)
 *                 + 2 (bf16 working copy, in a low-precision mode)         bytes each
 *   frozen Pf:    stored once in the working dtype (2 bytes in bf16, 4 in fp32), nothing else
 * </pre>
 *
 * Activations come on top (they depend on the batch); the backend reports the real peak.
 *
 * @param trainable P, trainable elements (LoRA adapters, or every unfrozen weight)
 * @param frozen Pf, frozen elements
 * @param work the working dtype
 */
public record MemoryPlan(long trainable, long frozen, DType work) {

  /** The plan of a built model. */
  public static MemoryPlan of(MixtralModel m) {
    Parameters p = m.parameters();
    return new MemoryPlan(p.count(), p.frozenCount(), m.options().activations());
  }

  /** Bytes per trainable element: master, gradient, two moments, and the working copy if any. */
  public long bytesPerTrainable() {
    return 16 + (work == DType.F32 ? 0 : work.bytes());
  }

  public long trainableBytes() {
    return trainable * bytesPerTrainable();
  }

  public long frozenBytes() {
    return frozen * work.bytes();
  }

  public long totalBytes() {
    return trainableBytes() + frozenBytes();
  }

  /** One line for the run's log. */
  public String describe() {
    return String.format(
        Locale.ROOT,
        "memory plan: %s trainable parameters x %d B = %s (fp32 master, grad, AdamW m+v%s);"
            + " %s frozen x %d B = %s (stored once, %s); %s before activations",
        count(trainable),
        bytesPerTrainable(),
        human(trainableBytes()),
        work == DType.F32 ? "" : ", " + work + " copy",
        count(frozen),
        work.bytes(),
        human(frozenBytes()),
        work,
        human(totalBytes()));
  }

  private static String count(long n) {
    if (n >= 1_000_000_000L) {
      return String.format(Locale.ROOT, "%.2fB", n / 1e9);
    }
    if (n >= 1_000_000L) {
      return String.format(Locale.ROOT, "%.2fM", n / 1e6);
    }
    return String.format(Locale.ROOT, "%,d", n);
  }

  /** Binary units, as nvidia-smi counts. */
  static String human(long bytes) {
    String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = bytes;
    int u = 0;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    return u == 0 ? bytes + " B" : String.format(Locale.ROOT, "%.2f %s", v, units[u]);
  }
}
