package moetune.app.gui.training;

import java.nio.file.Path;

/**
 * The Training screen's view of the engine trainer. The app's implementation drives the same
 * trainer API and reads the same run-config file as {@code moetune train}, so the GUI and the
 * command line train identically.
 */
public interface TrainerGateway {

  /** A prepared run: {@link #run} blocks until it finishes or is stopped. */
  interface Run {
    /** Trains until the planned end or a stop request; returns the last step done. */
    long run() throws Exception;

    /** Asks the run to write a checkpoint and return; safe from any thread. */
    void requestStop();
  }

  /**
   * Reads {@code configFile} (the JSON/YAML `train` reads), loads model and data, and
   * returns the run, which reports to {@code events}. With {@code resume}, continues from
   * the latest checkpoint in the config's output directory.
   */
  Run prepare(Path configFile, boolean resume, TrainingEvents events) throws Exception;
}
