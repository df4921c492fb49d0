package moetune.templates;

/**
 * A run {@code [start, end)} of UTF-16 chars of a rendered prompt, of one {@link SpanKind}. {@code
 * message} is the index of the conversation message it belongs to (0 = first message after the
 * template's built-in examples), or -1 for the system prompt, examples and leading layout.
 */
public record Span(SpanKind kind, int start, int end, int message) {
  public Span {
    if (start < 0 || end <= start) {
      throw new IllegalArgumentException("span [" + start + ", " + end + ") is empty or negative");
    }
  }

  public int length() {
    return end - start;
  }
}
