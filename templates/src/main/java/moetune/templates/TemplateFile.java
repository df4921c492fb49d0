package moetune.templates;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads user templates from JSON, with FastChat's field names and defaults:
 *
 * <pre>{@code
 * {"name": "my-chat", "system_template": "<|system|>{system_message}", "system_message": "",
 *  "roles": ["<|user|>", "<|bot|>"], "sep_style": "ADD_NEW_LINE_SINGLE", "sep": "\n",
 *  "sep2": null, "stop_str": null, "messages": [["<|user|>", "hi"], ["<|bot|>", "hello"]],
 *  "offset": 2}
 * }</pre>
 *
 * The file holds one such object, an array of them, or {@code {"templates": [...]}}. Defaults are
 * FastChat's: system_template {@code "{system_message}"}, system_message "", roles ["USER",
 * "ASSISTANT"], sep_style ADD_COLON_SINGLE, sep "\n". Example messages are [role name, text] pairs
 * (FastChat's form) or {"role": "user"|"assistant", "content"} objects. Unknown fields are errors,
 * so a typo never silently falls back to a default.
 */
public final class TemplateFile {
  private static final Set<String> FIELDS =
      Set.of(
          "name",
          "system_template",
          "system_message",
          "roles",
          "sep_style",
          "sep",
          "sep2",
          "stop_str",
          "messages",
          "offset",
          "stop_token_ids");

  private TemplateFile() {}

  /** Parses every template in {@code file}; errors name the file, the template and the field. */
  public static List<ConversationTemplate> read(Path file) {
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(Files.readString(file));
    } catch (IOException e) {
      throw new TemplateException(file + ": cannot read template JSON: " + oneLine(e));
    }
    List<JsonNode> nodes = new ArrayList<>();
    if (root != null && root.isObject() && root.has("templates")) {
      root = root.get("templates");
    }
    if (root != null && root.isArray()) {
      root.forEach(nodes::add);
    } else if (root != null && root.isObject()) {
      nodes.add(root);
    } else {
      throw new TemplateException(file + ": expected a template object or an array of them");
    }
    List<ConversationTemplate> out = new ArrayList<>();
    for (int i = 0; i < nodes.size(); i++) {
      out.add(parse(file, i, nodes.get(i)));
    }
    return out;
  }

  private static ConversationTemplate parse(Path file, int index, JsonNode n) {
    String where = file + ": template #" + (index + 1);
    if (!n.isObject()) {
      throw new TemplateException(where + ": expected a JSON object");
    }
    for (Iterator<Map.Entry<String, JsonNode>> it = n.properties().iterator(); it.hasNext(); ) {
      String key = it.next().getKey();
      if (!FIELDS.contains(key)) {
        throw new TemplateException(
            where
                + ": unknown field '"
                + key
                + "' (known: "
                + String.join(", ", FIELDS.stream().sorted().toList())
                + ")");
      }
    }
    String name = text(n, "name", null, where);
    if (name == null || name.isBlank()) {
      throw new TemplateException(where + ": field 'name' is required");
    }
    where = file + ": template '" + name + "'";
    List<String> roles = List.of("USER", "ASSISTANT");
    if (n.hasNonNull("roles")) {
      JsonNode r = n.get("roles");
      if (!r.isArray() || r.size() != 2 || !r.get(0).isTextual() || !r.get(1).isTextual()) {
        throw new TemplateException(where + ": field 'roles' must be an array of 2 strings");
      }
      roles = List.of(r.get(0).asText(), r.get(1).asText());
    }
    SeparatorStyle style;
    String styleName = text(n, "sep_style", "ADD_COLON_SINGLE", where);
    try {
      style = SeparatorStyle.valueOf(styleName);
    } catch (IllegalArgumentException e) {
      throw new TemplateException(
          where
              + ": field 'sep_style': unknown style '"
              + styleName
              + "' (supported: "
              + List.of(SeparatorStyle.values())
              + ")");
    }
    List<Message> examples = examples(n.get("messages"), roles, where);
    int offset = n.hasNonNull("offset") ? intField(n, "offset", where) : 0;
    try {
      return new ConversationTemplate(
          name,
          text(n, "system_template", "{system_message}", where),
          text(n, "system_message", "", where),
          roles,
          style,
          text(n, "sep", "\n", where),
          text(n, "sep2", null, where),
          text(n, "stop_str", null, where),
          examples,
          offset);
    } catch (TemplateException e) {
      throw new TemplateException(file + ": " + e.getMessage());
    }
  }

  private static List<Message> examples(JsonNode m, List<String> roles, String where) {
    List<Message> out = new ArrayList<>();
    if (m == null || m.isNull()) {
      return out;
    }
    if (!m.isArray()) {
      throw new TemplateException(where + ": field 'messages' must be an array");
    }
    for (int i = 0; i < m.size(); i++) {
      JsonNode e = m.get(i);
      String at = where + ": messages[" + i + "]";
      String role;
      JsonNode content;
      if (e.isArray() && e.size() == 2 && e.get(0).isTextual()) {
        role = e.get(0).asText();
        content = e.get(1);
      } else if (e.isObject() && e.path("role").isTextual()) {
        role = e.get("role").asText();
        content = e.get("content");
      } else {
        throw new TemplateException(at + ": expected [role, text] or {\"role\", \"content\"}");
      }
      Role r;
      if (role.equals(roles.get(0)) || role.equals("user")) {
        r = Role.USER;
      } else if (role.equals(roles.get(1)) || role.equals("assistant")) {
        r = Role.ASSISTANT;
      } else {
        throw new TemplateException(
            at + ": role '" + role + "' is neither " + roles + " nor user/assistant");
      }
      if (content != null && !content.isNull() && !content.isTextual()) {
        throw new TemplateException(at + ": content must be a string or null");
      }
      out.add(new Message(r, content == null || content.isNull() ? null : content.asText()));
    }
    return out;
  }

  private static String text(JsonNode n, String field, String dflt, String where) {
    JsonNode v = n.get(field);
    if (v == null || v.isNull()) {
      return dflt;
    }
    if (!v.isTextual()) {
      throw new TemplateException(
          where
              + ": field '"
              + field
              + "' must be a string, got "
              + v.getNodeType().name().toLowerCase());
    }
    return v.asText();
  }

  private static int intField(JsonNode n, String field, String where) {
    JsonNode v = n.get(field);
    if (!v.canConvertToInt() || !v.isIntegralNumber() || v.asInt() < 0) {
      throw new TemplateException(where + ": field '" + field + "' must be a non-negative integer");
    }
    return v.asInt();
  }

  static String oneLine(Exception e) {
    String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    int nl = m.indexOf('\n');
    return nl < 0 ? m : m.substring(0, nl);
  }
}
