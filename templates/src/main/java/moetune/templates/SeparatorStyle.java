package moetune.templates;

/**
 * How a template joins the system prompt, the role names and the messages: FastChat's {@code
 * SeparatorStyle} members that moetune supports, with FastChat's names so user templates written
 * for FastChat load unchanged. {@link PromptRenderer} holds the layout of each.
 */
public enum SeparatorStyle {
  ADD_COLON_SINGLE(false),
  ADD_COLON_TWO(true),
  ADD_COLON_SPACE_SINGLE(false),
  NO_COLON_SINGLE(false),
  NO_COLON_TWO(true),
  ADD_NEW_LINE_SINGLE(false),
  LLAMA2(true),
  CHATML(false),
  DOLLY(true),
  FALCON_CHAT(false);

  private final boolean usesSep2;

  SeparatorStyle(boolean usesSep2) {
    this.usesSep2 = usesSep2;
  }

  /**
   * True when the layout appends {@code sep2} after every second message (FastChat fails on None).
   */
  public boolean usesSep2() {
    return usesSep2;
  }
}
