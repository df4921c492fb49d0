package moetune.datasets;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import moetune.templates.Message;
import moetune.templates.Role;

/**
 * Turns one JSON record into a {@link ChatRecord}, checking every field. Errors are {@link
 * RecordError}s whose message names the field ({@code conversations[3].from}); the loader adds the
 * file and line.
 *
 * <p>Rules (FastChat's training data rules, made explicit): a system message may only come first;
 * then turns alternate user / assistant starting with user; there is at least one turn. A null or
 * missing content is an open turn, allowed only as the last message.
 */
final class RecordParser {
  /** A bad record; the message names the field and the fix. */
  static final class RecordError extends Exception {
    RecordError(String message) {
      super(message);
    }
  }

  private RecordParser() {}

  /**
   * Parses one record; {@code strict} applies the training rules (alternation, start with user,
   * open turn only last). Rendering passes false: FastChat renders any order and open turns
   * anywhere, and so does {@code template render}.
   */
  static ChatRecord parse(JsonNode n, DatasetFormat format, String origin, boolean strict)
      throws RecordError {
    if (n == null || !n.isObject()) {
      throw new RecordError("expected a JSON object record, got " + type(n));
    }
    DatasetFormat f = format == DatasetFormat.AUTO ? detect(n) : format;
    return switch (f) {
      case SHAREGPT -> turns(n, "conversations", "from", "value", origin, strict);
      case OPENAI -> turns(n, "messages", "role", "content", origin, strict);
      case ALPACA -> alpaca(n, origin);
      case AUTO -> throw new IllegalStateException("detect() never returns AUTO");
    };
  }

  private static DatasetFormat detect(JsonNode n) throws RecordError {
    if (n.has("conversations")) {
      return DatasetFormat.SHAREGPT;
    }
    if (n.has("messages")) {
      return DatasetFormat.OPENAI;
    }
    if (n.has("instruction")) {
      return DatasetFormat.ALPACA;
    }
    throw new RecordError(
        "record has none of the fields 'conversations' (ShareGPT), 'messages'"
            + " (OpenAI) or 'instruction' (Alpaca)");
  }

  private static ChatRecord turns(
      JsonNode n,
      String listField,
      String roleField,
      String textField,
      String origin,
      boolean strict)
      throws RecordError {
    JsonNode list = n.get(listField);
    if (list == null || list.isNull()) {
      throw new RecordError("missing field '" + listField + "'");
    }
    if (!list.isArray()) {
      throw new RecordError("field '" + listField + "' must be an array, got " + type(list));
    }
    if (list.isEmpty()) {
      throw new RecordError(
          "field '" + listField + "' is empty; a conversation needs at least" + " one user turn");
    }
    String system = optionalText(n, "system");
    List<Message> messages = new ArrayList<>();
    for (int i = 0; i < list.size(); i++) {
      String at = listField + "[" + i + "]";
      JsonNode m = list.get(i);
      if (!m.isObject()) {
        throw new RecordError("'" + at + "' must be an object, got " + type(m));
      }
      JsonNode r = m.get(roleField);
      if (r == null || !r.isTextual()) {
        throw new RecordError("'" + at + "." + roleField + "' must be a string, got " + type(r));
      }
      JsonNode v = m.get(textField);
      if (v != null && !v.isNull() && !v.isTextual()) {
        throw new RecordError("'" + at + "." + textField + "' must be a string, got " + type(v));
      }
      String content = v == null || v.isNull() ? null : v.asText();
      String role = r.asText().toLowerCase(Locale.ROOT);
      switch (role) {
        case "system" -> {
          if (i != 0 || system != null) {
            throw new RecordError(
                "'"
                    + at
                    + "."
                    + roleField
                    + "' is system, but a system message"
                    + " may only come first and once");
          }
          system = content == null ? "" : content;
        }
        case "human", "user" -> messages.add(new Message(Role.USER, content));
        case "gpt", "assistant", "chatgpt", "bard", "bing" ->
            messages.add(new Message(Role.ASSISTANT, content));
        default ->
            throw new RecordError(
                "'"
                    + at
                    + "."
                    + roleField
                    + "' is '"
                    + r.asText()
                    + "'; expected human|gpt|system (ShareGPT) or user|assistant|system (OpenAI)");
      }
    }
    if (strict) {
      check(messages, listField);
    }
    return new ChatRecord(system, messages, origin);
  }

  private static ChatRecord alpaca(JsonNode n, String origin) throws RecordError {
    String instruction = optionalText(n, "instruction");
    if (instruction == null) {
      throw new RecordError("missing field 'instruction'");
    }
    String input = optionalText(n, "input");
    String output = optionalText(n, "output");
    // The usual Alpaca-to-chat conversion: the input, if any, follows the instruction after a blank
    // line.
    String user = input == null || input.isEmpty() ? instruction : instruction + "\n\n" + input;
    List<Message> messages = List.of(Message.user(user), Message.assistant(output));
    return new ChatRecord(optionalText(n, "system"), messages, origin);
  }

  /** Alternation, start and open-turn rules. */
  private static void check(List<Message> messages, String listField) throws RecordError {
    if (messages.isEmpty()) {
      throw new RecordError(
          "field '" + listField + "' holds only a system message; add a user" + " turn");
    }
    Role expected = Role.USER;
    for (int i = 0; i < messages.size(); i++) {
      Message m = messages.get(i);
      if (m.role() != expected) {
        throw new RecordError(
            "message "
                + (i + 1)
                + " in '"
                + listField
                + "' is "
                + m.role().name().toLowerCase(Locale.ROOT)
                + " but "
                + expected.name().toLowerCase(Locale.ROOT)
                + " was expected; turns must alternate user/assistant,"
                + " starting with user");
      }
      if (m.content() == null && i != messages.size() - 1) {
        throw new RecordError(
            "message "
                + (i + 1)
                + " in '"
                + listField
                + "' has no content;"
                + " only the last turn may be open (null)");
      }
      expected = expected.other();
    }
  }

  private static String optionalText(JsonNode n, String field) throws RecordError {
    JsonNode v = n.get(field);
    if (v == null || v.isNull()) {
      return null;
    }
    if (!v.isTextual()) {
      throw new RecordError("field '" + field + "' must be a string, got " + type(v));
    }
    return v.asText();
  }

  static String type(JsonNode n) {
    return n == null ? "nothing" : n.getNodeType().name().toLowerCase(Locale.ROOT);
  }
}
