package moetune.templates;

/**
 * Python's {@code str.format(system_message=...)} as FastChat applies it to a system template:
 * {@code {system_message}} is replaced by the message verbatim (its own braces are not re-read),
 * {@code {{} and {@code }}} are literal braces, any other field or a lone brace is an error (Python
 * raises KeyError / ValueError), so a user template fails at load, not mid-run.
 */
final class PythonFormat {
  static final String FIELD = "system_message";

  private PythonFormat() {}

  /** Formats {@code template}; throws IllegalArgumentException describing a malformed template. */
  static String formatSystem(String template, String systemMessage) {
    StringBuilder out = new StringBuilder(template.length() + systemMessage.length());
    int i = 0;
    while (i < template.length()) {
      char c = template.charAt(i);
      if (c == '{') {
        if (i + 1 < template.length() && template.charAt(i + 1) == '{') {
          out.append('{');
          i += 2;
          continue;
        }
        int close = template.indexOf('}', i);
        if (close < 0) {
          throw new IllegalArgumentException("unmatched '{' at char " + i);
        }
        String field = template.substring(i + 1, close);
        if (!field.equals(FIELD)) {
          throw new IllegalArgumentException(
              "unknown field {" + field + "} (only {" + FIELD + "} exists; write {{ for a brace)");
        }
        out.append(systemMessage);
        i = close + 1;
      } else if (c == '}') {
        if (i + 1 < template.length() && template.charAt(i + 1) == '}') {
          out.append('}');
          i += 2;
          continue;
        }
        throw new IllegalArgumentException("single '}' at char " + i + " (write }} for a brace)");
      } else {
        out.append(c);
        i++;
      }
    }
    return out.toString();
  }
}
