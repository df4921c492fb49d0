package moetune.engine.train;

/**
 * What a training run reports while it runs. The command line adapts it to a progress bar and the
 * GUI to charts; {@link MetricsLog} writes it to {@code metrics.jsonl}. Every method has an empty
 * default so a listener implements only what it shows.
 *
 * <p>Callbacks come on the training thread, in order, between steps: a listener must return quickly
 * (a GUI hands the value to its own thread) and must not throw.
 */
public interface TrainingListener {

  /** Once, before the first step (or the first step after a resume). */
  default void onStart(RunInfo info) {}

  /** After every optimizer step. */
  default void onStep(StepMetrics metrics) {}

  /** After every evaluation on the held-out split. */
  default void onEval(EvalMetrics metrics) {}

  /** After every optimizer step: the router's load per layer over that step's tokens. */
  default void onExpertLoad(ExpertLoad load) {}

  /** A human-readable line (warnings, which device, what was loaded). */
  default void onLog(String line) {}

  /** After a checkpoint has been written and made the latest. */
  default void onCheckpoint(CheckpointEvent event) {}

  /** Once, when the run ends: finished, stopped on request, or failed. */
  default void onFinish(RunSummary summary) {}
}
