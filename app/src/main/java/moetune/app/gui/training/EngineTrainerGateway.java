package moetune.app.gui.training;

import java.nio.file.Path;
import moetune.app.config.RunConfig;
import moetune.app.run.TrainingJob;
import moetune.engine.train.RunSummary;
import moetune.engine.train.TrainingListener;

/**
 * {@link TrainerGateway} on {@link TrainingJob}, the object {@code moetune train} runs: the form's
 * config is parsed by the same parser, the job sets up device, data, model and trainer the same
 * way, so the GUI's losses are the command line's for the same config and seed.
 */
public final class EngineTrainerGateway implements TrainerGateway {

  @Override
  public Run prepare(RunConfig cfg, boolean resume, TrainingListener listener) throws Exception {
    TrainingJob job = TrainingJob.prepare(cfg, resume ? Path.of(cfg.out()) : null, listener::onLog);
    job.trainer().addListener(listener);
    return new Run() {
      @Override
      public RunSummary run() throws Exception {
        try (job) {
          return job.run();
        }
      }

      @Override
      public void requestStop() {
        job.trainer().requestStop();
      }
    };
  }
}
