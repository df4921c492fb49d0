package moetune.datasets;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import moetune.templates.hf.HfChatTemplate;

/**
 * Conversations as a chat template sees them ({@code apply_chat_template}'s arguments), read from
 * the files {@code template render} takes: {@code {"system": str|null, "messages": [...], "tools":
 * [...]}} lines whose messages are passed on whole (so {@code tool_calls}, {@code tool} turns and
 * {@code tool_call_id} reach the template), or any record shape the dataset readers know (ShareGPT,
 * Alpaca, ...). A last assistant message with null content means {@code
 * add_generation_prompt=True}.
 */
public final class ChatRequests {
  private ChatRequests() {}

  /** One conversation: the arguments of {@code apply_chat_template}, and file:line. */
  public record Request(
      List<Map<String, Object>> messages,
      List<Object> tools,
      boolean addGenerationPrompt,
      String origin) {}

  public static List<Request> read(Path file) {
    List<Request> out = new ArrayList<>();
    for (JsonLines.Entry e : JsonLines.read(file)) {
      String origin = file.getFileName() + ":" + e.line();
      if (e.parseError() != null) {
        throw new DatasetException(file + ":" + e.line() + ": " + e.parseError());
      }
      JsonNode n = e.node();
      JsonNode msgs = n.get("messages");
      if (msgs != null && msgs.isArray() && allHaveRoles(msgs)) {
        out.add(raw(n, msgs, origin));
      } else {
        ChatRecord r;
        try {
          r = RecordParser.parse(n, DatasetFormat.AUTO, origin, false);
        } catch (RecordParser.RecordError err) {
          throw new DatasetException(file + ":" + e.line() + ": " + err.getMessage());
        }
        List<Map<String, Object>> maps = HfChatTemplate.messages(r.system(), r.messages());
        out.add(open(maps, null, origin));
      }
    }
    return out;
  }

  private static boolean allHaveRoles(JsonNode msgs) {
    for (JsonNode m : msgs) {
      if (!m.isObject() || !m.path("role").isTextual()) {
        return false;
      }
    }
    return true;
  }

  @SuppressWarnings("unchecked")
  private static Request raw(JsonNode n, JsonNode msgs, String origin) {
    List<Map<String, Object>> maps = new ArrayList<>();
    JsonNode system = n.get("system");
    if (system != null && system.isTextual()) {
      Map<String, Object> s = new LinkedHashMap<>();
      s.put("role", "system");
      s.put("content", system.asText());
      maps.add(s);
    }
    for (JsonNode m : msgs) {
      maps.add(JsonLines.MAPPER.convertValue(m, LinkedHashMap.class));
    }
    JsonNode tools = n.get("tools");
    List<Object> t =
        tools != null && tools.isArray() ? JsonLines.MAPPER.convertValue(tools, List.class) : null;
    return open(maps, t, origin);
  }

  /** Drops a last open assistant turn and asks for the generation prompt instead. */
  private static Request open(List<Map<String, Object>> maps, List<Object> tools, String origin) {
    if (!maps.isEmpty()) {
      Map<String, Object> last = maps.getLast();
      if ("assistant".equals(last.get("role"))
          && last.get("content") == null
          && last.get("tool_calls") == null) {
        return new Request(maps.subList(0, maps.size() - 1), tools, true, origin);
      }
    }
    return new Request(maps, tools, false, origin);
  }
}
