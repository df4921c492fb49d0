package moetune.templates;

/**
 * What a run of characters in a rendered prompt is. The trainer's loss mask follows this: only
 * {@link #ASSISTANT} and {@link #END_OF_REPLY} text is ever a training target.
 */
public enum SpanKind {
  /** The formatted system prompt (system template with the system message filled in). */
  SYSTEM,
  /** Layout text: role headers, colons, separators after user turns. Never trained. */
  TEMPLATE,
  /** Built-in few-shot example turns of a template (FastChat's {@code messages[:offset]}). */
  EXAMPLE,
  /** The content of a user message. */
  USER,
  /** The content of an assistant message. */
  ASSISTANT,
  /**
   * The separator the template appends right after an assistant reply ({@code sep2} for the
   * two-separator styles, {@code sep} otherwise, e.g. {@code </s>} or {@code <|im_end|>}): the
   * model must learn to emit it to stop, so it is trained with the reply (FastChat's semantics).
   */
  END_OF_REPLY;

  /** True for the kinds a chat finetune learns to produce. */
  public boolean assistantOutput() {
    return this == ASSISTANT || this == END_OF_REPLY;
  }
}
