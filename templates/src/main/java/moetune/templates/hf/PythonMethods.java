package moetune.templates.hf;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

/**
 * Python's {@code str} and {@code dict} methods that chat templates call ({@code content.strip()},
 * {@code role.title()}, {@code text.split('\n')}, {@code msg.get('content', '')}, ...), which
 * Java's String and Map lack or spell differently. Placed before jinjava's own resolvers, it
 * answers only calls it knows and leaves the rest to them. Semantics follow CPython: whitespace is
 * Python's (str.isspace), split() without a separator splits on runs of whitespace and drops empty
 * strings, title() capitalizes after any non-letter.
 */
final class PythonMethods extends ELResolver {

  @Override
  public Object invoke(
      ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
    if (method == null) {
      return null;
    }
    Object[] p = params == null ? new Object[0] : params;
    String name = method.toString();
    Object result;
    if (base instanceof String s) {
      result = string(s, name, p);
    } else if (base instanceof Map<?, ?> m) {
      result = map(m, name, p);
    } else {
      return null;
    }
    if (result == NOT_MINE) {
      return null;
    }
    context.setPropertyResolved(true);
    return result;
  }

  private static final Object NOT_MINE = new Object();

  private static Object map(Map<?, ?> m, String name, Object[] p) {
    if (name.equals("get") && p.length == 2) {
      return m.containsKey(p[0]) ? m.get(p[0]) : p[1];
    }
    return NOT_MINE;
  }

  private static Object string(String s, String name, Object[] p) {
    return switch (name) {
      case "strip" -> strip(s, arg(p, 0), true, true);
      case "lstrip" -> strip(s, arg(p, 0), true, false);
      case "rstrip" -> strip(s, arg(p, 0), false, true);
      case "upper" -> s.toUpperCase(java.util.Locale.ROOT);
      case "lower" -> s.toLowerCase(java.util.Locale.ROOT);
      case "title" -> title(s);
      case "capitalize" ->
          s.isEmpty()
              ? s
              : s.substring(0, 1).toUpperCase(java.util.Locale.ROOT)
                  + s.substring(1).toLowerCase(java.util.Locale.ROOT);
      case "startswith" -> affix(s, p[0], true);
      case "endswith" -> affix(s, p[0], false);
      case "split" -> split(s, arg(p, 0), p.length > 1 ? ((Number) p[1]).intValue() : -1);
      case "splitlines" -> List.of(s.split("\r\n|\r|\n", -1)).stream().toList();
      case "replace" ->
          p.length > 2
              ? replaceN(s, str(p[0]), str(p[1]), ((Number) p[2]).intValue())
              : s.replace(str(p[0]), str(p[1]));
      case "find" -> (long) s.indexOf(str(p[0]));
      case "rfind" -> (long) s.lastIndexOf(str(p[0]));
      case "count" -> (long) count(s, str(p[0]));
      case "join" -> join(s, p[0]);
      case "isspace" -> !s.isEmpty() && s.chars().allMatch(PythonMethods::isSpace);
      case "isdigit" -> !s.isEmpty() && s.chars().allMatch(Character::isDigit);
      case "isalpha" -> !s.isEmpty() && s.chars().allMatch(Character::isLetter);
      case "isalnum" -> !s.isEmpty() && s.chars().allMatch(Character::isLetterOrDigit);
      case "islower" -> s.equals(s.toLowerCase(java.util.Locale.ROOT)) && hasCased(s);
      case "isupper" -> s.equals(s.toUpperCase(java.util.Locale.ROOT)) && hasCased(s);
      default -> NOT_MINE;
    };
  }

  private static String arg(Object[] p, int i) {
    return p.length > i && p[i] != null ? p[i].toString() : null;
  }

  private static String str(Object o) {
    return String.valueOf(o);
  }

  /** Python's str.isspace for one char (ASCII and Unicode whitespace, incl. \x1c-\x1f). */
  static boolean isSpace(int c) {
    return Character.isWhitespace(c) || Character.isSpaceChar(c) || (c >= 0x1c && c <= 0x1f);
  }

  static String strip(String s, String chars, boolean left, boolean right) {
    int a = 0;
    int b = s.length();
    while (left && a < b && strippable(s.charAt(a), chars)) {
      a++;
    }
    while (right && b > a && strippable(s.charAt(b - 1), chars)) {
      b--;
    }
    return s.substring(a, b);
  }

  private static boolean strippable(char c, String chars) {
    return chars == null ? isSpace(c) : chars.indexOf(c) >= 0;
  }

  private static String title(String s) {
    StringBuilder b = new StringBuilder(s.length());
    boolean prevCased = false;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      b.append(prevCased ? Character.toLowerCase(c) : Character.toTitleCase(c));
      prevCased = Character.isLetter(c);
    }
    return b.toString();
  }

  private static boolean affix(String s, Object what, boolean start) {
    if (what instanceof Iterable<?> options) { // a tuple of prefixes
      for (Object o : options) {
        if (affix(s, o, start)) {
          return true;
        }
      }
      return false;
    }
    String w = str(what);
    return start ? s.startsWith(w) : s.endsWith(w);
  }

  private static List<String> split(String s, String sep, int maxsplit) {
    List<String> out = new ArrayList<>();
    if (sep == null) {
      int i = 0;
      int n = s.length();
      while (true) {
        while (i < n && isSpace(s.charAt(i))) {
          i++;
        }
        if (i >= n) {
          break;
        }
        if (maxsplit >= 0 && out.size() == maxsplit) {
          out.add(strip(s.substring(i), null, false, true));
          break;
        }
        int j = i;
        while (j < n && !isSpace(s.charAt(j))) {
          j++;
        }
        out.add(s.substring(i, j));
        i = j;
      }
      return out;
    }
    if (sep.isEmpty()) {
      throw new IllegalArgumentException("empty separator");
    }
    int from = 0;
    while (maxsplit < 0 || out.size() < maxsplit) {
      int at = s.indexOf(sep, from);
      if (at < 0) {
        break;
      }
      out.add(s.substring(from, at));
      from = at + sep.length();
    }
    out.add(s.substring(from));
    return out;
  }

  private static String replaceN(String s, String a, String b, int n) {
    StringBuilder out = new StringBuilder();
    int from = 0;
    for (int k = 0; n < 0 || k < n; k++) {
      int at = s.indexOf(a, from);
      if (at < 0 || a.isEmpty()) {
        break;
      }
      out.append(s, from, at).append(b);
      from = at + a.length();
    }
    return out.append(s.substring(from)).toString();
  }

  private static int count(String s, String w) {
    if (w.isEmpty()) {
      return s.length() + 1;
    }
    int n = 0;
    for (int at = s.indexOf(w); at >= 0; at = s.indexOf(w, at + w.length())) {
      n++;
    }
    return n;
  }

  private static String join(String sep, Object items) {
    List<String> parts = new ArrayList<>();
    if (items instanceof Iterable<?> it) {
      it.forEach(o -> parts.add(str(o)));
    }
    return String.join(sep, parts);
  }

  private static boolean hasCased(String s) {
    return s.chars().anyMatch(c -> Character.isUpperCase(c) || Character.isLowerCase(c));
  }

  @Override
  public Class<?> getCommonPropertyType(ELContext context, Object base) {
    return null;
  }

  @Override
  public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
    return null;
  }

  @Override
  public Class<?> getType(ELContext context, Object base, Object property) {
    return null;
  }

  @Override
  public Object getValue(ELContext context, Object base, Object property) {
    return null;
  }

  @Override
  public boolean isReadOnly(ELContext context, Object base, Object property) {
    return true;
  }

  @Override
  public void setValue(ELContext context, Object base, Object property, Object value) {}
}
