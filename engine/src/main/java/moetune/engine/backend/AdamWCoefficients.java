package moetune.engine.backend;

/**
 * The float32 constants of one torch AdamW step, computed once on the host the way torch computes
 * them (hyperparameters as Python doubles, bias corrections in double, each cast to float32 where a
 * tensor op takes it), so that the CPU oracle and the GPU kernels apply the same numbers with the
 * same roundings:
 *
 * <pre>
 *   p = p * decay
 *   m = w1 &lt; 0.5 ? fma(w1, g - m, m) : fma(w1 - 1, g - m, g)    (torch's lerp)
 *   v = v * beta2 + w2 * g * g
 *   p = p + negStepSize * m / (sqrt(v) / bc2Sqrt + eps)
 * </pre>
 *
 * Hyperparameters arrive as floats; their shortest decimal form (what the user typed) is read back
 * as a double first: 0.9f becomes 0.9, not 0.89999997.
 */
public record AdamWCoefficients(
    float decay, float w1, float beta2, float w2, float negStepSize, float bc2Sqrt, float eps) {

  public static AdamWCoefficients of(
      float lr, float beta1, float beta2, float eps, float weightDecay, int step) {
    if (step < 1) {
      throw new IllegalArgumentException("adamwStep: step " + step + " must be >= 1");
    }
    double lrD = decimal(lr);
    double b1 = decimal(beta1);
    double b2 = decimal(beta2);
    double bc1 = 1 - Math.pow(b1, step);
    double bc2 = 1 - Math.pow(b2, step);
    return new AdamWCoefficients(
        (float) (1 - lrD * decimal(weightDecay)),
        (float) (1 - b1),
        (float) b2,
        (float) (1 - b2),
        (float) -(lrD / bc1),
        (float) Math.sqrt(bc2),
        (float) decimal(eps));
  }

  /** The double whose shortest decimal form equals the float's. */
  private static double decimal(float f) {
    return Double.parseDouble(Float.toString(f));
  }
}
