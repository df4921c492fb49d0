package moetune.templates;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

/** FastChat's corner cases: empty contents, open turns, verbatim text, system overrides. */
class RenderEdgeCaseTest {
  static final TemplateRegistry REG = TemplateRegistry.builtin();
  static final String VICUNA_SYS = REG.get("vicuna_v1.1").systemMessage();

  @Test
  void emptyContentRendersLikeAnOpenTurn() {
    // FastChat tests `if message:`, so "" takes the open-turn branch: "USER:" with no space.
    assertEquals(
        VICUNA_SYS + " USER:ASSISTANT: x</s>",
        REG.get("vicuna_v1.1").prompt(null, List.of(Message.user(""), Message.assistant("x"))));
    assertEquals(
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
            + "<|im_start|>assistant\n",
        REG.get("chatml").prompt(null, List.of(Message.user(""), Message.assistant(""))));
  }

  @Test
  void contentIsVerbatim() {
    String odd = "  h\u00e9llo \ud83d\ude00\r\nline </s> <|im_end|> [INST] {system_message} ";
    assertEquals(
        VICUNA_SYS + " USER: " + odd + " ASSISTANT:  ok </s>",
        REG.get("vicuna_v1.1").prompt(null, List.of(Message.user(odd), Message.assistant(" ok "))));
    assertEquals(
        "<|im_start|>system\n{x} }{<|im_end|>\n<|im_start|>user\n"
            + odd
            + "<|im_end|>\n<|im_start|>assistant\n",
        REG.get("chatml").prompt("{x} }{", List.of(Message.user(odd), Message.assistant(null))));
  }

  @Test
  void llama2Quirks() {
    // An open first turn appends the [INST] tag after the "[INST] " prefix.
    assertEquals("[INST] [INST]", REG.get("mistral").prompt(null, List.of(Message.user(null))));
    // The first filled message follows the prefix with no tag, then one space.
    assertEquals(
        "[INST] q [/INST]",
        REG.get("mistral").prompt(null, List.of(Message.user("q"), Message.assistant(null))));
    // An empty system override on a template whose default is non-empty drops the <<SYS>> block.
    assertEquals(
        "[INST] q [/INST] a </s><s>",
        REG.get("airoboros_v3").prompt("", List.of(Message.user("q"), Message.assistant("a"))));
  }

  @Test
  void emptyConversationIsTheSystemPrompt() {
    assertEquals(VICUNA_SYS + " ", REG.get("vicuna_v1.1").prompt(null, List.of()));
    assertEquals("[INST] ", REG.get("llama-2").prompt(null, List.of()));
    assertEquals("", REG.get("tulu").prompt(null, List.of()));
  }

  @Test
  void builtinTextsAreFastChatsByteForByte() throws Exception {
    // SHA-256 of the UTF-8 strings in fastchat/conversation.py, computed from its source.
    ConversationTemplate one = REG.get("one_shot");
    assertEquals(
        "Got any creative ideas for a 10 year old\u2019s birthday?",
        one.examples().get(0).content());
    assertEquals(
        "5905c137294a99342732a207639cd4a87b471470cf5c2b45c227e8635a9f4d49",
        sha(one.examples().get(1).content()));
    assertEquals(
        "35a84a0440f9195c69626ea32b9c1579baa7912719cb9e526dcebc87d5c00108",
        sha(REG.get("Nous-Hermes-2-Mixtral-8x7B-DPO").systemMessage()));
    assertEquals(
        "cbf9b32d0e1994fedf58c6513314974488c631da10beb95ba0664816325ede0f",
        sha(REG.get("mpt-7b-chat").systemMessage()));
  }

  @Test
  void pythonFormatSemantics() {
    assertEquals("a{b}c", PythonFormat.formatSystem("a{{b}}{system_message}", "c"));
    assertEquals(
        "{system_message}", PythonFormat.formatSystem("{system_message}", "{system_message}"));
    assertThrows(IllegalArgumentException.class, () -> PythonFormat.formatSystem("{x}", ""));
    assertThrows(IllegalArgumentException.class, () -> PythonFormat.formatSystem("a}", ""));
    assertThrows(IllegalArgumentException.class, () -> PythonFormat.formatSystem("{a", ""));
  }

  @Test
  void unknownTemplateListsKnownNames() {
    TemplateException e = assertThrows(TemplateException.class, () -> REG.get("vicuna"));
    assertTrue(e.getMessage().contains("vicuna_v1.1"), e.getMessage());
  }

  private static String sha(String s) throws Exception {
    return HexFormat.of()
        .formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
  }
}
