package moetune.templates.hf;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Gives Jinja's unary {@code not} its Jinja precedence before jinjava parses a template. In Jinja
 * (as in Python) {@code not} binds looser than comparisons, {@code in} and tests: {@code not
 * tool_call.id is defined} is {@code not (tool_call.id is defined)} and {@code not a == b} is
 * {@code not (a == b)}. jinjava's expression language binds {@code not} to the next operand ({@code
 * (not tool_call.id) is defined}, always true), which silently changes what chat templates render
 * (Mistral v0.3 refuses every tool call). So inside each {@code {{ }}} and {@code {% %}} every
 * unary {@code not} gets explicit parentheses reaching to the end of its operand: the next {@code
 * and}, {@code or}, {@code if}, {@code else}, comma, colon or closing bracket at its nesting depth,
 * or the end of the tag. Text outside tags and string literals is never touched.
 */
final class NotPrecedence {
  private NotPrecedence() {}

  private static final Set<String> ENDS = Set.of("and", "or", "if", "else");
  private static final Set<String> NOT_OPERANDS =
      Set.of("and", "or", "not", "if", "else", "in", "elif", "set", "for", "return");

  static String rewrite(String source) {
    StringBuilder out = new StringBuilder(source.length() + 16);
    int i = 0;
    while (i < source.length()) {
      int open = nextOpen(source, i);
      if (open < 0) {
        out.append(source, i, source.length());
        break;
      }
      out.append(source, i, open);
      String kind = source.substring(open, open + 2);
      String close = kind.equals("{{") ? "}}" : kind.equals("{%") ? "%}" : "#}";
      int end = findClose(source, open + 2, close);
      if (end < 0) {
        out.append(source, open, source.length());
        break;
      }
      String inner = source.substring(open + 2, end);
      out.append(kind).append(kind.equals("{#") ? inner : rewriteExpression(inner)).append(close);
      i = end + 2;
    }
    return out.toString();
  }

  private static int nextOpen(String s, int from) {
    for (int i = from; i + 1 < s.length(); i++) {
      if (s.charAt(i) == '{') {
        char c = s.charAt(i + 1);
        if (c == '{' || c == '%' || c == '#') {
          return i;
        }
      }
    }
    return -1;
  }

  /** The index of {@code close} after {@code from}, skipping string literals. */
  private static int findClose(String s, int from, String close) {
    for (int i = from; i + 1 < s.length(); i++) {
      char c = s.charAt(i);
      if (!close.equals("#}") && (c == '\'' || c == '"')) {
        i = stringEnd(s, i) - 1;
      } else if (s.startsWith(close, i)) {
        return i;
      }
    }
    return -1;
  }

  private static int stringEnd(String s, int quoteAt) {
    char q = s.charAt(quoteAt);
    int i = quoteAt + 1;
    while (i < s.length() && s.charAt(i) != q) {
      i += s.charAt(i) == '\\' ? 2 : 1;
    }
    return Math.min(i + 1, s.length());
  }

  private record Tok(String text, boolean word, boolean space) {}

  private static List<Tok> tokens(String e) {
    List<Tok> t = new ArrayList<>();
    int i = 0;
    while (i < e.length()) {
      char c = e.charAt(i);
      int j = i + 1;
      if (Character.isWhitespace(c)) {
        while (j < e.length() && Character.isWhitespace(e.charAt(j))) {
          j++;
        }
        t.add(new Tok(e.substring(i, j), false, true));
      } else if (c == '\'' || c == '"') {
        j = stringEnd(e, i);
        t.add(new Tok(e.substring(i, j), false, false));
      } else if (Character.isLetterOrDigit(c) || c == '_') {
        while (j < e.length() && (Character.isLetterOrDigit(e.charAt(j)) || e.charAt(j) == '_')) {
          j++;
        }
        t.add(new Tok(e.substring(i, j), true, false));
      } else {
        t.add(new Tok(String.valueOf(c), false, false));
      }
      i = j;
    }
    return t;
  }

  private static String rewriteExpression(String e) {
    if (!e.contains("not")) {
      return e;
    }
    List<Tok> t = tokens(e);
    int n = t.size();
    String[] before = new String[n + 1];
    String[] after = new String[n + 1];
    for (int k = 0; k < n; k++) {
      Tok tok = t.get(k);
      if (!tok.word() || !tok.text().equals("not") || !unary(t, k)) {
        continue;
      }
      int next = nextSolid(t, k + 1);
      if (next < 0 || (t.get(next).word() && t.get(next).text().equals("in"))) {
        continue;
      }
      int end = operandEnd(t, next);
      after[k] = append(after[k], " (");
      before[end] = append(before[end], ")");
    }
    StringBuilder b = new StringBuilder();
    for (int k = 0; k <= n; k++) {
      if (before[k] != null) {
        b.append(before[k]);
      }
      if (k < n) {
        b.append(t.get(k).text());
        if (after[k] != null) {
          b.append(after[k]);
        }
      }
    }
    return b.toString();
  }

  private static String append(String a, String b) {
    return a == null ? b : a + b;
  }

  /** A {@code not} is unary unless it follows an operand ({@code x not in y}, {@code is not}). */
  private static boolean unary(List<Tok> t, int k) {
    for (int p = k - 1; p >= 0; p--) {
      Tok tok = t.get(p);
      if (tok.space()) {
        continue;
      }
      String s = tok.text();
      if (tok.word()) {
        return NOT_OPERANDS.contains(s); // "is not" is a negated test, not a unary not
      }
      return !(s.equals(")")
          || s.equals("]")
          || s.equals("}")
          || s.startsWith("'")
          || s.startsWith("\""));
    }
    return true;
  }

  private static int nextSolid(List<Tok> t, int from) {
    for (int k = from; k < t.size(); k++) {
      if (!t.get(k).space()) {
        return k;
      }
    }
    return -1;
  }

  /** The token index where the operand starting at {@code from} ends (exclusive). */
  private static int operandEnd(List<Tok> t, int from) {
    int depth = 0;
    int end = t.size();
    for (int k = from; k < t.size(); k++) {
      Tok tok = t.get(k);
      String s = tok.text();
      if (s.equals("(") || s.equals("[") || s.equals("{")) {
        depth++;
      } else if (s.equals(")") || s.equals("]") || s.equals("}")) {
        if (depth == 0) {
          end = k;
          break;
        }
        depth--;
      } else if (depth == 0
          && ((tok.word() && ENDS.contains(s))
              || s.equals(",")
              || s.equals(":")
              || s.equals("-") && k + 1 < t.size() && t.get(k + 1).text().equals("}"))) {
        end = k;
        break;
      }
    }
    // keep trailing blanks (and a "-" whitespace control before the close) outside
    while (end > from && (t.get(end - 1).space() || t.get(end - 1).text().equals("-"))) {
      end--;
    }
    return end;
  }
}
