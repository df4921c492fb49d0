package moetune.templates;

import java.util.ArrayList;
import java.util.List;

/**
 * Writes one prompt, piece by piece, in the order and with the text of FastChat's {@code
 * Conversation.get_prompt()} for each {@link SeparatorStyle}, tagging every piece with its {@link
 * SpanKind}. The text must stay byte-identical to FastChat; the kinds are moetune's addition.
 * Message index {@code i} counts the template's examples too, as FastChat's {@code
 * enumerate(self.messages)} does (it picks {@code sep} vs {@code sep2} and the LLaMA-2 tags).
 */
final class PromptRenderer {
  private final ConversationTemplate t;
  private final String systemMessage;
  private final int exampleCount;
  private final StringBuilder text = new StringBuilder();
  private final List<Span> spans = new ArrayList<>();

  PromptRenderer(ConversationTemplate template, String systemMessage, int exampleCount) {
    this.t = template;
    this.systemMessage = systemMessage;
    this.exampleCount = exampleCount;
  }

  RenderedPrompt render(List<Message> messages) {
    String system = PythonFormat.formatSystem(t.systemTemplate(), systemMessage);
    switch (t.sepStyle()) {
      case ADD_COLON_SINGLE, ADD_COLON_TWO, ADD_COLON_SPACE_SINGLE -> {
        put(SpanKind.SYSTEM, -1, system);
        put(SpanKind.TEMPLATE, -1, t.sep());
        String open = t.sepStyle() == SeparatorStyle.ADD_COLON_SPACE_SINGLE ? ": " : ":";
        for (int i = 0; i < messages.size(); i++) {
          turn(messages, i, ": ", open, sepAfter(i), "");
        }
      }
      case NO_COLON_SINGLE, NO_COLON_TWO -> {
        put(SpanKind.SYSTEM, -1, system);
        for (int i = 0; i < messages.size(); i++) {
          turn(messages, i, "", "", sepAfter(i), "");
        }
      }
      case ADD_NEW_LINE_SINGLE -> {
        if (!system.isEmpty()) {
          put(SpanKind.SYSTEM, -1, system);
          put(SpanKind.TEMPLATE, -1, t.sep());
        }
        for (int i = 0; i < messages.size(); i++) {
          turn(messages, i, "\n", "\n", t.sep(), "");
        }
      }
      case CHATML -> {
        if (!system.isEmpty()) {
          put(SpanKind.SYSTEM, -1, system);
          put(SpanKind.TEMPLATE, -1, t.sep() + "\n");
        }
        for (int i = 0; i < messages.size(); i++) {
          turn(messages, i, "\n", "\n", t.sep(), "\n");
        }
      }
      case DOLLY -> {
        put(SpanKind.SYSTEM, -1, system);
        for (int i = 0; i < messages.size(); i++) {
          turn(messages, i, ":\n", ":\n", sepAfter(i), i % 2 == 1 ? "\n\n" : "");
        }
      }
      case FALCON_CHAT -> {
        // FastChat tests the system *message* here, not the formatted prompt.
        if (!systemMessage.isEmpty()) {
          put(SpanKind.SYSTEM, -1, system);
          put(SpanKind.TEMPLATE, -1, t.sep());
        }
        for (int i = 0; i < messages.size(); i++) {
          turn(messages, i, ": ", ":", t.sep(), "");
        }
      }
      case LLAMA2 -> renderLlama2(messages, system);
    }
    return new RenderedPrompt(text.toString(), spans);
  }

  /**
   * LLaMA-2 layout: the tag is chosen by position ({@code roles[i % 2]}), not by the message's
   * role; the first message follows the system prompt (or {@code "[INST] "}) with no tag.
   */
  private void renderLlama2(List<Message> messages, String system) {
    if (!systemMessage.isEmpty()) {
      put(SpanKind.SYSTEM, -1, system);
    } else {
      put(SpanKind.TEMPLATE, -1, "[INST] ");
    }
    for (int i = 0; i < messages.size(); i++) {
      Message m = messages.get(i);
      String tag = t.roles().get(i % 2);
      int index = messageIndex(i);
      if (!m.filled()) {
        put(layout(i), index, tag);
      } else if (i == 0) {
        put(contentKind(m, i), index, m.content());
        put(sepKind(m, i), index, " ");
      } else {
        put(layout(i), index, tag + " ");
        put(contentKind(m, i), index, m.content());
        put(sepKind(m, i), index, sepAfter(i));
      }
    }
  }

  /**
   * One message in the common shape: {@code role + header + content + sep + tail} when filled,
   * {@code role + open} when not.
   */
  private void turn(
      List<Message> messages, int i, String header, String open, String sep, String tail) {
    Message m = messages.get(i);
    int index = messageIndex(i);
    String role = t.roleName(m.role());
    if (!m.filled()) {
      put(layout(i), index, role + open);
      return;
    }
    put(layout(i), index, role + header);
    put(contentKind(m, i), index, m.content());
    put(sepKind(m, i), index, sep);
    put(layout(i), index, tail);
  }

  /** {@code seps[i % 2]} of the two-separator styles; {@code sep} for the others. */
  private String sepAfter(int i) {
    return t.sepStyle().usesSep2() && i % 2 == 1 ? t.sep2() : t.sep();
  }

  /** The conversation's own message index, or -1 inside the template's examples. */
  private int messageIndex(int i) {
    return i < exampleCount ? -1 : i - exampleCount;
  }

  private SpanKind layout(int i) {
    return i < exampleCount ? SpanKind.EXAMPLE : SpanKind.TEMPLATE;
  }

  private SpanKind contentKind(Message m, int i) {
    if (i < exampleCount) {
      return SpanKind.EXAMPLE;
    }
    return m.role() == Role.USER ? SpanKind.USER : SpanKind.ASSISTANT;
  }

  private SpanKind sepKind(Message m, int i) {
    if (i < exampleCount) {
      return SpanKind.EXAMPLE;
    }
    return m.role() == Role.ASSISTANT ? SpanKind.END_OF_REPLY : SpanKind.TEMPLATE;
  }

  /** Appends a piece; empty pieces add nothing; a piece continuing the same span extends it. */
  private void put(SpanKind kind, int message, String piece) {
    if (piece.isEmpty()) {
      return;
    }
    int start = text.length();
    text.append(piece);
    int last = spans.size() - 1;
    if (last >= 0 && spans.get(last).kind() == kind && spans.get(last).message() == message) {
      Span prev = spans.get(last);
      spans.set(last, new Span(kind, prev.start(), text.length(), message));
    } else {
      spans.add(new Span(kind, start, text.length(), message));
    }
  }
}
