package moetune.engine.train;

import java.nio.file.Path;

/**
 * A checkpoint that has been written, synced and made the latest.
 *
 * @param step the optimizer step it holds
 * @param dir its directory
 * @param reason why it was written
 * @param seconds how long writing it took
 */
public record CheckpointEvent(long step, Path dir, Reason reason, double seconds) {
  public enum Reason {
    /** Every N steps. */
    PERIODIC,
    /** A stop was requested (Ctrl-C, SIGTERM, the GUI's stop button). */
    STOP,
    /** The run reached its last step. */
    FINAL
  }
}
