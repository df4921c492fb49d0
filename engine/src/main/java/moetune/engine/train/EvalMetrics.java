package moetune.engine.train;

/**
 * Loss on the held-out split.
 *
 * @param step the optimizer step after which it was measured (0: before training)
 * @param loss mean cross-entropy over every labelled held-out token
 * @param perplexity exp(loss)
 * @param tokens labelled tokens it was measured on
 */
public record EvalMetrics(long step, double loss, double perplexity, long tokens) {
  public static EvalMetrics of(long step, double lossSum, long tokens) {
    double loss = tokens == 0 ? Double.NaN : lossSum / tokens;
    return new EvalMetrics(step, loss, Math.exp(loss), tokens);
  }
}
