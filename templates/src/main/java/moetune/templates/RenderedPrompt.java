package moetune.templates;

import java.util.List;

/**
 * A prompt exactly as FastChat's {@code get_prompt()} writes it, with its characters split into
 * spans. Invariant: the spans are in order, non-empty, and cover {@code text} without gaps or
 * overlaps, so every character has exactly one kind.
 */
public record RenderedPrompt(String text, List<Span> spans) {
  public RenderedPrompt {
    spans = List.copyOf(spans);
    int at = 0;
    for (Span s : spans) {
      if (s.start() != at) {
        throw new IllegalStateException("spans leave a gap or overlap at char " + at);
      }
      at = s.end();
    }
    if (at != text.length()) {
      throw new IllegalStateException("spans cover " + at + " of " + text.length() + " chars");
    }
  }

  /** The text of one span. */
  public String text(Span span) {
    return text.substring(span.start(), span.end());
  }

  /** The concatenated text of every span of this kind, for display and tests. */
  public String textOf(SpanKind kind) {
    StringBuilder b = new StringBuilder();
    for (Span s : spans) {
      if (s.kind() == kind) {
        b.append(text, s.start(), s.end());
      }
    }
    return b.toString();
  }
}
