package moetune.engine.hf;

import com.fasterxml.jackson.databind.JsonNode;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * Writes JSON exactly as Python's {@code json.dumps(obj, indent=2, sort_keys=True)} does, which is
 * how transformers writes {@code config.json}, {@code generation_config.json} and {@code
 * model.safetensors.index.json}: two-space indent, {@code ", "}-free item separators with one item
 * per line, {@code ": "} after keys, keys sorted by code point, non-ASCII escaped as a backslash-u
 * escape with four hex digits, and floats in Python's shortest {@code repr} form ({@code 1e-05},
 * {@code 1000000.0}, {@code 0.02}). Writing a file transformers wrote therefore reproduces it byte
 * for byte.
 */
public final class PyJson {
  private PyJson() {}

  /** The JSON text, without a trailing newline (transformers appends one). */
  public static String dumps(JsonNode node) {
    StringBuilder sb = new StringBuilder();
    write(node, sb, 0);
    return sb.toString();
  }

  private static void write(JsonNode n, StringBuilder sb, int depth) {
    switch (n.getNodeType()) {
      case OBJECT -> {
        if (n.isEmpty()) {
          sb.append("{}");
          return;
        }
        List<String> keys = new ArrayList<>();
        for (Iterator<String> it = n.fieldNames(); it.hasNext(); ) {
          keys.add(it.next());
        }
        keys.sort(PyJson::compareCodePoints);
        sb.append("{\n");
        for (int i = 0; i < keys.size(); i++) {
          indent(sb, depth + 1);
          string(keys.get(i), sb);
          sb.append(": ");
          write(n.get(keys.get(i)), sb, depth + 1);
          sb.append(i + 1 < keys.size() ? ",\n" : "\n");
        }
        indent(sb, depth);
        sb.append('}');
      }
      case ARRAY -> {
        if (n.isEmpty()) {
          sb.append("[]");
          return;
        }
        sb.append("[\n");
        for (int i = 0; i < n.size(); i++) {
          indent(sb, depth + 1);
          write(n.get(i), sb, depth + 1);
          sb.append(i + 1 < n.size() ? ",\n" : "\n");
        }
        indent(sb, depth);
        sb.append(']');
      }
      case STRING -> string(n.textValue(), sb);
      case BOOLEAN -> sb.append(n.booleanValue() ? "true" : "false");
      case NULL, MISSING -> sb.append("null");
      case NUMBER -> {
        if (n.isIntegralNumber()) {
          sb.append(n.bigIntegerValue());
        } else {
          sb.append(floatRepr(n.doubleValue()));
        }
      }
      default -> throw new IllegalArgumentException("PyJson: cannot write " + n.getNodeType());
    }
  }

  private static void indent(StringBuilder sb, int depth) {
    sb.append("  ".repeat(depth));
  }

  /** Python sorts str keys by code point; Java's compareTo sorts by UTF-16 unit. */
  private static int compareCodePoints(String a, String b) {
    return java.util.Arrays.compare(a.codePoints().toArray(), b.codePoints().toArray());
  }

  private static void string(String s, StringBuilder sb) {
    sb.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> sb.append("\\\"");
        case '\\' -> sb.append("\\\\");
        case '\n' -> sb.append("\\n");
        case '\r' -> sb.append("\\r");
        case '\t' -> sb.append("\\t");
        case '\b' -> sb.append("\\b");
        case '\f' -> sb.append("\\f");
        default -> {
          if (c < 0x20 || c > 0x7e) {
            sb.append(String.format("\\u%04x", (int) c));
          } else {
            sb.append(c);
          }
        }
      }
    }
    sb.append('"');
  }

  /**
   * Python's {@code repr(float)}: the shortest digits that round-trip (Java's Double.toString gives
   * the same digits since JDK 19), printed positionally when the decimal exponent is in [-4, 16)
   * and in scientific form otherwise, always with a '.0' or an exponent.
   */
  public static String floatRepr(double d) {
    if (Double.isNaN(d)) {
      return "NaN";
    }
    if (Double.isInfinite(d)) {
      return d > 0 ? "Infinity" : "-Infinity";
    }
    if (d == 0) {
      return (Double.doubleToRawLongBits(d) < 0) ? "-0.0" : "0.0";
    }
    BigDecimal bd = new BigDecimal(Double.toString(Math.abs(d))).stripTrailingZeros();
    String digits = bd.unscaledValue().toString();
    // value = 0.digits * 10^decpt
    int decpt = digits.length() - bd.scale();
    StringBuilder sb = new StringBuilder(d < 0 ? "-" : "");
    if (decpt > -4 && decpt <= 16) {
      if (decpt <= 0) {
        sb.append("0.").append("0".repeat(-decpt)).append(digits);
      } else if (decpt >= digits.length()) {
        sb.append(digits).append("0".repeat(decpt - digits.length())).append(".0");
      } else {
        sb.append(digits, 0, decpt).append('.').append(digits.substring(decpt));
      }
    } else {
      sb.append(digits.charAt(0));
      if (digits.length() > 1) {
        sb.append('.').append(digits.substring(1));
      }
      int exp = decpt - 1;
      sb.append('e').append(exp < 0 ? '-' : '+');
      String e = Integer.toString(Math.abs(exp));
      sb.append(e.length() < 2 ? "0" + e : e);
    }
    return sb.toString();
  }
}
