package moetune.engine.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import moetune.kernels.KernelImage;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Proof in the build (issue 10, item 2): the sm_90a machine code of the MoE variant-3 kernels in
 * the shipped fatbin uses the Hopper tensor-core instruction (HGMMA) and touches no local memory
 * (no LDL/STL: nothing spilled), and that the warp-specialised variant-5 kernels load by TMA
 * (UTMALDG) and synchronise on mbarriers (SYNCS). Reads the SASS with the CUDA toolkit's cuobjdump,
 * so it runs where the toolkit is (the GPU host) and is skipped, saying so, elsewhere.
 */
@Tag("gpu")
class MoeSassTest {
  static final List<String> WGMMA_KERNELS =
      List.of(
          "scatter2scatter_wgmma_n256_kernel3",
          "scatter2scatter_wgmma_n128_kernel3",
          "group_xty_wgmma_n256_kernel3",
          "group_xty_wgmma_n128_kernel3");

  /**
   * Variants 5, 7, 10, 11, 13, 14, 15, 16 and later (moe_wgmma_ws.cu): every one loads its weight
   * tile (or both dW operands) by TMA.
   */
  static final List<String> TMA_KERNELS =
      java.util.stream.Stream.concat(
              java.util.stream.Stream.of("256", "128")
                  .flatMap(
                      bn ->
                          java.util.stream.Stream.concat(
                              java.util.stream.Stream.of("tg", "tc", "ng", "nc")
                                  .map(m -> "scatter2scatter_ws" + bn + "_" + m + "_kernel5"),
                              java.util.stream.Stream.of(
                                  "group_xty_ws" + bn + "_kernel5",
                                  "group_xty_ws" + bn + "_red_kernel7"))),
              // variants 10 and 11: SwiGLU (and the gates) in the epilogue
              java.util.stream.Stream.of(
                  "scatter2scatter_ws256_tg_glu_kernel10",
                  "scatter2scatter_ws256_ng_glubwd_kernel10",
                  "scatter2scatter_ws256_tg_glu_kernel11",
                  "scatter2scatter_ws256_ng_glubwd_kernel11",
                  // variant 13: variant 11's backward epilogue double-buffered
                  "scatter2scatter_ws256_ng_glubwd_kernel13",
                  // variant 15: variant 11's forward epilogue double-buffered
                  "scatter2scatter_ws256_tg_glu_kernel15",
                  // variant 39 (family v54): kernel15's stores issued by the producer's thread
                  "scatter2scatter_ws256_tg_glu_kernel39",
                  // variant 56 (AUTO's since session 49): the SwiGLU backward's factors saved in
                  // h's place
                  "scatter2scatter_ws256_tg_glu_fac_kernel56",
                  "scatter2scatter_ws256_nc_glubwd_fac_kernel56",
                  // variants 62-66: kernel56's dX2 and first product on ping-pong warpgroups
                  "scatter2scatter_ws256_nc_glubwd_fac_pp_kernel62",
                  "scatter2scatter_ws256_nc_glubwd_fac_pp_kernel63",
                  "scatter2scatter_ws256_tg_glu_fac_pp_kernel64",
                  "scatter2scatter_ws128_nc_glubwd_fac_pp_kernel65",
                  "scatter2scatter_ws128_tg_glu_fac_pp_kernel66",
                  // variant 14: float32 dW added by TMA reductions
                  "group_xty_ws256_tmar_kernel14",
                  // variant 42: variant 14 in clusters of two sharing the x tile by multicast
                  "group_xty_ws256_tmar_mc_kernel42",
                  // variant 16: the plain products' epilogue through shared memory
                  "scatter2scatter_ws256_tg_st_kernel16",
                  "scatter2scatter_ws256_tc_st_kernel16",
                  "scatter2scatter_ws256_ng_st_kernel16",
                  "scatter2scatter_ws256_nc_st_kernel16",
                  // variant 25: variant 13's rounds batched
                  "scatter2scatter_ws256_ng_glubwd_kernel25"))
          .toList();

  @Test
  void sm90aMoeKernelsUseHgmmaAndDoNotSpill() throws Exception {
    Path cuobjdump = findCuobjdump();
    Assumptions.assumeTrue(
        cuobjdump != null,
        "SKIPPED: no cuobjdump (CUDA toolkit) on PATH, CUDA_HOME or /usr/local/cuda*: the SASS"
            + " of the sm_90a MoE kernels was not checked");
    Assumptions.assumeTrue(KernelImage.isBuilt(), "SKIPPED: the kernels were not built (no nvcc)");
    Path fatbin = Files.createTempFile("moetune", ".fatbin");
    try {
      Files.write(fatbin, KernelImage.fatbin());
      Map<String, String> sass = sassByFunction(run(cuobjdump, "-sass", "-arch", "sm_90a", fatbin));
      for (String k :
          java.util.stream.Stream.concat(WGMMA_KERNELS.stream(), TMA_KERNELS.stream()).toList()) {
        String code = sass.get(k);
        assertTrue(
            code != null, k + " is missing from the sm_90a SASS; functions: " + sass.keySet());
        assertTrue(code.contains("HGMMA"), k + ": no HGMMA in its sm_90a SASS");
        assertFalse(
            Pattern.compile("\\b(LDL|STL)\\b").matcher(code).find(),
            k + ": local-memory loads/stores (spills) in its sm_90a SASS");
      }
      for (String k : TMA_KERNELS) {
        String code = sass.get(k);
        assertTrue(code.contains("UTMALDG"), k + ": no UTMALDG (TMA load) in its sm_90a SASS");
        assertTrue(code.contains("SYNCS"), k + ": no mbarrier (SYNCS) in its sm_90a SASS");
        // variant 7: the float32 epilogue adds in L2 (RED / REDG), variant 5 loads and stores (the
        // opcode, not a modifier: a cluster kernel's remote mbarrier arrive is
        // SYNCS.ARRIVE.TRANS64.RED, kernels/lab/moe variant 27)
        assertEquals(
            k.contains("_red_"),
            Pattern.compile("(?<![.\\w])REDG?\\.").matcher(code).find(),
            k + ": a global reduction (RED) in its sm_90a SASS only for the _red_ kernels");
      }
      // variants 11, 13 and 15 write their full tiles (h and a; dH) by TMA store, variant 14 adds
      // its dW tiles by TMA reduction
      for (String k :
          java.util.stream.Stream.concat(
                  java.util.stream.Stream.of(
                      "scatter2scatter_ws256_tg_glu_kernel11",
                      "scatter2scatter_ws256_tg_glu_kernel15",
                      "scatter2scatter_ws256_tg_glu_kernel39",
                      "scatter2scatter_ws256_tg_glu_fac_kernel56",
                      "scatter2scatter_ws256_tg_glu_fac_pp_kernel64",
                      "scatter2scatter_ws128_tg_glu_fac_pp_kernel66"),
                  java.util.stream.Stream.concat(
                      CudaScatterMoe.gluBackwardKernelNames().stream(),
                      CudaScatterMoe.gluFactorsBackwardKernelNames().stream()))
              .toList()) {
        assertTrue(sass.get(k).contains("UTMASTG"), k + ": no UTMASTG (TMA store) in its SASS");
      }
      for (String k : CudaScatterMoe.groupXtYTmaKernelNames()) {
        assertTrue(
            sass.get(k).contains("UTMAREDG"), k + ": no UTMAREDG (TMA reduction) in its SASS");
        // variant 48: the tiles of a dW the launch writes go by TMA store
        assertTrue(sass.get(k).contains("UTMASTG"), k + ": no UTMASTG (TMA store) in its SASS");
      }
      // variant 16 writes its tiles into shared memory by stmatrix (STSM) and stores them in
      // 16-byte
      // row pieces (STG.E.128)
      for (String k : TMA_KERNELS.stream().filter(n -> n.endsWith("_st_kernel16")).toList()) {
        assertTrue(sass.get(k).contains("STSM"), k + ": no STSM (stmatrix) in its SASS");
        assertTrue(sass.get(k).contains("STG.E.128"), k + ": no 16-byte global stores in its SASS");
      }
      // the sm_80 build of the same kernels is a trap, never run (CudaScatterMoe launches them on
      // 9.0)
      Map<String, String> sm80 = sassByFunction(run(cuobjdump, "-sass", "-arch", "sm_80", fatbin));
      for (String k :
          java.util.stream.Stream.concat(WGMMA_KERNELS.stream(), TMA_KERNELS.stream()).toList()) {
        assertFalse(sm80.getOrDefault(k, "").contains("HGMMA"), k + " has HGMMA for sm_80");
      }
    } finally {
      Files.deleteIfExists(fatbin);
    }
  }

  /** Splits cuobjdump's listing into functions ("Function : name" headers). */
  static Map<String, String> sassByFunction(String listing) {
    Map<String, String> out = new LinkedHashMap<>();
    Matcher m = Pattern.compile("(?m)^\\s*Function\\s*:\\s*(\\S+)\\s*$").matcher(listing);
    List<int[]> starts = new ArrayList<>();
    List<String> names = new ArrayList<>();
    while (m.find()) {
      starts.add(new int[] {m.start(), m.end()});
      names.add(m.group(1));
    }
    for (int i = 0; i < names.size(); i++) {
      int end = i + 1 < names.size() ? starts.get(i + 1)[0] : listing.length();
      out.merge(names.get(i), listing.substring(starts.get(i)[1], end), String::concat);
    }
    return out;
  }

  @Test
  void listingSplitsIntoFunctions() {
    String listing =
        "\tcode for sm_90a\n\t\tFunction : a_kernel\n\tHGMMA.64x128x16.F32.BF16 R24, gdesc[UR4]\n"
            + "\t\tFunction : b_kernel\n\tSTL [R1], R2 ;\n";
    Map<String, String> f = sassByFunction(listing);
    assertEquals(List.of("a_kernel", "b_kernel"), new ArrayList<>(f.keySet()));
    assertTrue(f.get("a_kernel").contains("HGMMA") && !f.get("a_kernel").contains("STL"));
    assertTrue(f.get("b_kernel").contains("STL"));
  }

  private static Path findCuobjdump() {
    List<String> dirs = new ArrayList<>();
    String cudaHome = System.getenv("CUDA_HOME");
    if (cudaHome != null) dirs.add(cudaHome + "/bin");
    String path = System.getenv("PATH");
    if (path != null) dirs.addAll(List.of(path.split(File.pathSeparator)));
    dirs.add("/usr/local/cuda/bin");
    File[] versions = new File("/usr/local").listFiles((d, n) -> n.startsWith("cuda-"));
    if (versions != null) for (File v : versions) dirs.add(v + "/bin");
    for (String d : dirs) {
      Path p = Path.of(d, "cuobjdump");
      if (Files.isExecutable(p)) return p;
    }
    return null;
  }

  private static String run(Path exe, String a, String b, String c, Path file)
      throws IOException, InterruptedException {
    Process p =
        new ProcessBuilder(exe.toString(), a, b, c, file.toString())
            .redirectErrorStream(true)
            .start();
    byte[] out = p.getInputStream().readAllBytes();
    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "cuobjdump did not finish");
    String s = new String(out, StandardCharsets.UTF_8);
    assertEquals(0, p.exitValue(), "cuobjdump " + a + " " + b + " " + c + ": " + s);
    return s;
  }
}
