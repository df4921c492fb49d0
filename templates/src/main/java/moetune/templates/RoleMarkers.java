package moetune.templates;

import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import moetune.templates.hf.HfChatTemplate;

/**
 * The control markers a chat format writes around turns ({@code <|im_start|>}, {@code <|eot_id|>},
 * {@code <start_of_turn>}, {@code [INST]}, {@code </s>}): what a tokenizer should know as single
 * tokens. Split into ordinary pieces (7 tokens for {@code <|im_start|>} on a Mistral tokenizer)
 * they still train, but cost sequence length and are easily produced half-way, so the run warns
 * about them.
 */
public final class RoleMarkers {
  private RoleMarkers() {}

  private static final Pattern MARKER =
      Pattern.compile("<\\|[A-Za-z0-9_]+\\|>|</?[a-z][a-z0-9_]*>|\\[/?[A-Z][A-Z_]*\\]");

  /** The markers of a format, in order of appearance, each once. */
  public static List<String> of(ChatFormat f) {
    StringBuilder text = new StringBuilder();
    if (f instanceof ConversationTemplate t) {
      text.append(t.systemTemplate()).append(' ').append(t.sep()).append(' ');
      text.append(t.sep2() == null ? "" : t.sep2()).append(' ');
      t.roles().forEach(r -> text.append(r).append(' '));
    } else if (f instanceof HfChatTemplate h) {
      text.append(h.source());
    }
    Set<String> out = new LinkedHashSet<>();
    Matcher m = MARKER.matcher(text);
    while (m.find()) {
      out.add(m.group());
    }
    return List.copyOf(out);
  }
}
