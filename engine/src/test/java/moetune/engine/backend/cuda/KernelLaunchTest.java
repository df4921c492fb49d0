package moetune.engine.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import moetune.kernels.KernelSignatures;
import moetune.kernels.KernelSignatures.Param;
import moetune.kernels.KernelSignatures.Signature;
import org.junit.jupiter.api.Test;

/**
 * The launch builder's checks against the kernels' signature table run before anything reaches the
 * driver, so they are tested here without a GPU (no module: a launch that passes them would need
 * one).
 */
class KernelLaunchTest {

  private static KernelLaunch launch(String kernel) {
    return new KernelLaunch(null, KernelSignatures.load().get(kernel), null);
  }

  @Test
  void anArgumentPassedInTheWrongPlaceNamesTheKernelAndTheParameter() {
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class, () -> launch("scale_kernel").ptr("x", 0L).f32("s", 2f));
    assertEquals(
        "kernel scale_kernel (elementwise.cu): argument 2 is passed as f32 's' but the kernel"
            + " declares parameter 2 as 'int dt' (i32)",
        e.getMessage());
  }

  @Test
  void anIntWhereTheKernelTakesALongLongFails() {
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class,
            () -> launch("scale_kernel").ptr("x", 0L).i32("dt", 0).f32("s", 2f).i32("n", 7));
    assertEquals(
        "kernel scale_kernel (elementwise.cu): argument 4 is passed as i32 'n' but the kernel"
            + " declares parameter 4 as 'long long n' (i64)",
        e.getMessage());
  }

  @Test
  void aMissingOrExtraArgumentIsNamed() {
    IllegalStateException missing =
        assertThrows(
            IllegalStateException.class,
            () -> launch("scale_kernel").grid(1).block(256).ptr("x", 0L).i32("dt", 0).launch());
    assertEquals(
        "kernel scale_kernel (elementwise.cu) takes 4 arguments; the launch passes 2, missing"
            + " 'float s'",
        missing.getMessage());
    IllegalStateException extra =
        assertThrows(
            IllegalStateException.class,
            () ->
                launch("scale_kernel")
                    .ptr("x", 0L)
                    .i32("dt", 0)
                    .f32("s", 1f)
                    .i64("n", 1)
                    .i32("more", 1));
    assertEquals(
        "kernel scale_kernel (elementwise.cu) takes 4 arguments; the launch passes more: 'more'",
        extra.getMessage());
  }

  @Test
  void aStructMustHaveTheKernelsFieldCount() {
    KernelLaunch l =
        launch("attention_fa2_forward_hd64")
            .ptr("q", 0L)
            .ptr("k", 0L)
            .ptr("v", 0L)
            .ptr("out", 0L)
            .ptr("lse", 0L)
            .ptr("doc", 0L);
    IllegalStateException e =
        assertThrows(IllegalStateException.class, () -> l.struct("a", new int[7]));
    assertEquals(
        "kernel attention_fa2_forward_hd64 (attention_fa2.cu): struct argument 'a' has 7 fields,"
            + " the kernel's AttnDims has 8",
        e.getMessage());
  }

  /**
   * Every launch in the CUDA op classes passes exactly its kernel's parameters, so a wrong label
   * shows up here on the CPU and not first on a GPU. A launch is one chain ({@code
   * ctx.kernel(name)...launch()}) or a split one ({@code KernelLaunch l}: a head chosen by a
   * condition, a shared chain, a tail chosen by the same condition, {@code l.launch()}; see {@link
   * SplitLaunch}). Its kernel name is a literal, a {@code ?:} choice between literals, or a call of
   * a static method {@code fooKernel(...)} of the op class whose companion {@code fooKernelNames()}
   * lists every name it can give (the variant and tile suffixes): the launch is checked against
   * each. A name computed any other way fails here.
   */
  @Test
  void everyLaunchInTheOpClassesMatchesItsKernel() throws Exception {
    Map<String, Signature> table = KernelSignatures.load();
    List<String> problems = new ArrayList<>();
    int checked = 0;
    Path dir = Path.of("src/main/java/moetune/engine/backend/cuda");
    try (Stream<Path> files = Files.list(dir)) {
      for (Path f : files.filter(p -> p.toString().endsWith(".java")).sorted().toList()) {
        String src = Files.readString(f);
        String file = f.getFileName().toString();
        String owner = getClass().getPackageName() + "." + file.replace(".java", "");
        List<int[]> splitSpans = new ArrayList<>();
        for (SplitLaunch split : SplitLaunch.find(src, problems, file, splitSpans)) {
          for (SplitLaunch.Branch branch : split.branches()) {
            for (String name : kernelNames(owner, branch.nameExpr(), problems, file)) {
              checked += check(table, file, name, branch.args(), problems);
            }
          }
        }
        Matcher m = KERNEL.matcher(src);
        while (m.find()) {
          String line = src.substring(src.lastIndexOf('\n', m.start()) + 1, m.start()).strip();
          if (line.startsWith("*")
              || line.startsWith("//")
              || line.startsWith("return ")
              || inside(splitSpans, m.start())) {
            continue; // a comment's example, a factory passing the name on, a split launch's part
          }
          int close = closing(src, m.end() - 1);
          String nameExpr = src.substring(m.end(), close);
          if (!m.group().startsWith(".")) { // a launch helper: the name is its first argument
            nameExpr = nameExpr.substring(0, SplitLaunch.topLevel(nameExpr + ",", ',', 0));
          }
          String chain = src.substring(close + 1, src.indexOf(';', close));
          if (!chain.strip().endsWith(".launch()")) {
            problems.add(file + ": a launch of " + nameExpr + " is neither one chain nor split");
            continue;
          }
          for (String name : kernelNames(owner, nameExpr, problems, file)) {
            checked += check(table, file, name, args(chain), problems);
          }
        }
      }
    }
    System.out.println("KernelLaunchTest: " + checked + " (kernel name, launch) pairs checked");
    assertEquals(List.of(), problems);
    assertTrue(checked > 60, "launches checked: " + checked);
  }

  /**
   * A launch's start: {@code .kernel(name)}, or a launch helper of the op class, {@code
   * fooLaunch(name, ...)} returning the {@code KernelLaunch} it began with {@code kernel(name)}
   * (its own {@code return ...kernel(name)} line is skipped), whose first argument is the name.
   */
  private static final Pattern KERNEL =
      Pattern.compile("\\.kernel\\(|(?<![\\w.])\\w+Launch\\((?=\\s*(\\w+Kernel\\(|\"))");

  private static final Pattern LITERAL = Pattern.compile("\"([A-Za-z0-9_]+)\"");
  private static final Pattern ARG =
      Pattern.compile("\\.(ptr|i32|i64|f32|struct)\\(\\s*\"([^\"]+)\"");
  private static final Pattern NAME_CALL =
      Pattern.compile("\\s*(\\w+Kernel)\\((.*)\\)\\s*", Pattern.DOTALL);

  /** The kernel names a launch's name expression can give (see the test's javadoc). */
  private static List<String> kernelNames(
      String owner, String nameExpr, List<String> problems, String file) throws Exception {
    Matcher call = NAME_CALL.matcher(nameExpr);
    if (call.matches()) {
      Method names;
      try {
        Class<?> c = Class.forName(owner, false, KernelLaunchTest.class.getClassLoader());
        names = c.getDeclaredMethod(call.group(1) + "Names");
      } catch (NoSuchMethodException e) {
        problems.add(file + ": " + call.group(1) + "(...) has no " + call.group(1) + "Names()");
        return List.of();
      }
      names.setAccessible(true);
      @SuppressWarnings("unchecked")
      List<String> all = (List<String>) names.invoke(null);
      if (all.isEmpty()) problems.add(file + ": " + call.group(1) + "Names() lists no kernel");
      return all;
    }
    List<String> literals = new ArrayList<>();
    Matcher n = LITERAL.matcher(nameExpr);
    while (n.find()) literals.add(n.group(1));
    if (literals.isEmpty() || nameExpr.contains("+")) {
      problems.add(
          file
              + ": kernel name '"
              + nameExpr.strip()
              + "' is computed: build it in a static fooKernel(...) with a fooKernelNames()");
      return List.of();
    }
    return literals;
  }

  /** The labelled arguments of a chain, as "kind label". */
  private static List<String> args(String chain) {
    List<String> given = new ArrayList<>();
    Matcher a = ARG.matcher(chain);
    while (a.find()) given.add(a.group(1) + " " + a.group(2));
    return given;
  }

  private static int check(
      Map<String, Signature> table,
      String file,
      String name,
      List<String> given,
      List<String> problems) {
    Signature sig = table.get(name);
    if (sig == null) {
      problems.add(file + ": no kernel " + name);
      return 0;
    }
    List<String> want = new ArrayList<>();
    for (Param p : sig.params()) want.add(kindWord(p) + " " + p.name());
    if (!want.equals(given)) {
      problems.add(file + ": " + sig.where() + " takes " + want + ", given " + given);
    }
    return 1;
  }

  private static boolean inside(List<int[]> spans, int at) {
    for (int[] s : spans) if (at >= s[0] && at < s[1]) return true;
    return false;
  }

  /** The index of the bracket closing the one at {@code open} ('(' or '{'). */
  static int closing(String src, int open) {
    char o = src.charAt(open), c = o == '(' ? ')' : '}';
    int depth = 0;
    for (int i = open; i < src.length(); i++) {
      if (src.charAt(i) == o) depth++;
      else if (src.charAt(i) == c && --depth == 0) return i;
    }
    throw new IllegalArgumentException("unbalanced " + o + " at " + open);
  }

  /**
   * A launch split over statements of a {@code KernelLaunch x}: a head, {@code x = C ? A : B;} or
   * {@code if (C) { ... x = A; } else { ... x = B; }}; a shared chain {@code x.args...;}; an
   * optional tail chosen by the same condition, {@code if (C) x.arg; else x.arg;} or {@code if (C)
   * { x.arg; }}; then {@code x.launch();}. Each branch is the head's alternative, the shared chain
   * and that branch's tail, in order.
   */
  record SplitLaunch(List<Branch> branches) {
    record Branch(String nameExpr, List<String> args) {}

    static List<SplitLaunch> find(
        String src, List<String> problems, String file, List<int[]> spans) {
      List<SplitLaunch> found = new ArrayList<>();
      Matcher d = Pattern.compile("KernelLaunch (\\w+)( =|;)").matcher(src);
      while (d.find()) {
        String x = d.group(1);
        int end = src.indexOf(x + ".launch();", d.end());
        if (src.lastIndexOf('\n', d.start()) < 0 || end < 0) continue;
        spans.add(new int[] {d.start(), end});
        String body = src.substring(d.start(), end);
        String cond;
        String[] alts;
        int after;
        if (d.group(2).equals(" =")) {
          int semi = topLevel(body, ';', 0);
          String rhs = body.substring(body.indexOf('=') + 1, semi);
          int q = topLevel(rhs, '?', 0), colon = topLevel(rhs, ':', q);
          cond = rhs.substring(0, q).strip();
          alts = new String[] {rhs.substring(q + 1, colon), rhs.substring(colon + 1)};
          after = semi + 1;
        } else {
          int ifAt = body.indexOf("if (");
          int condEnd = closing(body, ifAt + 3);
          cond = body.substring(ifAt + 4, condEnd).strip();
          int thenOpen = body.indexOf('{', condEnd), thenEnd = closing(body, thenOpen);
          int elseOpen = body.indexOf('{', thenEnd), elseEnd = closing(body, elseOpen);
          alts =
              new String[] {
                assigned(body.substring(thenOpen, thenEnd), x),
                assigned(body.substring(elseOpen, elseEnd), x)
              };
          after = elseEnd + 1;
        }
        String rest = body.substring(after);
        int sharedAt = rest.indexOf(x + ".");
        int sharedEnd = topLevel(rest, ';', sharedAt);
        List<String> shared = args(rest.substring(sharedAt, sharedEnd));
        String tail = rest.substring(sharedEnd + 1).strip();
        List<List<String>> tails = List.of(List.of(), List.of());
        if (!tail.isEmpty()) {
          Matcher t = Pattern.compile("if \\((.*?)\\)\\s*(.*)", Pattern.DOTALL).matcher(tail);
          if (!t.matches() || !t.group(1).strip().equals(cond)) {
            problems.add(file + ": split launch of " + x + ": tail not chosen by '" + cond + "'");
            continue;
          }
          String[] parts = t.group(2).split("\\belse\\b", 2);
          tails = List.of(args(parts[0]), parts.length > 1 ? args(parts[1]) : List.of());
        }
        List<Branch> branches = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
          int k = alts[i].indexOf(".kernel(");
          int close = closing(alts[i], k + 7);
          List<String> all = new ArrayList<>(args(alts[i].substring(close)));
          all.addAll(shared);
          all.addAll(tails.get(i));
          branches.add(new Branch(alts[i].substring(k + 8, close), all));
        }
        found.add(new SplitLaunch(branches));
      }
      return found;
    }

    /** The right-hand side of {@code x = ...;} in a block. */
    private static String assigned(String block, String x) {
      Matcher a = Pattern.compile("\\b" + x + " =").matcher(block);
      if (!a.find()) throw new IllegalArgumentException("no assignment to " + x + " in " + block);
      return block.substring(a.end(), topLevel(block, ';', a.end()));
    }

    /** The first {@code c} at bracket depth 0 from {@code from}, string literals skipped. */
    private static int topLevel(String s, char c, int from) {
      int depth = 0;
      boolean str = false;
      for (int i = from; i < s.length(); i++) {
        char ch = s.charAt(i);
        if (ch == '"') str = !str;
        if (str) continue;
        if (ch == '(' || ch == '{' || ch == '[') depth++;
        else if (ch == ')' || ch == '}' || ch == ']') depth--;
        else if (ch == c && depth == 0) return i;
      }
      throw new IllegalArgumentException("no top-level '" + c + "' after " + from);
    }
  }

  private static String kindWord(Param p) {
    return switch (p.kind()) {
      case PTR -> "ptr";
      case INT -> "i32";
      case LONG -> "i64";
      case FLOAT -> "f32";
      case STRUCT -> "struct";
    };
  }
}
