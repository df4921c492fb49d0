package moetune.templates.hf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import moetune.templates.ConversationTemplate;
import moetune.templates.FastChatJinja;
import moetune.templates.Message;
import moetune.templates.Role;
import moetune.templates.TemplateRegistry;
import org.junit.jupiter.api.Test;

/**
 * The chat_template an export writes for a FastChat template, rendered with the {@code hf} engine,
 * gives FastChat's text for every built-in template: with and without a system message, one and
 * several turns, an open assistant turn (add_generation_prompt), quotes, backslashes and newlines
 * in the messages. (tools/check_exported_chat_template.py checks the same with transformers.)
 */
class FastChatJinjaTest {
  static final List<List<Message>> CHATS =
      List.of(
          List.of(Message.user("Hi"), Message.assistant("Hello!")),
          List.of(
              Message.user("What's 'x' \\ \"y\"?\nTwo lines"),
              Message.assistant("It's {{ 1 }} & {% no %}"),
              Message.user("Thanks")),
          List.of(
              Message.user("Q1"),
              Message.assistant("A1"),
              Message.user("Q2"),
              Message.assistant("A2")));

  @Test
  void everyBuiltinTemplateRendersAsFastChat() {
    int checked = 0;
    for (ConversationTemplate t : TemplateRegistry.builtin().all()) {
      for (boolean bos : new boolean[] {false, true}) {
        HfChatTemplate hf =
            new HfChatTemplate(FastChatJinja.of(t, bos), Map.of("bos_token", "<s>"), t.name());
        for (String system : new String[] {null, "Be brief, 'friend'.", ""}) {
          for (List<Message> chat : CHATS) {
            boolean open = chat.getLast().role() == Role.USER;
            List<Message> fc = new ArrayList<>(chat);
            if (open) {
              fc.add(new Message(Role.ASSISTANT, null));
            }
            String want = (bos ? "<s>" : "") + t.prompt(system, fc);
            String got = hf.apply(HfChatTemplate.messages(system, chat), null, open);
            assertEquals(want, got, t.name() + " system=" + system + " chat=" + chat);
            checked++;
          }
        }
      }
    }
    assertTrue(checked >= 14 * 18, "checked " + checked);
  }
}
