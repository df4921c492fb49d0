package moetune.templates;

/**
 * A Jinja {@code chat_template} that renders exactly what a FastChat template renders, for the
 * tokenizer_config.json of an exported model: {@code apply_chat_template(messages,
 * add_generation_prompt=True)} then gives the prompt format the model was trained with. The HF
 * conventions map onto FastChat's: a leading {@code system} message is {@code set_system_message}
 * (absent: the template's default), {@code add_generation_prompt} appends the open assistant turn
 * ({@code append_message(roles[1], None)}), and the template's few-shot examples are written as
 * fixed text. Everything is written inside tags, so trim_blocks / lstrip_blocks cannot change it.
 */
public final class FastChatJinja {
  private FastChatJinja() {}

  private static final char SENTINEL = '\u0000';

  /**
   * @param bos write {@code bos_token} first: true when training tokenized the prompt with the
   *     tokenizer's post-processor adding BOS, which apply_chat_template(tokenize=True) does not
   */
  public static String of(ConversationTemplate t, boolean bos) {
    int n = t.examples().size();
    String formatted = PythonFormat.formatSystem(t.systemTemplate(), String.valueOf(SENTINEL));
    int at = formatted.indexOf(SENTINEL);
    String pre = at < 0 ? formatted : formatted.substring(0, at);
    String post = at < 0 ? "" : formatted.substring(at + 1);
    String s = at < 0 ? lit(formatted) : lit(pre) + " + system_message + " + lit(post);
    StringBuilder j = new StringBuilder();
    j.append("{#- FastChat template '")
        .append(t.name().replace("#", ""))
        .append("' (")
        .append(t.sepStyle())
        .append("), written by moetune -#}\n");
    j.append("{%- if messages and messages[0]['role'] == 'system' -%}\n")
        .append("{%- set system_message = messages[0]['content'] -%}\n")
        .append("{%- set loop_messages = messages[1:] -%}\n")
        .append("{%- else -%}\n")
        .append("{%- set system_message = ")
        .append(lit(t.systemMessage()))
        .append(" -%}\n")
        .append("{%- set loop_messages = messages -%}\n")
        .append("{%- endif -%}\n");
    if (bos) {
      j.append("{{- bos_token -}}\n");
    }
    j.append(systemPart(t, s)).append('\n');
    String examples = t.render("", java.util.List.of()).textOf(SpanKind.EXAMPLE);
    if (!examples.isEmpty()) {
      j.append("{{- ").append(lit(examples)).append(" -}}\n");
    }
    j.append("{%- for message in loop_messages -%}\n")
        .append("{%- set i = loop.index0 + ")
        .append(n)
        .append(" -%}\n")
        .append(turn(t, "message['content']", "message['role']"))
        .append("\n{%- endfor -%}\n")
        .append("{%- if add_generation_prompt -%}\n")
        .append("{%- set i = loop_messages | length + ")
        .append(n)
        .append(" -%}\n")
        .append("{{- ")
        .append(open(t, "'assistant'"))
        .append(" -}}\n")
        .append("{%- endif -%}\n");
    return j.toString();
  }

  private static String systemPart(ConversationTemplate t, String s) {
    String sep = lit(t.sep());
    return switch (t.sepStyle()) {
      case ADD_COLON_SINGLE, ADD_COLON_TWO, ADD_COLON_SPACE_SINGLE ->
          "{{- " + s + " + " + sep + " -}}";
      case NO_COLON_SINGLE, NO_COLON_TWO, DOLLY -> "{{- " + s + " -}}";
      case ADD_NEW_LINE_SINGLE ->
          "{%- set s = " + s + " -%}{%- if s -%}{{- s + " + sep + " -}}{%- endif -%}";
      case CHATML ->
          "{%- set s = " + s + " -%}{%- if s -%}{{- s + " + sep + " + '\\n' -}}{%- endif -%}";
      case FALCON_CHAT -> "{%- if system_message -%}{{- " + s + " + " + sep + " -}}{%- endif -%}";
      case LLAMA2 ->
          "{%- if system_message -%}{{- " + s + " -}}{%- else -%}{{- '[INST] ' -}}{%- endif -%}";
    };
  }

  /** The role name of a message: FastChat's roles[0] for user, roles[1] otherwise. */
  private static String role(ConversationTemplate t, String roleExpr) {
    return "("
        + lit(t.roles().get(0))
        + " if "
        + roleExpr
        + " == 'user' else "
        + lit(t.roles().get(1))
        + ")";
  }

  /** sep, or sep2 after every odd message (sepAfter in PromptRenderer). */
  private static String sepAfter(ConversationTemplate t) {
    return t.sepStyle().usesSep2()
        ? "(" + lit(t.sep2()) + " if i % 2 == 1 else " + lit(t.sep()) + ")"
        : lit(t.sep());
  }

  private static String turn(ConversationTemplate t, String c, String roleExpr) {
    String r = role(t, roleExpr);
    String sep = lit(t.sep());
    String filled =
        switch (t.sepStyle()) {
          case ADD_COLON_SINGLE, ADD_COLON_TWO, ADD_COLON_SPACE_SINGLE, FALCON_CHAT ->
              r
                  + " + ': ' + "
                  + c
                  + " + "
                  + (t.sepStyle() == SeparatorStyle.FALCON_CHAT ? sep : sepAfter(t));
          case NO_COLON_SINGLE, NO_COLON_TWO -> r + " + " + c + " + " + sepAfter(t);
          case ADD_NEW_LINE_SINGLE -> r + " + '\\n' + " + c + " + " + sep;
          case CHATML -> r + " + '\\n' + " + c + " + " + sep + " + '\\n'";
          case DOLLY ->
              r + " + ':\\n' + " + c + " + " + sepAfter(t) + " + ('\\n\\n' if i % 2 == 1 else '')";
          case LLAMA2 ->
              "("
                  + c
                  + " + ' ' if i == 0 else "
                  + tag(t)
                  + " + ' ' + "
                  + c
                  + " + "
                  + sepAfter(t)
                  + ")";
        };
    return "{%- if "
        + c
        + " -%}{{- "
        + filled
        + " -}}{%- else -%}{{- "
        + open(t, roleExpr)
        + " -}}{%- endif -%}";
  }

  /** What FastChat writes for a message without content (role + open). */
  private static String open(ConversationTemplate t, String roleExpr) {
    String r = role(t, roleExpr);
    return switch (t.sepStyle()) {
      case ADD_COLON_SINGLE, ADD_COLON_TWO, FALCON_CHAT -> r + " + ':'";
      case ADD_COLON_SPACE_SINGLE -> r + " + ': '";
      case NO_COLON_SINGLE, NO_COLON_TWO -> r;
      case ADD_NEW_LINE_SINGLE, CHATML -> r + " + '\\n'";
      case DOLLY -> r + " + ':\\n'";
      case LLAMA2 -> tag(t);
    };
  }

  /** LLaMA-2 picks the tag by position, roles[i % 2]. */
  private static String tag(ConversationTemplate t) {
    return "(" + lit(t.roles().get(1)) + " if i % 2 == 1 else " + lit(t.roles().get(0)) + ")";
  }

  /** A Jinja string literal (single-quoted, Python escapes). */
  static String lit(String s) {
    StringBuilder b = new StringBuilder("'");
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '\\' -> b.append("\\\\");
        case '\'' -> b.append("\\'");
        case '\n' -> b.append("\\n");
        case '\r' -> b.append("\\r");
        case '\t' -> b.append("\\t");
        default -> b.append(c);
      }
    }
    return b.append('\'').toString();
  }
}
