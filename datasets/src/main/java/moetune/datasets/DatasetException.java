package moetune.datasets;

/**
 * A user error in a dataset, tokenizer directory or option. The message is one line that names the
 * file, the line or record, and the field, and says how to fix it.
 */
public final class DatasetException extends RuntimeException {
  public DatasetException(String message) {
    super(message);
  }

  public DatasetException(String message, Throwable cause) {
    super(message, cause);
  }
}
