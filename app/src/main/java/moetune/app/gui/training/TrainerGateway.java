package moetune.app.gui.training;

import moetune.app.config.RunConfig;
import moetune.engine.train.RunSummary;
import moetune.engine.train.TrainingListener;

/**
 * The Training screen's way to the engine {@link moetune.engine.train.Trainer}. The app's
 * implementation reads the same run-config file as {@code moetune train} and builds the Trainer the
 * same way, so the GUI and the command line train identically; the ViewModel only sees this so its
 * tests need no model.
 */
public interface TrainerGateway {

  /** A prepared run: {@link #run} blocks until it finishes or is stopped. */
  interface Run {
    /** Trains until the planned end or a stop request (which writes a checkpoint first). */
    RunSummary run() throws Exception;

    /** Asks the run to stop at the next step boundary, with a checkpoint; any thread. */
    void requestStop();
  }

  /**
   * Checks {@code config}, loads model and data, and returns the run, reporting to {@code
   * listener}; the run's output directory gets the config as run-config.yaml only once the checks
   * passed (a refused directory is left as it was). With {@code resume}, continues from the latest
   * checkpoint in the config's output directory.
   */
  Run prepare(RunConfig config, boolean resume, TrainingListener listener) throws Exception;
}
