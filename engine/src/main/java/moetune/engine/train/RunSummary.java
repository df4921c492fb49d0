package moetune.engine.train;

import java.nio.file.Path;

/**
 * How a run ended.
 *
 * @param outcome finished, stopped or failed
 * @param step the last completed optimizer step
 * @param lastCheckpoint the latest checkpoint directory, or null if none was written
 * @param firstEval the evaluation before training, or null without an eval split
 * @param lastEval the last evaluation, or null without an eval split
 * @param error the failure's one-line message, or null
 * @param skippedSteps steps skipped for non-finite numbers ({@link OnNonFinite#SKIP})
 */
public record RunSummary(
    Outcome outcome,
    long step,
    Path lastCheckpoint,
    EvalMetrics firstEval,
    EvalMetrics lastEval,
    String error,
    long skippedSteps) {

  /** A summary of a run that skipped no step. */
  public RunSummary(
      Outcome outcome,
      long step,
      Path lastCheckpoint,
      EvalMetrics firstEval,
      EvalMetrics lastEval,
      String error) {
    this(outcome, step, lastCheckpoint, firstEval, lastEval, error, 0);
  }

  public enum Outcome {
    FINISHED,
    STOPPED,
    FAILED
  }
}
