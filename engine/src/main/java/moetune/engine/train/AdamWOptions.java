package moetune.engine.train;

import java.util.Locale;

/**
 * torch.optim.AdamW's settings and which parameters decay.
 *
 * @param lr peak learning rate (the schedule scales it)
 * @param beta1 first-moment decay
 * @param beta2 second-moment decay
 * @param eps added to the denominator
 * @param weightDecay decoupled weight decay
 * @param decay which parameters weight decay applies to
 */
public record AdamWOptions(
    double lr, double beta1, double beta2, double eps, double weightDecay, Decay decay) {

  /** Which parameters are decayed. */
  public enum Decay {
    /** Every parameter, as torch does when given one parameter group. */
    ALL,
    /** Every parameter except RMSNorm weights and biases (what HF Trainer does). */
    NO_NORMS_NO_BIAS,
    /** None. */
    NONE;

    public String id() {
      return name().toLowerCase(Locale.ROOT).replace('_', '-');
    }

    public static Decay parse(String s) {
      return valueOf(s.toUpperCase(Locale.ROOT).replace('-', '_'));
    }

    /** Whether a parameter with this HF name decays. */
    public boolean decays(String name) {
      return switch (this) {
        case ALL -> true;
        case NONE -> false;
        case NO_NORMS_NO_BIAS -> !(name.endsWith(".bias") || name.contains("norm."));
      };
    }
  }

  public AdamWOptions {
    if (!(lr >= 0)
        || !(beta1 >= 0 && beta1 < 1)
        || !(beta2 >= 0 && beta2 < 1)
        || !(eps > 0)
        || !(weightDecay >= 0)) {
      throw new IllegalArgumentException(
          "AdamWOptions: need lr >= 0, betas in [0, 1), eps > 0, weight decay >= 0");
    }
  }
}
