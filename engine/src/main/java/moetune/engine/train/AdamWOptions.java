package moetune.engine.train;

import java.util.Locale;
import java.util.function.Predicate;
import moetune.engine.model.Parameters;
import moetune.engine.optim.AdamW;

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

    /**
     * The parameters this choice decays, as the optimizer's predicate. Norm weights are the vectors
     * (Mixtral has no biases), which is what HF Trainer leaves out.
     */
    public Predicate<Parameters.Slice> predicate() {
      return switch (this) {
        case ALL -> AdamW.DECAY_ALL;
        case NO_NORMS_NO_BIAS -> AdamW.DECAY_MATRICES;
        case NONE -> slice -> false;
      };
    }
  }

  public AdamWOptions {
    if (!(lr > 0) || Double.isInfinite(lr)) {
      throw new IllegalArgumentException("AdamW: need a finite lr > 0, got " + lr);
    }
    // the optimizer's own checks of the other hyperparameters (on the parameters: fields unset
    // here)
    settings(beta1, beta2, eps, weightDecay, 0);
  }

  /**
   * These hyperparameters as the optimizer takes them, with the given grad-norm clip. The peak
   * learning rate is not among them: the trainer's schedule scales it and hands each step its
   * value.
   */
  public AdamW.Settings settings(double maxGradNorm) {
    return settings(beta1, beta2, eps, weightDecay, maxGradNorm);
  }

  private static AdamW.Settings settings(
      double beta1, double beta2, double eps, double weightDecay, double clip) {
    return new AdamW.Settings(
        (float) beta1, (float) beta2, (float) eps, (float) weightDecay, (float) clip);
  }
}
