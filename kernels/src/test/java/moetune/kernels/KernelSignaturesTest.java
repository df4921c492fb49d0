package moetune.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import moetune.kernels.KernelSignatures.Kind;
import moetune.kernels.KernelSignatures.Signature;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** The signature table read from the bundled .cu sources matches the kernels nvcc compiled. */
class KernelSignaturesTest {

  private static String describe(Signature s) {
    StringBuilder sb = new StringBuilder();
    for (KernelSignatures.Param p : s.params()) {
      if (!sb.isEmpty()) sb.append(", ");
      sb.append(p.kind()).append(' ').append(p.name());
    }
    return sb.toString();
  }

  @Test
  void plainKernelsAreReadWithTheirParameterKinds() {
    Map<String, Signature> t = KernelSignatures.load();
    Signature rms = t.get("rmsnorm_forward_kernel");
    assertEquals("rmsnorm.cu", rms.file());
    assertEquals(
        "PTR residual, INT rdt, PTR delta, INT ddt, PTR w, INT wdt, FLOAT eps, PTR out, INT odt,"
            + " PTR rstd, INT D",
        describe(rms));
    assertEquals(
        "PTR x, INT dt, LONG seed, FLOAT std, LONG n", describe(t.get("random_normal_kernel")));
    assertEquals(
        "FLOAT alpha, PTR src, INT sdt, PTR dst, INT ddt, LONG n", describe(t.get("axpy_kernel")));
  }

  @Test
  void kernelsDeclaredThroughMacrosAreExpanded() {
    Map<String, Signature> t = KernelSignatures.load();
    // FA2_FWD(name, ...) declares one kernel per use; AttnDims is a struct of 8 4-byte fields
    Signature fwd = t.get("attention_fa2_forward_v1_hd128");
    assertEquals("attention_fa2.cu", fwd.file());
    assertEquals("PTR q, PTR k, PTR v, PTR out, PTR lse, PTR doc, STRUCT a", describe(fwd));
    assertEquals(8, fwd.params().getLast().fields());
    // the wgmma kernels' parameters come from the object-like macro WG_S2S_ARGS
    Signature wg = t.get("scatter2scatter_wgmma_n256_kernel3");
    assertEquals("moe_wgmma.cu", wg.file());
    assertEquals(17, wg.params().size(), describe(wg));
    assertEquals("lboB", wg.params().getLast().name());
    assertEquals(Kind.INT, wg.params().getLast().kind());
  }

  /**
   * Every kernel in the fatbin (an ELF section {@code .text.NAME} per extern "C" kernel in each
   * cubin) is in the table and every table entry is in the fatbin, so the table cannot drift from
   * what nvcc built.
   */
  @Test
  void tableNamesExactlyTheFatbinsKernels() {
    Assumptions.assumeTrue(
        KernelImage.isBuilt(), "no fatbin in this build (no nvcc): nothing to compare against");
    String image = new String(KernelImage.fatbin(), StandardCharsets.ISO_8859_1);
    Set<String> inFatbin = new TreeSet<>();
    Matcher m = Pattern.compile("\\.text\\.([A-Za-z_][A-Za-z0-9_]*)").matcher(image);
    while (m.find()) {
      if (!m.group(1).startsWith("_Z")) inFatbin.add(m.group(1)); // C++-mangled device functions
    }
    assertTrue(inFatbin.size() > 40, "kernels found in the fatbin: " + inFatbin);
    assertEquals(inFatbin, new TreeSet<>(KernelSignatures.load().keySet()));
  }

  @Test
  void anUnknownParameterTypeIsNamedWithItsFileAndKernel() {
    Map<String, String> files =
        Map.of(
            "moetune.cu",
            "#include \"a.cu\"\n",
            "a.cu",
            "#define MT_KERNEL extern \"C\" __global__\n"
                + "MT_KERNEL void k(const float* x, double y) {}\n");
    IllegalStateException e =
        assertThrows(IllegalStateException.class, () -> KernelSignatures.parse(files::get));
    assertTrue(
        e.getMessage().startsWith("kernels: a.cu: kernel k parameter 'y' has type 'double'"),
        e.getMessage());
  }

  @Test
  void commentsDirectivesAndLaunchBoundsAreSkipped() {
    Map<String, String> files =
        Map.of(
            "moetune.cu",
            "// MT_KERNEL void not_a_kernel(int a)\n#include \"a.cu\"\n#include \"a.cu\"\n",
            "a.cu",
            "#pragma once\n#define ARGS int n, \\\n  float s\n"
                + "/* MT_KERNEL void nor_this(int b) */\n"
                + "MT_KERNEL void __launch_bounds__(256, 2)\n  k(long long m, ARGS) {}\n");
    Map<String, Signature> t = KernelSignatures.parse(files::get);
    assertEquals(List.of("k"), List.copyOf(t.keySet()));
    assertEquals("LONG m, INT n, FLOAT s", describe(t.get("k")));
  }

  @Test
  void clusterDimsAndAttributeMacrosBeforeTheNameAreSkipped() {
    // a cluster kernel (kernels/lab/moe variant 27): __cluster_dims__ only exists from sm_90 on,
    // so the kernel file spells it through a macro that is empty for older targets
    Map<String, String> files =
        Map.of(
            "moetune.cu",
            "#include \"a.cu\"\n",
            "a.cu",
            "#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900\n"
                + "#define CLUSTER2 __cluster_dims__(2, 1, 1)\n#else\n#define CLUSTER2\n#endif\n"
                + "MT_KERNEL void CLUSTER2 __launch_bounds__(384, 1) k(int n) {}\n"
                + "MT_KERNEL void __cluster_dims__(2, 1, 1) j(float* y) {}\n");
    Map<String, Signature> t = KernelSignatures.parse(files::get);
    assertEquals(java.util.Set.of("k", "j"), t.keySet());
    assertEquals("INT n", describe(t.get("k")));
    assertEquals("PTR y", describe(t.get("j")));
  }
}
