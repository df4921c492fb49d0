package moetune.templates;

import java.util.Objects;

/**
 * One turn of a conversation. {@code content} may be null: an open turn, as FastChat's {@code
 * append_message(role, None)}, which renders the role header the model is to continue from. Like
 * FastChat ({@code if message:}), an empty string renders exactly as null.
 */
public record Message(Role role, String content) {
  public Message {
    Objects.requireNonNull(role, "role");
  }

  public static Message user(String content) {
    return new Message(Role.USER, content);
  }

  public static Message assistant(String content) {
    return new Message(Role.ASSISTANT, content);
  }

  /** FastChat's truthiness test: a message is rendered with its content iff it is non-empty. */
  public boolean filled() {
    return content != null && !content.isEmpty();
  }
}
