package moetune.app.run;

import java.io.IOException;
import java.util.function.Consumer;
import moetune.app.config.ConfigException;
import moetune.engine.backend.Backend;
import moetune.engine.backend.Communicator;
import moetune.engine.dist.LaunchEnv;
import moetune.engine.dist.RankGroups;

/**
 * {@link RankGroups} for the app: a rank's device and group, a bad device as a config error. Shared
 * by {@code train} and {@code bench step}.
 */
public final class RankGroup {
  private RankGroup() {}

  /** See {@link RankGroups#device}; a bad combination is a {@link ConfigException}. */
  public static String device(String device, LaunchEnv launch) {
    try {
      return RankGroups.device(device, launch);
    } catch (IllegalArgumentException e) {
      throw new ConfigException(e.getMessage());
    }
  }

  /** See {@link RankGroups#join}. */
  public static Communicator join(Backend backend, LaunchEnv launch, Consumer<String> log)
      throws IOException {
    return RankGroups.join(backend, launch, log);
  }
}
