package moetune.templates;

/** A user error in a template name or template file; the message is one line naming the cause. */
public final class TemplateException extends RuntimeException {
  public TemplateException(String message) {
    super(message);
  }

  public TemplateException(String message, Throwable cause) {
    super(message, cause);
  }
}
