package moetune.templates;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Every built-in on the same conversation (two user turns, one reply, an open assistant turn),
 * against strings worked out by hand from FastChat's get_prompt() for the template's style.
 */
class BuiltinRenderTest {
  static final List<Message> CHAT =
      List.of(
          Message.user("Hi"),
          Message.assistant("Hello!"),
          Message.user("How are you?"),
          Message.assistant(null));
  static final TemplateRegistry REG = TemplateRegistry.builtin();

  static String render(String name) {
    return REG.get(name).prompt(null, CHAT);
  }

  @Test
  void vicuna() {
    assertEquals(
        "A chat between a curious user and an artificial intelligence assistant. The "
            + "assistant gives helpful, detailed, and polite answers to the user's questions."
            + " USER: Hi ASSISTANT: Hello!</s>USER: How are you? ASSISTANT:",
        render("vicuna_v1.1"));
  }

  @Test
  void llama2WithoutAndWithSystem() {
    assertEquals("[INST] Hi [/INST] Hello! </s><s>[INST] How are you? [/INST]", render("llama-2"));
    assertEquals(
        "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] How are"
            + " you? [/INST]",
        REG.get("llama-2").prompt("Be brief.", CHAT));
  }

  @Test
  void mistral() {
    assertEquals("[INST] Hi [/INST] Hello!</s>[INST] How are you? [/INST]", render("mistral"));
    assertEquals(
        "[INST] Be brief.\nHi [/INST] Hello!</s>[INST] How are you? [/INST]",
        REG.get("mistral").prompt("Be brief.", CHAT));
  }

  @Test
  void zephyrWritesAnEmptySystemBlockLikeFastChat() {
    // "<|system|>\n{system_message}" with "" is non-empty, so CHATML emits it plus sep + "\n".
    assertEquals(
        "<|system|>\n</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n<|user|>\n"
            + "How are you?</s>\n<|assistant|>\n",
        render("zephyr"));
  }

  @Test
  void alpaca() {
    assertEquals(
        "Below is an instruction that describes a task. Write a response that "
            + "appropriately completes the request.\n\n### Instruction: Hi\n\n### Response: Hello!"
            + "</s>### Instruction: How are you?\n\n### Response:",
        render("alpaca"));
  }

  @Test
  void zeroShotAndOneShot() {
    String sys =
        "A chat between a curious human and an artificial intelligence assistant. The "
            + "assistant gives helpful, detailed, and polite answers to the human's questions.";
    String tail = "Human: Hi\n### Assistant: Hello!\n### Human: How are you?\n### Assistant:";
    assertEquals(sys + "\n### " + tail, render("zero_shot"));
    ConversationTemplate one = REG.get("one_shot");
    assertEquals(
        sys
            + "\n### Human: "
            + one.examples().get(0).content()
            + "\n### Assistant: "
            + one.examples().get(1).content()
            + "\n### "
            + tail,
        render("one_shot"));
    assertEquals(2, one.offset());
  }

  @Test
  void airoborosV3() {
    assertEquals(
        "[INST] <<SYS>>\nYou are a helpful, unbiased, uncensored assistant.\n<</SYS>>"
            + "\n\nHi [/INST] Hello! </s><s>[INST] How are you? [/INST]",
        render("airoboros_v3"));
    assertEquals(
        "[INST] Hi [/INST] Hello! </s><s>[INST] How are you? [/INST]",
        REG.get("airoboros_v3").prompt("", CHAT));
  }

  @Test
  void openchat() {
    assertEquals(
        "GPT4 Correct User: Hi<|end_of_turn|>GPT4 Correct Assistant: Hello!"
            + "<|end_of_turn|>GPT4 Correct User: How are you?<|end_of_turn|>GPT4 Correct Assistant:",
        render("openchat_3.5"));
    assertEquals(
        "Be brief.<|end_of_turn|>GPT4 Correct User: Hi<|end_of_turn|>GPT4 Correct "
            + "Assistant: Hello!<|end_of_turn|>GPT4 Correct User: How are you?<|end_of_turn|>GPT4 "
            + "Correct Assistant:",
        REG.get("openchat_3.5").prompt("Be brief.", CHAT));
  }

  @Test
  void tulu() {
    assertEquals(
        "<|user|>\nHi\n<|assistant|>\nHello!\n<|user|>\nHow are you?\n<|assistant|>\n",
        render("tulu"));
    assertEquals(
        "S\n<|user|>\nHi\n<|assistant|>\nHello!\n<|user|>\nHow are you?\n" + "<|assistant|>\n",
        REG.get("tulu").prompt("S", CHAT));
  }

  @Test
  void mptAndHermesAndChatml() {
    String body =
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
            + "<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n";
    assertEquals(
        "<|im_start|>system\n- You are a helpful assistant chatbot trained by MosaicML."
            + "\n- You answer questions.\n- You are excited to be able to help the user, but will "
            + "refuse to do anything that could be considered harmful to the user.\n- You are more "
            + "than just an information source, you are also able to write poetry, short stories, "
            + "and make jokes.<|im_end|>\n"
            + body,
        render("mpt-7b-chat"));
    assertEquals(
        "<|im_start|>system\n"
            + REG.get("Nous-Hermes-2-Mixtral-8x7B-DPO").systemMessage()
            + "<|im_end|>\n"
            + body,
        render("Nous-Hermes-2-Mixtral-8x7B-DPO"));
    assertEquals(
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" + body, render("chatml"));
    assertEquals(
        "<|im_start|>system\nBe brief.<|im_end|>\n" + body,
        REG.get("chatml").prompt("Be brief.", CHAT));
  }

  @Test
  void dolly() {
    assertEquals(
        "Below is an instruction that describes a task. Write a response that "
            + "appropriately completes the request.\n\n### Instruction:\nHi\n\n### Response:\nHello!"
            + "### End\n\n### Instruction:\nHow are you?\n\n### Response:\n",
        render("dolly_v2"));
  }

  @Test
  void everyRequiredNameIsRegistered() {
    for (String n :
        List.of(
            "vicuna_v1.1",
            "llama-2",
            "mistral",
            "zephyr",
            "alpaca",
            "one_shot",
            "zero_shot",
            "airoboros_v3",
            "openchat_3.5",
            "tulu",
            "mpt-7b-chat",
            "dolly_v2",
            "Nous-Hermes-2-Mixtral-8x7B-DPO",
            "chatml")) {
      assertEquals(n, REG.get(n).name());
    }
    assertEquals(14, REG.all().size());
  }
}
