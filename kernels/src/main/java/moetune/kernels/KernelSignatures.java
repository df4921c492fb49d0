package moetune.kernels;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The parameter list of every kernel in the fatbin, read from the very {@code .cu} sources nvcc
 * compiled into it (the kernels jar carries them under {@link #SOURCES}). The CUDA backend checks
 * each launch's labelled arguments against this table, so an argument passed in the wrong place, or
 * as an int where the kernel takes a {@code long long}, fails with a line naming the kernel and the
 * parameter instead of corrupting memory.
 *
 * <p>The reader knows exactly as much C as moetune's kernel files use: a kernel is declared with
 * {@code MT_KERNEL} (common.cuh's {@code extern "C" __global__}), optionally with {@code
 * __launch_bounds__(...)}, {@code __cluster_dims__(...)} or an object-like macro for one (a cluster
 * kernel's, as kernels/lab/moe variant 27 has) before its name; its parameter list may use
 * object-like macros ({@code WG_S2S_ARGS}), and a function-like macro whose body declares a kernel
 * ({@code FA2_FWD(name, ...)}) declares one per use. Files are read from {@code moetune.cu} through
 * its {@code #include "..."} lines, as nvcc reads them. {@code KernelSignaturesTest} checks the
 * table against the fatbin's own kernel list.
 */
public final class KernelSignatures {
  /** Where the kernel sources live on the class path (the kernels jar). */
  public static final String SOURCES = "/moetune/kernels/cuda/";

  /** The translation unit nvcc compiles. */
  public static final String ROOT = "moetune.cu";

  /** How a kernel parameter is passed. */
  public enum Kind {
    /** A device address (any pointer type): 8 bytes. */
    PTR,
    /** {@code int} or {@code unsigned}: 4 bytes. */
    INT,
    /** {@code long long} or {@code unsigned long long}: 8 bytes. */
    LONG,
    /** {@code float}: 4 bytes. */
    FLOAT,
    /** A struct of 4-byte fields passed by value ({@code AttnDims}). */
    STRUCT
  }

  /**
   * One parameter: its C name and type as written, how it is passed, and for a struct the number of
   * its 4-byte fields (0 otherwise).
   */
  public record Param(String name, String type, Kind kind, int fields) {
    @Override
    public String toString() {
      return type + " " + name;
    }
  }

  /** One kernel: its name, the file that declares it and its parameters in order. */
  public record Signature(String name, String file, List<Param> params) {
    /** {@code name (file.cu)}, for messages. */
    public String where() {
      return name + " (" + file + ")";
    }
  }

  private static volatile Map<String, Signature> loaded;

  private KernelSignatures() {}

  /** The table of the kernels in this jar's sources, read once. */
  public static Map<String, Signature> load() {
    Map<String, Signature> t = loaded;
    if (t == null) {
      t = parse(KernelSignatures::resource);
      loaded = t;
    }
    return t;
  }

  private static String resource(String file) {
    try (InputStream in = KernelSignatures.class.getResourceAsStream(SOURCES + file)) {
      if (in == null) {
        throw new IllegalStateException(
            "the kernels jar has no " + SOURCES + file + ": rebuild the kernels module");
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException("reading " + SOURCES + file + " from the kernels jar", e);
    }
  }

  private static final Pattern INCLUDE = Pattern.compile("^\\s*#\\s*include\\s+\"([^\"]+)\"");
  private static final Pattern DEFINE =
      Pattern.compile("^\\s*#\\s*define\\s+(\\w+)(\\(([^)]*)\\))?\\s*(.*)$", Pattern.DOTALL);
  private static final Pattern STRUCT = Pattern.compile("\\bstruct\\s+(\\w+)\\s*\\{([^}]*)\\}");
  private static final Pattern IDENT = Pattern.compile("[A-Za-z_]\\w*");

  private record Macro(String name, List<String> params, String body) {}

  /**
   * Reads the kernels declared by {@link #ROOT} and the files it includes; {@code files} gives a
   * file's text by its name relative to the sources folder.
   */
  public static Map<String, Signature> parse(Function<String, String> files) {
    Map<String, Macro> macros = new HashMap<>();
    Map<String, Integer> structs = new HashMap<>();
    // The driver's opaque TMA descriptor, passed by value as const __grid_constant__: 128 bytes,
    // which the host encodes (cuTensorMapEncodeTiled) and passes as 32 4-byte words.
    structs.put("CUtensorMap", 32);
    Map<String, Signature> out = new LinkedHashMap<>();
    read(ROOT, files, new HashSet<>(), macros, structs, out);
    return java.util.Collections.unmodifiableMap(out);
  }

  private static void read(
      String file,
      Function<String, String> files,
      Set<String> seen,
      Map<String, Macro> macros,
      Map<String, Integer> structs,
      Map<String, Signature> out) {
    if (!seen.add(file)) {
      return; // #pragma once
    }
    String text = joinContinuations(stripComments(files.apply(file)));
    StringBuilder code = new StringBuilder();
    for (String line : text.split("\n", -1)) {
      Matcher inc = INCLUDE.matcher(line);
      if (inc.find()) {
        // the included file's declarations come before the rest of this one, as in nvcc
        flush(file, code, macros, structs, out);
        read(inc.group(1), files, seen, macros, structs, out);
        continue;
      }
      Matcher def = DEFINE.matcher(line);
      if (def.find()) {
        List<String> params = null;
        if (def.group(2) != null) {
          params = new ArrayList<>();
          for (String p : def.group(3).split(",")) {
            if (!p.isBlank()) params.add(p.strip());
          }
        }
        macros.put(def.group(1), new Macro(def.group(1), params, def.group(4).strip()));
        continue;
      }
      if (line.strip().startsWith("#")) {
        continue; // #pragma, #if, #ifdef, #else, #endif, #undef: no kernel is declared there
      }
      code.append(line).append('\n');
    }
    flush(file, code, macros, structs, out);
  }

  /** Parses the code gathered so far in {@code file} and clears it. */
  private static void flush(
      String file,
      StringBuilder code,
      Map<String, Macro> macros,
      Map<String, Integer> structs,
      Map<String, Signature> out) {
    String c = expandKernelMacros(code.toString(), macros);
    code.setLength(0);
    Matcher s = STRUCT.matcher(c);
    while (s.find()) {
      structs.put(s.group(1), structFields(s.group(2)));
    }
    int at = 0;
    while ((at = nextToken(c, "MT_KERNEL", at)) >= 0) {
      at += "MT_KERNEL".length();
      Cursor cur = new Cursor(c, at);
      cur.expectWord("void", file);
      // attributes before the name: __launch_bounds__(...), __cluster_dims__(...), or an
      // object-like macro standing for one (clusters exist from sm_90 on, so a cluster kernel
      // spells __cluster_dims__ through a macro that is empty for older targets)
      for (String w = cur.peekWord(); ; w = cur.peekWord()) {
        if (w.equals("__launch_bounds__") || w.equals("__cluster_dims__")) {
          cur.word();
          cur.balanced(file);
        } else if (macros.containsKey(w) && macros.get(w).params() == null) {
          cur.word();
        } else {
          break;
        }
      }
      String name = cur.word();
      String params = cur.balanced(file);
      params = expandObjectMacros(params, macros);
      List<Param> list = new ArrayList<>();
      for (String p : splitTopLevel(params.substring(1, params.length() - 1))) {
        if (!p.isBlank()) list.add(param(file, name, p, structs));
      }
      Signature prev = out.put(name, new Signature(name, file, List.copyOf(list)));
      if (prev != null) {
        throw new IllegalStateException(
            "kernels: " + name + " is declared twice (" + prev.file() + " and " + file + ")");
      }
      at = cur.pos;
    }
  }

  private static Param param(String file, String kernel, String text, Map<String, Integer> types) {
    String t = text.replace("*", " * ").replace("&", " & ").strip().replaceAll("\\s+", " ");
    List<String> words = new ArrayList<>(List.of(t.split(" ")));
    String name = words.removeLast();
    if (!IDENT.matcher(name).matches()) {
      throw new IllegalStateException(
          "kernels: " + file + ": kernel " + kernel + " has a parameter without a name: " + text);
    }
    String type = String.join(" ", words);
    if (words.contains("*")) {
      return new Param(name, type, Kind.PTR, 0);
    }
    words.removeIf(
        w ->
            w.equals("const")
                || w.equals("volatile")
                || w.equals("__restrict__")
                || w.equals("__grid_constant__"));
    String base = String.join(" ", words);
    Kind kind =
        switch (base) {
          case "int", "unsigned", "unsigned int", "int32_t", "uint32_t" -> Kind.INT;
          case "long long", "unsigned long long", "long long int", "int64_t", "uint64_t" ->
              Kind.LONG;
          case "float" -> Kind.FLOAT;
          default -> types.containsKey(base) ? Kind.STRUCT : null;
        };
    if (kind == null) {
      throw new IllegalStateException(
          "kernels: "
              + file
              + ": kernel "
              + kernel
              + " parameter '"
              + name
              + "' has type '"
              + type
              + "', which KernelSignatures cannot pass (use a pointer, int, long long, float or a"
              + " struct of 4-byte fields)");
    }
    return new Param(name, type, kind, kind == Kind.STRUCT ? types.get(base) : 0);
  }

  /** The number of 4-byte fields of a struct body, or -1 if a field is not 4 bytes. */
  private static int structFields(String body) {
    int n = 0;
    for (String decl : body.split(";")) {
      String d = decl.strip().replaceAll("\\s+", " ");
      if (d.isEmpty()) continue;
      Matcher m = Pattern.compile("^(int|float|unsigned|unsigned int) (.+)$").matcher(d);
      if (!m.find() || m.group(2).contains("[") || m.group(2).contains("*")) {
        return -1;
      }
      n += m.group(2).split(",").length;
    }
    return n;
  }

  /** Expands the uses of function-like macros whose body declares a kernel. */
  private static String expandKernelMacros(String code, Map<String, Macro> macros) {
    for (Macro m : macros.values()) {
      if (m.params() == null || !m.body().contains("MT_KERNEL")) continue;
      StringBuilder sb = new StringBuilder();
      int from = 0, at;
      while ((at = nextToken(code, m.name(), from)) >= 0) {
        Cursor cur = new Cursor(code, at + m.name().length());
        if (cur.peekChar() != '(') {
          sb.append(code, from, cur.pos);
          from = cur.pos;
          continue;
        }
        String args = cur.balanced(m.name());
        List<String> values = splitTopLevel(args.substring(1, args.length() - 1));
        if (values.size() != m.params().size()) {
          throw new IllegalStateException(
              "kernels: macro " + m.name() + " used with " + values.size() + " arguments");
        }
        String body = m.body();
        for (int i = 0; i < values.size(); i++) {
          body =
              body.replaceAll(
                  "\\b" + Pattern.quote(m.params().get(i)) + "\\b",
                  Matcher.quoteReplacement(values.get(i).strip()));
        }
        sb.append(code, from, at).append(body);
        from = cur.pos;
      }
      sb.append(code.substring(from));
      code = sb.toString();
    }
    return code;
  }

  /** Expands object-like macros (a parameter list such as WG_S2S_ARGS) until none is left. */
  private static String expandObjectMacros(String text, Map<String, Macro> macros) {
    for (int round = 0; round < 16; round++) {
      StringBuilder sb = new StringBuilder();
      Matcher id = IDENT.matcher(text);
      int from = 0;
      boolean changed = false;
      while (id.find()) {
        Macro m = macros.get(id.group());
        if (m != null && m.params() == null) {
          sb.append(text, from, id.start()).append(m.body());
          from = id.end();
          changed = true;
        }
      }
      sb.append(text.substring(from));
      text = sb.toString();
      if (!changed) return text;
    }
    throw new IllegalStateException("kernels: macros expand without end in " + text);
  }

  /** Splits at commas outside parentheses and angle brackets. */
  private static List<String> splitTopLevel(String s) {
    List<String> parts = new ArrayList<>();
    int depth = 0, start = 0;
    for (int i = 0; i < s.length(); i++) {
      char ch = s.charAt(i);
      if (ch == '(' || ch == '<' || ch == '[') depth++;
      else if (ch == ')' || ch == '>' || ch == ']') depth--;
      else if (ch == ',' && depth == 0) {
        parts.add(s.substring(start, i));
        start = i + 1;
      }
    }
    parts.add(s.substring(start));
    return parts;
  }

  /** The index of the next occurrence of identifier {@code word} at or after {@code from}. */
  private static int nextToken(String s, String word, int from) {
    int at = from;
    while ((at = s.indexOf(word, at)) >= 0) {
      boolean before = at > 0 && isIdent(s.charAt(at - 1));
      int end = at + word.length();
      boolean after = end < s.length() && isIdent(s.charAt(end));
      if (!before && !after) return at;
      at = end;
    }
    return -1;
  }

  private static boolean isIdent(char c) {
    return Character.isLetterOrDigit(c) || c == '_';
  }

  private static String stripComments(String s) {
    StringBuilder sb = new StringBuilder(s.length());
    int i = 0;
    while (i < s.length()) {
      char c = s.charAt(i);
      if (c == '"' || c == '\'') {
        int j = i + 1;
        while (j < s.length() && s.charAt(j) != c) j += s.charAt(j) == '\\' ? 2 : 1;
        sb.append(s, i, Math.min(j + 1, s.length()));
        i = j + 1;
      } else if (s.startsWith("//", i)) {
        while (i < s.length() && s.charAt(i) != '\n') i++;
      } else if (s.startsWith("/*", i)) {
        int end = s.indexOf("*/", i + 2);
        String skipped = s.substring(i, end < 0 ? s.length() : end + 2);
        skipped.chars().filter(ch -> ch == '\n').forEach(ch -> sb.append('\n'));
        i = end < 0 ? s.length() : end + 2;
      } else {
        sb.append(c);
        i++;
      }
    }
    return sb.toString();
  }

  private static String joinContinuations(String s) {
    return s.replaceAll("\\\\\\r?\\n", " ");
  }

  /** A reading position in code. */
  private static final class Cursor {
    final String s;
    int pos;

    Cursor(String s, int pos) {
      this.s = s;
      this.pos = pos;
    }

    void skipSpace() {
      while (pos < s.length() && Character.isWhitespace(s.charAt(pos))) pos++;
    }

    char peekChar() {
      skipSpace();
      return pos < s.length() ? s.charAt(pos) : 0;
    }

    String peekWord() {
      int save = pos;
      String w = word();
      pos = save;
      return w;
    }

    String word() {
      skipSpace();
      int start = pos;
      while (pos < s.length() && isIdent(s.charAt(pos))) pos++;
      return s.substring(start, pos);
    }

    void expectWord(String w, String file) {
      String got = word();
      if (!got.equals(w)) {
        throw new IllegalStateException(
            "kernels: " + file + ": expected '" + w + "' after MT_KERNEL, found '" + got + "'");
      }
    }

    /** The balanced parenthesised text at the cursor, parentheses included. */
    String balanced(String where) {
      skipSpace();
      if (pos >= s.length() || s.charAt(pos) != '(') {
        throw new IllegalStateException("kernels: " + where + ": expected '(' at offset " + pos);
      }
      int depth = 0, start = pos;
      for (; pos < s.length(); pos++) {
        char c = s.charAt(pos);
        if (c == '(') depth++;
        else if (c == ')' && --depth == 0) {
          pos++;
          return s.substring(start, pos);
        }
      }
      throw new IllegalStateException("kernels: " + where + ": unbalanced '(' at offset " + start);
    }
  }
}
