package moetune.templates;

import java.util.List;

/**
 * A way to lay out a conversation as one prompt with its characters tagged by {@link SpanKind}: a
 * FastChat {@link ConversationTemplate}, or a model's own Jinja {@code chat_template} ({@link
 * moetune.templates.hf.HfChatTemplate}).
 */
public interface ChatFormat {
  /** The name users pick it by ({@code chatml}, {@code hf}, ...). */
  String name();

  /**
   * The prompt of a conversation.
   *
   * @param system the system message, or null for the format's default
   * @param messages user / assistant turns; a last assistant turn with null content is the open
   *     turn a model is to continue (add_generation_prompt)
   */
  RenderedPrompt render(String system, List<Message> messages);

  /** The text that ends generation, or null for the tokenizer's EOS. */
  String stopStr();

  /** The system message rendered when a conversation has none ("" for none). */
  String systemMessage();

  /**
   * True when the rendered text already holds the special tokens (BOS) the model expects, so it is
   * tokenized without the tokenizer's post-processor, as transformers' {@code
   * apply_chat_template(tokenize=True)} does. FastChat prompts leave BOS to the tokenizer.
   */
  default boolean textHasSpecialTokens() {
    return false;
  }
}
