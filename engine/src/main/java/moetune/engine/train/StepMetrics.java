package moetune.engine.train;

/**
 * One optimizer step's numbers.
 *
 * @param step the step just taken, 1-based
 * @param totalSteps the run's last step
 * @param epoch the epoch (0-based) the step's data came from
 * @param loss mean cross-entropy over the step's labelled tokens (what users compare)
 * @param auxLoss the router load-balancing loss (before its coefficient), averaged over the step's
 *     micro-batches weighted by their labelled tokens
 * @param zLoss the router z-loss (before its coefficient), averaged as auxLoss; 0 when its
 *     coefficient is 0 (it is then not computed)
 * @param gradNorm global gradient norm before clipping
 * @param lr the learning rate this step used
 * @param tokens labelled tokens in the step
 * @param tokensPerSecond token positions per second of wall time for this step
 * @param etaSeconds estimated seconds left in the run
 * @param skipped whether this step was skipped ({@link OnNonFinite#SKIP}: its loss or gradient norm
 *     was not finite and the optimizer did not move); loss and gradNorm then hold the bad values
 * @param skippedSteps steps skipped so far in the run, this one included
 */
public record StepMetrics(
    long step,
    long totalSteps,
    long epoch,
    double loss,
    double auxLoss,
    double zLoss,
    double gradNorm,
    double lr,
    long tokens,
    double tokensPerSecond,
    double etaSeconds,
    boolean skipped,
    long skippedSteps) {

  /** A step that was taken (nothing skipped so far). */
  public StepMetrics(
      long step,
      long totalSteps,
      long epoch,
      double loss,
      double auxLoss,
      double zLoss,
      double gradNorm,
      double lr,
      long tokens,
      double tokensPerSecond,
      double etaSeconds) {
    this(
        step,
        totalSteps,
        epoch,
        loss,
        auxLoss,
        zLoss,
        gradNorm,
        lr,
        tokens,
        tokensPerSecond,
        etaSeconds,
        false,
        0);
  }
}
