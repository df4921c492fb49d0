package moetune.engine.train;

import java.util.Locale;

/**
 * The learning rate at each optimizer step, as transformers' {@code get_*_schedule_with_warmup}
 * computes it so that runs compare with HF Trainer runs: with s the 0-based step, warmup rises
 * linearly from 0 ({@code s / warmup}), then
 *
 * <ul>
 *   <li>constant: the peak;
 *   <li>linear: falls linearly to {@code minRatio * peak} at {@code s = total};
 *   <li>cosine: half a cosine from the peak to {@code minRatio * peak} at {@code s = total}.
 * </ul>
 *
 * @param kind the shape after warmup
 * @param peak the peak learning rate
 * @param warmupSteps steps of linear warmup (0: none)
 * @param totalSteps the run's total optimizer steps
 * @param minRatio the floor as a fraction of the peak (0 decays to zero, as HF does)
 */
public record LrSchedule(
    Kind kind, double peak, long warmupSteps, long totalSteps, double minRatio) {

  public enum Kind {
    CONSTANT,
    LINEAR,
    COSINE;

    public static Kind parse(String s) {
      return Kind.valueOf(s.toUpperCase(Locale.ROOT));
    }

    public String id() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  public LrSchedule {
    if (peak < 0 || warmupSteps < 0 || totalSteps < 0 || minRatio < 0 || minRatio > 1) {
      throw new IllegalArgumentException(
          "LrSchedule: need peak >= 0, warmup >= 0, total >= 0 and minRatio in [0, 1], got "
              + peak
              + ", "
              + warmupSteps
              + ", "
              + totalSteps
              + ", "
              + minRatio);
    }
  }

  /** The learning rate of the optimizer step with 0-based index {@code step}. */
  public double lr(long step) {
    if (step < warmupSteps) {
      return peak * step / Math.max(1, warmupSteps);
    }
    double progress = (double) (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
    progress = Math.min(1, progress);
    double factor =
        switch (kind) {
          case CONSTANT -> 1;
          case LINEAR -> 1 - progress;
          case COSINE -> 0.5 * (1 + Math.cos(Math.PI * progress));
        };
    if (kind == Kind.CONSTANT) {
      return peak;
    }
    return peak * (minRatio + (1 - minRatio) * factor);
  }
}
