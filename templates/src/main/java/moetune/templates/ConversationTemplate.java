package moetune.templates;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * FastChat's {@code Conversation} as a template: everything but the appended messages.
 *
 * @param name the registered name, e.g. {@code vicuna_v1.1}
 * @param systemTemplate Python format string with one field, {@code {system_message}}
 * @param systemMessage the default system message (empty: none)
 * @param roles the display names of {@link Role#USER} and {@link Role#ASSISTANT}, in that order
 * @param sepStyle the layout
 * @param sep the first separator
 * @param sep2 the second separator; null where the style does not use it
 * @param stopStr the text that ends generation, or null (the tokenizer's EOS)
 * @param examples built-in few-shot turns rendered before every conversation
 * @param offset FastChat's offset: how many of {@code examples} are hidden from a chat UI
 */
public record ConversationTemplate(
    String name,
    String systemTemplate,
    String systemMessage,
    List<String> roles,
    SeparatorStyle sepStyle,
    String sep,
    String sep2,
    String stopStr,
    List<Message> examples,
    int offset)
    implements ChatFormat {

  public ConversationTemplate {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(systemTemplate, "systemTemplate");
    Objects.requireNonNull(systemMessage, "systemMessage");
    Objects.requireNonNull(sepStyle, "sepStyle");
    Objects.requireNonNull(sep, "sep");
    roles = List.copyOf(roles);
    examples = List.copyOf(examples);
    if (roles.size() != 2) {
      throw new TemplateException("template " + name + ": roles must name exactly 2 speakers");
    }
    if (sepStyle.usesSep2() && sep2 == null) {
      throw new TemplateException(
          "template " + name + ": sep_style " + sepStyle + " needs sep2 (it ends every reply)");
    }
    try {
      PythonFormat.formatSystem(systemTemplate, "");
    } catch (IllegalArgumentException e) {
      throw new TemplateException("template " + name + ": system_template: " + e.getMessage());
    }
  }

  /** The role display name of a speaker. */
  public String roleName(Role role) {
    return roles.get(role.ordinal());
  }

  /** This template with another default system message (FastChat's {@code set_system_message}). */
  public ConversationTemplate withSystemMessage(String message) {
    return new ConversationTemplate(
        name, systemTemplate, message, roles, sepStyle, sep, sep2, stopStr, examples, offset);
  }

  /**
   * Renders a conversation exactly as FastChat's {@code get_prompt()} after {@code
   * set_system_message(system)} (when system is not null) and one {@code append_message} per
   * message.
   *
   * @param system the system message, or null for this template's default
   * @param messages the turns after the built-in examples; the last may be an open turn
   */
  @Override
  public RenderedPrompt render(String system, List<Message> messages) {
    List<Message> all = new ArrayList<>(examples.size() + messages.size());
    all.addAll(examples);
    all.addAll(messages);
    return new PromptRenderer(this, system == null ? systemMessage : system, examples.size())
        .render(all);
  }

  /** {@link #render(String, List)}'s text only. */
  public String prompt(String system, List<Message> messages) {
    return render(system, messages).text();
  }
}
