package moetune.engine.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
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
   * Every launch written as one chain in the CUDA op classes ({@code ctx.kernel("name")...launch()}
   * with literal kernel names, a {@code ?:} choice between literals included) passes exactly the
   * kernel's parameters, so a wrong label shows up here on the CPU and not first on a GPU. Launches
   * whose kernel name is computed, or whose chain is split, are checked when they run.
   */
  @Test
  void everyLaunchChainInTheOpClassesMatchesItsKernel() throws IOException {
    Map<String, Signature> table = KernelSignatures.load();
    Pattern start = Pattern.compile("\\.kernel\\(");
    Pattern literal = Pattern.compile("\"([A-Za-z0-9_]+)\"");
    Pattern arg = Pattern.compile("\\.(ptr|i32|i64|f32|struct)\\(\\s*\"([^\"]+)\"");
    List<String> problems = new ArrayList<>();
    int checked = 0;
    Path dir = Path.of("src/main/java/moetune/engine/backend/cuda");
    try (Stream<Path> files = Files.list(dir)) {
      for (Path f : files.filter(p -> p.toString().endsWith(".java")).sorted().toList()) {
        String src = Files.readString(f);
        Matcher m = start.matcher(src);
        while (m.find()) {
          String line = src.substring(src.lastIndexOf('\n', m.start()) + 1, m.start()).strip();
          if (line.startsWith("*") || line.startsWith("//")) {
            continue; // an example in a comment
          }
          int open = m.end(), depth = 1, i = open;
          while (depth > 0) {
            char c = src.charAt(i++);
            if (c == '(') depth++;
            else if (c == ')') depth--;
          }
          String nameExpr = src.substring(open, i - 1);
          int end = src.indexOf(';', i);
          String chain = src.substring(i, end);
          if (nameExpr.contains("+") || !chain.strip().endsWith(".launch()")) {
            continue; // a computed name or a split chain: checked at run time
          }
          List<String> given = new ArrayList<>();
          Matcher a = arg.matcher(chain);
          while (a.find()) given.add(a.group(1) + " " + a.group(2));
          Matcher n = literal.matcher(nameExpr);
          while (n.find()) {
            Signature sig = table.get(n.group(1));
            if (sig == null) {
              problems.add(f.getFileName() + ": no kernel " + n.group(1));
              continue;
            }
            List<String> want = new ArrayList<>();
            for (Param p : sig.params()) want.add(kindWord(p) + " " + p.name());
            if (!want.equals(given)) {
              problems.add(
                  f.getFileName() + ": " + sig.where() + " takes " + want + ", given " + given);
            }
            checked++;
          }
        }
      }
    }
    assertEquals(List.of(), problems);
    assertTrue(checked > 40, "launch chains checked: " + checked);
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
