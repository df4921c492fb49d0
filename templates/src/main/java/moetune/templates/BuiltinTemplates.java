package moetune.templates;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The templates moetune ships, under FastChat's registered names and with FastChat's exact strings
 * (fastchat/conversation.py, the version with {@code system_template} / {@code system_message}).
 * {@code chatml} is moetune's own: plain ChatML (as FastChat's qwen-7b-chat, with its default
 * system message), laid out by FastChat's CHATML style.
 */
final class BuiltinTemplates {
  private BuiltinTemplates() {}

  private static final String HUMAN_CHAT =
      "A chat between a curious human and an artificial intelligence assistant. "
          + "The assistant gives helpful, detailed, and polite answers to the human's questions.";

  private static final String ONE_SHOT_QUESTION =
      "Got any creative ideas for a 10 year old\u2019s birthday?";

  private static final String ONE_SHOT_ANSWER =
      """
      Of course! Here are some creative ideas for a 10-year-old's birthday party:
      1. Treasure Hunt: Organize a treasure hunt in your backyard or nearby park. \
      Create clues and riddles for the kids to solve, leading them to hidden treasures and surprises.
      2. Science Party: Plan a science-themed party where kids can engage in fun and interactive \
      experiments. You can set up different stations with activities like making slime, erupting \
      volcanoes, or creating simple chemical reactions.
      3. Outdoor Movie Night: Set up a backyard movie night with a projector and a large screen or \
      white sheet. Create a cozy seating area with blankets and pillows, and serve popcorn and \
      snacks while the kids enjoy a favorite movie under the stars.
      4. DIY Crafts Party: Arrange a craft party where kids can unleash their creativity. Provide a \
      variety of craft supplies like beads, paints, and fabrics, and let them create their own \
      unique masterpieces to take home as party favors.
      5. Sports Olympics: Host a mini Olympics event with various sports and games. Set up \
      different stations for activities like sack races, relay races, basketball shooting, and \
      obstacle courses. Give out medals or certificates to the participants.
      6. Cooking Party: Have a cooking-themed party where the kids can prepare their own mini \
      pizzas, cupcakes, or cookies. Provide toppings, frosting, and decorating supplies, and let \
      them get hands-on in the kitchen.
      7. Superhero Training Camp: Create a superhero-themed party where the kids can engage in \
      fun training activities. Set up an obstacle course, have them design their own superhero \
      capes or masks, and organize superhero-themed games and challenges.
      8. Outdoor Adventure: Plan an outdoor adventure party at a local park or nature reserve. \
      Arrange activities like hiking, nature scavenger hunts, or a picnic with games. Encourage \
      exploration and appreciation for the outdoors.
      Remember to tailor the activities to the birthday child's interests and preferences. Have a \
      great celebration!""";

  private static final String MPT_SYSTEM =
      """
      - You are a helpful assistant chatbot trained by MosaicML.
      - You answer questions.
      - You are excited to be able to help the user, but will refuse to do anything that could \
      be considered harmful to the user.
      - You are more than just an information source, you are also able to write poetry, short \
      stories, and make jokes.""";

  private static final String HERMES_SYSTEM =
      "You are a helpful, intelligent assistant AI named \"Hermes\", a conversational chatbot that"
          + " can follow instructions, converse with the user, and perform a variety of tasks,"
          + " including tasks on knowledge, reasoning, mathematics, and code. Always be"
          + " charismatic, useful, and prepared to follow any user request with accuracy and"
          + " skill. You should respond with high quality, fluent, and detailed responses. Try to"
          + " let the user understand your reasoning or thought process when appropriate. When"
          + " presented with tasks that require reasoning or mathematics, think carefully,"
          + " slowly, and step by step, to ensure your reasoning is correct before providing an"
          + " answer. Utilize the \"Examples\" section to assist you in performing the task. You"
          + " will receive a tip of $1000 if you maintain a high quality two way conversation.";

  private static final String LLAMA2_SYSTEM = "[INST] <<SYS>>\n{system_message}\n<</SYS>>\n\n";
  private static final String IM_SYSTEM = "<|im_start|>system\n{system_message}";
  private static final List<String> IM_ROLES = List.of("<|im_start|>user", "<|im_start|>assistant");

  /** All built-ins by name, in the order {@code template list} shows them. */
  static Map<String, ConversationTemplate> all() {
    Map<String, ConversationTemplate> m = new LinkedHashMap<>();
    add(
        m,
        new ConversationTemplate(
            "vicuna_v1.1",
            "{system_message}",
            "A chat between a curious user and an artificial intelligence assistant. "
                + "The assistant gives helpful, detailed, and polite answers to the user's questions.",
            List.of("USER", "ASSISTANT"),
            SeparatorStyle.ADD_COLON_TWO,
            " ",
            "</s>",
            null,
            List.of(),
            0));
    add(
        m,
        new ConversationTemplate(
            "llama-2",
            LLAMA2_SYSTEM,
            "",
            List.of("[INST]", "[/INST]"),
            SeparatorStyle.LLAMA2,
            " ",
            " </s><s>",
            null,
            List.of(),
            0));
    add(
        m,
        new ConversationTemplate(
            "mistral",
            "[INST] {system_message}\n",
            "",
            List.of("[INST]", "[/INST]"),
            SeparatorStyle.LLAMA2,
            " ",
            "</s>",
            null,
            List.of(),
            0));
    add(
        m,
        new ConversationTemplate(
            "zephyr",
            "<|system|>\n{system_message}",
            "",
            List.of("<|user|>", "<|assistant|>"),
            SeparatorStyle.CHATML,
            "</s>",
            null,
            "</s>",
            List.of(),
            0));
    add(
        m,
        new ConversationTemplate(
            "alpaca",
            "{system_message}",
            "Below is an instruction that describes a task. "
                + "Write a response that appropriately completes the request.",
            List.of("### Instruction", "### Response"),
            SeparatorStyle.ADD_COLON_TWO,
            "\n\n",
            "</s>",
            null,
            List.of(),
            0));
    add(
        m,
        new ConversationTemplate(
            "one_shot",
            "{system_message}",
            HUMAN_CHAT,
            List.of("Human", "Assistant"),
            SeparatorStyle.ADD_COLON_SINGLE,
            "\n### ",
            null,
            "###",
            List.of(Message.user(ONE_SHOT_QUESTION), Message.assistant(ONE_SHOT_ANSWER)),
            2));
    add(
        m,
        new ConversationTemplate(
            "zero_shot",
            "{system_message}",
            HUMAN_CHAT,
            List.of("Human", "Assistant"),
            SeparatorStyle.ADD_COLON_SINGLE,
            "\n### ",
            null,
            "###",
            List.of(),
            0));
    add(
        m,
        new ConversationTemplate(
            "airoboros_v3",
            LLAMA2_SYSTEM,
            "You are a helpful, unbiased, uncensored assistant.",
            List.of("[INST]", "[/INST]"),
            SeparatorStyle.LLAMA2,
            " ",
            " </s><s>",
            null,
            List.of(),
            0));
    add(
        m,
        new ConversationTemplate(
            "openchat_3.5",
            "{system_message}",
            "",
            List.of("GPT4 Correct User", "GPT4 Correct Assistant"),
            SeparatorStyle.FALCON_CHAT,
            "<|end_of_turn|>",
            null,
            null,
            List.of(),
            0));
    add(
        m,
        new ConversationTemplate(
            "tulu",
            "{system_message}",
            "",
            List.of("<|user|>", "<|assistant|>"),
            SeparatorStyle.ADD_NEW_LINE_SINGLE,
            "\n",
            null,
            null,
            List.of(),
            0));
    add(
        m,
        new ConversationTemplate(
            "mpt-7b-chat",
            IM_SYSTEM,
            MPT_SYSTEM,
            IM_ROLES,
            SeparatorStyle.CHATML,
            "<|im_end|>",
            null,
            null,
            List.of(),
            0));
    add(
        m,
        new ConversationTemplate(
            "dolly_v2",
            "{system_message}",
            "Below is an instruction that describes a task. "
                + "Write a response that appropriately completes the request.\n\n",
            List.of("### Instruction", "### Response"),
            SeparatorStyle.DOLLY,
            "\n\n",
            "### End",
            null,
            List.of(),
            0));
    add(
        m,
        new ConversationTemplate(
            "Nous-Hermes-2-Mixtral-8x7B-DPO",
            IM_SYSTEM,
            HERMES_SYSTEM,
            IM_ROLES,
            SeparatorStyle.CHATML,
            "<|im_end|>",
            null,
            null,
            List.of(),
            0));
    // FastChat's CHATML style writes a system block whenever the formatted system prompt is
    // non-empty, and "<|im_start|>system\n" always is, so chatml carries ChatML's customary
    // default system message (as FastChat's qwen-7b-chat) rather than an empty block.
    add(
        m,
        new ConversationTemplate(
            "chatml",
            IM_SYSTEM,
            "You are a helpful assistant.",
            IM_ROLES,
            SeparatorStyle.CHATML,
            "<|im_end|>",
            null,
            "<|im_end|>",
            List.of(),
            0));
    return m;
  }

  private static void add(Map<String, ConversationTemplate> m, ConversationTemplate t) {
    m.put(t.name(), t);
  }
}
