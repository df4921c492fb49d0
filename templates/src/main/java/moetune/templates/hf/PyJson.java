package moetune.templates.hf;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Python's {@code json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...)},
 * the {@code tojson} filter transformers installs in its chat-template environment (Jinja's own
 * filter would escape {@code <>&'} for HTML, which transformers overrides). Byte-identical output
 * matters: tool schemas rendered with {@code tojson} are part of the trained prompt.
 */
final class PyJson {
  private final String indent; // null: one line
  private final String itemSep;
  private final String keySep;
  private final boolean sortKeys;
  private final StringBuilder out = new StringBuilder();

  private PyJson(String indent, String itemSep, String keySep, boolean sortKeys) {
    this.indent = indent;
    this.itemSep = itemSep;
    this.keySep = keySep;
    this.sortKeys = sortKeys;
  }

  /**
   * @param indent null, a number of spaces, or a string (as Python's indent)
   * @param separators null or a two-element (item, key) list; Python's default is {@code (", ", ":
   *     ")} without indent and {@code (",", ": ")} with one
   */
  static String dumps(Object x, Object indent, List<?> separators, boolean sortKeys) {
    String ind = null;
    if (indent instanceof Number n) {
      ind = " ".repeat(Math.max(0, n.intValue()));
    } else if (indent != null) {
      ind = indent.toString();
    }
    String item = ind == null ? ", " : ",";
    String key = ": ";
    if (separators != null && separators.size() == 2) {
      item = String.valueOf(separators.get(0));
      key = String.valueOf(separators.get(1));
    }
    PyJson j = new PyJson(ind, item, key, sortKeys);
    j.write(x, 0);
    return j.out.toString();
  }

  private void write(Object x, int depth) {
    switch (x) {
      case null -> out.append("null");
      case Boolean b -> out.append(b ? "true" : "false");
      case Integer i -> out.append(i);
      case Long l -> out.append(l);
      case java.math.BigInteger b -> out.append(b);
      case Number n -> out.append(pyFloat(n.doubleValue()));
      case CharSequence s -> string(s.toString());
      case Map<?, ?> m -> object(m, depth);
      case Iterable<?> it -> array(it, depth);
      case Object[] a -> array(List.of(a), depth);
      default -> string(x.toString());
    }
  }

  private void object(Map<?, ?> m, int depth) {
    if (m.isEmpty()) {
      out.append("{}");
      return;
    }
    List<Map.Entry<?, ?>> entries = new ArrayList<>(m.entrySet());
    if (sortKeys) {
      entries.sort((a, b) -> String.valueOf(a.getKey()).compareTo(String.valueOf(b.getKey())));
    }
    out.append('{');
    boolean first = true;
    for (Map.Entry<?, ?> e : entries) {
      if (!first) {
        out.append(itemSep);
      }
      first = false;
      newline(depth + 1);
      string(String.valueOf(e.getKey()));
      out.append(keySep);
      write(e.getValue(), depth + 1);
    }
    newline(depth);
    out.append('}');
  }

  private void array(Iterable<?> it, int depth) {
    if (!it.iterator().hasNext()) {
      out.append("[]");
      return;
    }
    out.append('[');
    boolean first = true;
    for (Object v : it) {
      if (!first) {
        out.append(itemSep);
      }
      first = false;
      newline(depth + 1);
      write(v, depth + 1);
    }
    newline(depth);
    out.append(']');
  }

  private void newline(int depth) {
    if (indent != null) {
      out.append('\n').append(indent.repeat(depth));
    }
  }

  /** JSON string escaping of Python's encoder with ensure_ascii=False. */
  private void string(String s) {
    out.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        case '\b' -> out.append("\\b");
        case '\f' -> out.append("\\f");
        default -> {
          if (c < 0x20) {
            out.append(String.format("\\u%04x", (int) c));
          } else {
            out.append(c);
          }
        }
      }
    }
    out.append('"');
  }

  /** Python's repr of a float: 1.0, 0.1, 1e+16, inf as Infinity (json.dumps' allow_nan). */
  static String pyFloat(double d) {
    if (Double.isNaN(d)) {
      return "NaN";
    }
    if (Double.isInfinite(d)) {
      return d > 0 ? "Infinity" : "-Infinity";
    }
    if (d == Math.rint(d) && Math.abs(d) < 1e16) {
      return String.valueOf((long) d) + ".0";
    }
    String r = Double.toString(d); // shortest round-trip digits, as Python's repr
    int e = r.indexOf('E');
    if (e < 0) {
      return r;
    }
    String mant = r.substring(0, e);
    int exp = Integer.parseInt(r.substring(e + 1));
    if (exp >= -4 && exp < 16) {
      return new java.math.BigDecimal(r).toPlainString();
    }
    if (mant.endsWith(".0")) {
      mant = mant.substring(0, mant.length() - 2);
    }
    return mant + "e" + (exp < 0 ? "-" : "+") + String.format("%02d", Math.abs(exp));
  }
}
