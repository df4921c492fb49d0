package moetune.templates;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The role tags of rendered characters: which text is assistant output and what ends it. */
class SpanTest {
  static final TemplateRegistry REG = TemplateRegistry.builtin();
  static final List<Message> CHAT =
      List.of(
          Message.user("Hi"),
          Message.assistant("Hello!"),
          Message.user("Bye"),
          Message.assistant("Ciao"));

  @Test
  void vicunaSpansInOrder() {
    RenderedPrompt r = REG.get("vicuna_v1.1").render("S", CHAT);
    assertEquals("S USER: Hi ASSISTANT: Hello!</s>USER: Bye ASSISTANT: Ciao</s>", r.text());
    StringBuilder b = new StringBuilder();
    for (Span s : r.spans()) {
      b.append(s.kind()).append(s.message()).append('[').append(r.text(s)).append(']');
    }
    assertEquals(
        "SYSTEM-1[S]TEMPLATE-1[ ]TEMPLATE0[USER: ]USER0[Hi]TEMPLATE0[ ]"
            + "TEMPLATE1[ASSISTANT: ]ASSISTANT1[Hello!]END_OF_REPLY1[</s>]TEMPLATE2[USER: ]USER2[Bye]"
            + "TEMPLATE2[ ]TEMPLATE3[ASSISTANT: ]ASSISTANT3[Ciao]END_OF_REPLY3[</s>]",
        b.toString());
  }

  @Test
  void endOfReplyPerStyle() {
    assertEquals("</s></s>", REG.get("mistral").render(null, CHAT).textOf(SpanKind.END_OF_REPLY));
    assertEquals(
        " </s><s> </s><s>", REG.get("llama-2").render(null, CHAT).textOf(SpanKind.END_OF_REPLY));
    assertEquals(
        "<|im_end|><|im_end|>", REG.get("chatml").render(null, CHAT).textOf(SpanKind.END_OF_REPLY));
    assertEquals(
        "### End### End", REG.get("dolly_v2").render(null, CHAT).textOf(SpanKind.END_OF_REPLY));
    assertEquals(
        "<|end_of_turn|><|end_of_turn|>",
        REG.get("openchat_3.5").render(null, CHAT).textOf(SpanKind.END_OF_REPLY));
    assertEquals(
        "\n### \n### ", REG.get("zero_shot").render(null, CHAT).textOf(SpanKind.END_OF_REPLY));
  }

  @Test
  void contentKindsCarryExactlyTheMessages() {
    for (ConversationTemplate t : REG.all()) {
      RenderedPrompt r = t.render(null, CHAT);
      assertEquals("Hello!Ciao", r.textOf(SpanKind.ASSISTANT), t.name());
      assertEquals("HiBye", r.textOf(SpanKind.USER), t.name());
    }
  }

  @Test
  void examplesAreTaggedAsExamples() {
    RenderedPrompt r = REG.get("one_shot").render(null, CHAT);
    String ex = r.textOf(SpanKind.EXAMPLE);
    ConversationTemplate t = REG.get("one_shot");
    assertEquals(
        "Human: "
            + t.examples().get(0).content()
            + "\n### Assistant: "
            + t.examples().get(1).content()
            + "\n### ",
        ex);
  }
}
