package moetune.engine.dist;

/**
 * A collective failed because another rank of the group is gone (its process ended or its
 * connection broke). The message names the collective and the rank; the cause is on that rank, so
 * the command line shows this as one line, without a stack trace.
 */
public final class GroupBrokenException extends IllegalStateException {
  public GroupBrokenException(String message, Throwable cause) {
    super(message, cause);
  }
}
