package moetune.templates;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** User templates from JSON: FastChat's fields and defaults, and one-line errors. */
class TemplateFileTest {
  @TempDir Path dir;

  @Test
  void loadsFastChatShapedTemplateWithExamples() throws Exception {
    Path f = dir.resolve("t.json");
    Files.writeString(
        f,
        """
        {"templates": [{"name": "mine", "system_template": "<sys>{system_message}</sys>",
          "system_message": "be nice", "roles": ["<u>", "<a>"], "sep_style": "NO_COLON_TWO",
          "sep": "|", "sep2": "<end>", "messages": [["<u>", "ex q"], ["<a>", "ex a"]],
          "offset": 2}]}
        """);
    TemplateRegistry reg = TemplateRegistry.builtin().with(f);
    ConversationTemplate t = reg.get("mine");
    // NO_COLON_TWO: role + message + seps[i % 2]; i counts the examples.
    assertEquals(
        "<sys>be nice</sys><u>ex q|<a>ex a<end><u>q|<a>",
        t.prompt(null, List.of(Message.user("q"), Message.assistant(null))));
  }

  @Test
  void defaultsAreFastChats() throws Exception {
    Path f = dir.resolve("d.json");
    Files.writeString(f, "{\"name\": \"plain\"}");
    ConversationTemplate t = TemplateRegistry.builtin().with(f).get("plain");
    assertEquals(
        "\nUSER: hi\nASSISTANT:",
        t.prompt(null, List.of(Message.user("hi"), Message.assistant(null))));
  }

  @Test
  void errorsNameFileAndField() throws Exception {
    assertError("{\"name\": \"x\", \"sep_style\": \"LLAMA3\"}", "sep_style");
    assertError("{\"name\": \"x\", \"sep_style\": \"ADD_COLON_TWO\"}", "needs sep2");
    assertError("{\"name\": \"x\", \"sep\": 3}", "'sep' must be a string");
    assertError("{\"name\": \"x\", \"sepp\": \"\\n\"}", "unknown field 'sepp'");
    assertError("{\"name\": \"x\", \"system_template\": \"{sys}\"}", "system_template");
    assertError("{\"name\": \"x\", \"roles\": [\"a\"]}", "'roles'");
    assertError("{\"name\": \"vicuna_v1.1\"}", "already registered");
    assertError("{\"name\": ", "cannot read template JSON");
    assertError("[1]", "expected a JSON object");
  }

  private void assertError(String json, String needle) throws Exception {
    Path f = dir.resolve("bad.json");
    Files.writeString(f, json);
    TemplateException e =
        assertThrows(TemplateException.class, () -> TemplateRegistry.builtin().with(f));
    assertTrue(
        e.getMessage().contains(needle) && e.getMessage().contains(f.toString()), e.getMessage());
    assertTrue(!e.getMessage().contains("\n"), "one line: " + e.getMessage());
  }
}
