package moetune.app.config;

/**
 * A run config value the user must fix. The message is one line naming where the value came from
 * (the file, or the flag), the field, what is wrong and the valid choices: {@code "run.yaml: field
 * 'schedule': 'cosin' is not one of constant, linear, cosine"}.
 */
public final class ConfigException extends RuntimeException {
  public ConfigException(String message) {
    super(message.replace('\n', ' '));
  }

  public ConfigException(String message, Throwable cause) {
    super(message.replace('\n', ' '), cause);
  }
}
