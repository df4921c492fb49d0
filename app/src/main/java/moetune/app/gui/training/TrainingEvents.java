package moetune.app.gui.training;

import java.nio.file.Path;

/**
 * What a running trainer reports to the Training screen. Called on the trainer's thread;
 * {@link TrainingViewModel} hops to the UI thread. The app's adapter forwards the engine
 * trainer's listener to this, one method per engine callback.
 */
public interface TrainingEvents {

  /** After each optimizer step; {@code totalSteps} is the planned number of steps. */
  void step(long step, long totalSteps, double loss, double lr, double gradNorm,
      double tokensPerSecond);

  /** After each evaluation. */
  void eval(long step, double evalLoss);

  /**
   * Per-layer expert load after a step.
   *
   * @param share (L, E): fraction of routed token slots that went to each expert
   * @param entropy (L): router entropy per layer, in nats
   */
  void expertLoad(long step, double[][] share, double[] entropy);

  /** A line for the log pane. */
  void log(String line);

  /** A checkpoint was written (atomically) to {@code dir}. */
  void checkpoint(long step, Path dir);
}
