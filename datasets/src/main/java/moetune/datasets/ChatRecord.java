package moetune.datasets;

import java.util.List;
import java.util.Objects;
import moetune.templates.Message;

/**
 * One conversation as read from a dataset, before any template is applied.
 *
 * @param system the system message, or null for the template's default
 * @param messages the turns, alternating user / assistant, starting with user
 * @param origin where it came from, for messages: {@code "data.jsonl:17"} (file:line)
 */
public record ChatRecord(String system, List<Message> messages, String origin) {
  public ChatRecord {
    messages = List.copyOf(messages);
    Objects.requireNonNull(origin, "origin");
  }
}
