package moetune.datasets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import moetune.templates.Message;
import moetune.templates.Role;
import moetune.templates.TemplateException;
import moetune.templates.hf.HfChatTemplate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code hf} template through the encoder on the fixture's Mistral tokenizer: BOS once (the
 * template writes it, so the post-processor must not), and labels on exactly the replies and their
 * end-of-turn text, by growing prefixes and by {% generation %} blocks.
 */
class HfChatEncoderTest {
  static final String MIXTRAL =
      "{%- if messages[0]['role'] == 'system' %}\n"
          + "    {%- set system_message = messages[0]['content'] %}\n"
          + "    {%- set loop_messages = messages[1:] %}\n"
          + "{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n\n"
          + "{{- bos_token }}\n{%- for message in loop_messages %}\n"
          + "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n"
          + "        {{- raise_exception('roles must alternate') }}\n    {%- endif %}\n"
          + "    {%- if message['role'] == 'user' %}\n"
          + "        {%- if loop.first and system_message is defined %}\n"
          + "            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n"
          + "        {%- else %}\n"
          + "            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n"
          + "        {%- endif %}\n"
          + "    {%- elif message['role'] == 'assistant' %}\n"
          + "        {{- ' ' + message['content'] + eos_token}}\n"
          + "    {%- endif %}\n{%- endfor %}\n";

  static final List<Message> CHAT =
      List.of(
          Message.user("What is 2+2?"),
          Message.assistant("4"),
          Message.user("And 3+3?"),
          Message.assistant("6"));

  @TempDir Path dir;

  private HfChatTemplate template(String source) {
    return new HfChatTemplate(source, Map.of("bos_token", "<s>", "eos_token", "</s>"), "t");
  }

  static String masked(ChatEncoder enc, ChatRecord r) {
    EncodedChat e = enc.encode(r);
    List<TokenView> views = enc.inspect(r);
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < e.length(); i++) {
      b.append(i == 0 ? "" : " ")
          .append(views.get(i).token())
          .append(e.labels()[i] == ChatEncoder.IGNORE ? "" : "*");
    }
    return b.toString();
  }

  @Test
  void prefixRenderingTrainsRepliesAndEosWithOneBos() {
    ChatEncoder enc =
        new ChatEncoder(Fixtures.mistral(), template(MIXTRAL), LabelMode.ALL_ASSISTANT, 4096);
    ChatRecord r = new ChatRecord(null, CHAT, "t:1");
    assertEquals(
        // the template writes " [INST] " after BOS: the legacy SentencePiece tokenizer gives "▁ ▁["
        "<s> ▁ ▁[ INST ] ▁What ▁is ▁ 2 + 2 ? ▁[ / INST ] ▁* 4* </s>* ▁ ▁[ INST ] ▁And ▁ 3 + 3"
            + " ? ▁[ / INST ] ▁* 6* </s>*",
        masked(enc, r));
    ChatEncoder last =
        new ChatEncoder(Fixtures.mistral(), template(MIXTRAL), LabelMode.LAST_TURN, 4096);
    assertEquals(
        "<s> ▁ ▁[ INST ] ▁What ▁is ▁ 2 + 2 ? ▁[ / INST ] ▁ 4 </s> ▁ ▁[ INST ] ▁And ▁ 3 + 3"
            + " ? ▁[ / INST ] ▁* 6* </s>*",
        masked(last, r));
  }

  @Test
  void generationBlocksMarkTheTrainedText() {
    String chatml =
        "{%- for m in messages %}{%- if m['role'] == 'assistant' %}{{- '<|im_start|>assistant\\n'"
            + " }}{% generation %}{{ m['content'] + eos_token }}{% endgeneration %}{{- '\\n' }}"
            + "{%- else %}{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n'"
            + " }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}"
            + "{{- '<|im_start|>assistant\\n' }}{%- endif %}";
    HfChatTemplate t = template(chatml);
    assertTrue(t.tracksGeneration());
    var p = t.render("Sys", List.of(Message.user("Hi"), Message.assistant("Yo")));
    assertEquals(
        "<|im_start|>system\nSys<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            + "<|im_start|>assistant\nYo</s>\n",
        p.text());
    assertEquals("Yo</s>", p.textOf(moetune.templates.SpanKind.ASSISTANT));
    assertEquals("Sys", p.textOf(moetune.templates.SpanKind.SYSTEM));
    assertEquals("Hi", p.textOf(moetune.templates.SpanKind.USER));
  }

  @Test
  void openLastTurnAsksForTheGenerationPrompt() {
    String llama3 =
        "{% for message in messages %}{{ '<|start_header_id|>' + message['role']"
            + " + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
            + "{% endfor %}{% if add_generation_prompt %}"
            + "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
    var p =
        template(llama3)
            .render(null, List.of(Message.user(" Hi "), new Message(Role.ASSISTANT, null)));
    assertEquals(
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\n",
        p.text());
  }

  @Test
  void templatesThatRewriteEarlierTurnsAreRefusedForTraining() {
    // Mistral v0.3 moves the system message into the last user turn.
    String v3 =
        "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}"
            + "{% if loop.last %}[INST] SYS {{ m.content }}[/INST]{% else %}[INST] {{ m.content"
            + " }}[/INST]{% endif %}{% else %} {{ m.content }}{{ eos_token }}{% endif %}{% endfor"
            + " %}";
    ChatEncoder enc =
        new ChatEncoder(Fixtures.mistral(), template(v3), LabelMode.ALL_ASSISTANT, 4096);
    TemplateException e =
        assertThrows(TemplateException.class, () -> enc.encode(new ChatRecord(null, CHAT, "t:1")));
    assertTrue(e.getMessage().contains("generation"), e.getMessage());
  }

  @Test
  void modelDirectoryTemplateAndJinjaFile() throws Exception {
    Path model = Files.createDirectories(dir.resolve("m"));
    Files.copy(Fixtures.tinyMixtral().resolve("tokenizer.json"), model.resolve("tokenizer.json"));
    var mapper = new com.fasterxml.jackson.databind.ObjectMapper();
    var tc = mapper.createObjectNode().put("bos_token", "<s>").put("eos_token", "</s>");
    tc.put("chat_template", MIXTRAL);
    Files.writeString(model.resolve("tokenizer_config.json"), mapper.writeValueAsString(tc));
    var reg = moetune.templates.TemplateRegistry.builtin();
    var f = reg.format("hf", model);
    assertTrue(reg.contains("tokenizer_default"), "axolotl's name for the model's template");
    assertEquals(
        f.render(null, List.of(Message.user("Q"))).text(),
        reg.format("tokenizer_default", model).render(null, List.of(Message.user("Q"))).text());
    assertEquals(
        "<s> [INST] Q [/INST] A</s>",
        f.render(null, List.of(Message.user("Q"), Message.assistant("A"))).text());
    Path jinja = Files.writeString(dir.resolve("mine.jinja"), "{{ bos_token }}X\n");
    assertEquals("<s>X", reg.format(jinja.toString(), model).render(null, List.of()).text());
    TemplateException missing = assertThrows(TemplateException.class, () -> reg.format("hf", dir));
    assertTrue(missing.getMessage().contains("tokenizer_config.json"), missing.getMessage());
  }
}
