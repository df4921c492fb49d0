package moetune.app.run;

import moetune.engine.dist.LaunchEnv;

/** Package-private parts of {@link TrainingJob} for tests in other packages. */
public final class TrainingJobAccess {
  private TrainingJobAccess() {}

  public static String rankDevice(String device, LaunchEnv launch) {
    return TrainingJob.rankDevice(device, launch);
  }
}
