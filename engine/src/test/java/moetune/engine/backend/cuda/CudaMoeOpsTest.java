package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.GpuTesting.check;
import static moetune.engine.backend.cuda.GpuTesting.checkInts;
import static moetune.engine.backend.cuda.GpuTesting.compare;
import static moetune.engine.backend.cuda.GpuTesting.cpu;
import static moetune.engine.backend.cuda.GpuTesting.floats;
import static moetune.engine.backend.cuda.GpuTesting.gpu;
import static moetune.engine.backend.cuda.GpuTesting.ints;
import static moetune.engine.backend.cuda.GpuTesting.poisoned;
import static moetune.engine.backend.cuda.GpuTesting.poisonedInts;
import static moetune.engine.backend.cuda.GpuTesting.randn;
import static moetune.engine.backend.cuda.GpuTesting.routing;
import static moetune.engine.backend.cuda.GpuTesting.sync;
import static moetune.engine.backend.cuda.GpuTesting.tol;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.function.Function;
import moetune.engine.backend.Backend;
import moetune.engine.backend.cuda.GpuTesting.Pair;
import moetune.engine.moe.MoeMlp;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Routing and the ScatterMoE kernels on the GPU against the CPU oracle: top-k 1..4, 1 and 37 tokens
 * (and 300 to span several row tiles), hidden 100, experts that get no rows, and every row on one
 * expert.
 */
@Tag("gpu")
class CudaMoeOpsTest {
  private static final int E = 6;

  /** Routing scenarios: {tokens, k, allowed experts...}. */
  private static final int[][] ROUTES = {
    {37, 2, 0, 1, 2, 3, 4, 5},
    {37, 4, 0, 2, 3, 5}, // experts 1 and 4 get no rows
    {1, 3, 0, 1, 2, 3, 4, 5},
    {37, 1, 3}, // every row on expert 3
    {300, 2, 1, 2, 4, 5},
    {64, 1, 0, 5},
  };

  /** Sorted routing on both backends (computed by the CPU's flattenSortCount from topIdx). */
  private record Route(int n, int k, Pair topIdx, Pair sortedExp, Pair sortedScat, Pair offsets)
      implements AutoCloseable {
    @Override
    public void close() {
      topIdx.close();
      sortedExp.close();
      sortedScat.close();
      offsets.close();
    }
  }

  private static Route route(int[] spec) {
    int n = spec[0], k = spec[1];
    int[] allowed = java.util.Arrays.copyOfRange(spec, 2, spec.length);
    Pair top = ints(routing(n, k, allowed), n, k);
    Pair se = poisonedInts((long) n * k), ss = poisonedInts((long) n * k), off = poisonedInts(E);
    cpu().flattenSortCount(top.c(), E, se.c(), ss.c(), off.c());
    gpu().flattenSortCount(top.g(), E, se.g(), ss.g(), off.g());
    return new Route(n, k, top, se, ss, off);
  }

  @Test
  void flattenSortCountIsTheStableCountingSort() {
    gpu();
    for (int[] spec : ROUTES) {
      try (Route r = route(spec)) {
        String what = "flattenSortCount N=" + r.n + " k=" + r.k;
        checkInts(what + " sortedExpertIdxs", r.sortedExp);
        checkInts(what + " sortedScatteredIdxs", r.sortedScat);
        checkInts(what + " expertOffsets", r.offsets);
      }
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "BF16"})
  void router(DType dt) {
    gpu();
    for (int n : new int[] {1, 37}) {
      for (int k = 1; k <= 4; k++) {
        String what = "router " + dt + " N=" + n + " k=" + k;
        try (Pair logits = randn(dt, 2, n, E);
            Pair probs = poisoned(DType.F32, n, E);
            Pair w = poisoned(DType.F32, n, k);
            Pair idx = poisonedInts(n, k)) {
          cpu().routerTopK(logits.c(), k, probs.c(), w.c(), idx.c());
          gpu().routerTopK(logits.g(), k, probs.g(), w.g(), idx.g());
          check(what + " probs", probs, tol(dt));
          check(what + " topWeights", w, tol(dt));
          checkInts(what + " topIdx", idx);
          GpuTesting.sync(probs);
          for (int variant = 0; variant < 3; variant++) {
            boolean withW = variant != 1, withP = variant != 0;
            try (Pair dW = randn(DType.F32, 1, n, k);
                Pair dP = randn(DType.F32, 1, n, E);
                Pair dL = poisoned(dt, n, E)) {
              cpu()
                  .routerBackward(
                      withW ? dW.c() : null, withP ? dP.c() : null, probs.c(), idx.c(), dL.c());
              gpu()
                  .routerBackward(
                      withW ? dW.g() : null, withP ? dP.g() : null, probs.g(), idx.g(), dL.g());
              check(
                  what + " routerBackward dTopWeights=" + withW + " dProbs=" + withP, dL, tol(dt));
            }
          }
        }
      }
    }
  }

  /**
   * routerTopK past the six experts above: 64 experts top-16 (the fine-grained layer: two experts
   * per lane of the warp-per-token kernel), 100 (a partial last round of lanes), 2049 (past the
   * warp kernel's 2048: the thread-per-token kernel). Rows 0 and 5 have equal logits, so every pick
   * is a tie and goes to the lower expert index (0 .. k-1) as on the CPU.
   */
  @Test
  void routerTopKOverManyExperts() {
    gpu();
    int n = 37;
    for (int[] ek : new int[][] {{64, 16}, {100, 5}, {2049, 3}}) {
      int e = ek[0], k = ek[1];
      String what = "router E=" + e + " k=" + k;
      float[] v = new float[n * e];
      java.util.Random rnd = new java.util.Random(e);
      for (int i = 0; i < v.length; i++) v[i] = (float) (2 * rnd.nextGaussian());
      for (int row : new int[] {0, 5}) java.util.Arrays.fill(v, row * e, (row + 1) * e, 0.25f);
      try (Pair logits = floats(DType.F32, v, n, e);
          Pair probs = poisoned(DType.F32, n, e);
          Pair w = poisoned(DType.F32, n, k);
          Pair idx = poisonedInts(n, k)) {
        cpu().routerTopK(logits.c(), k, probs.c(), w.c(), idx.c());
        gpu().routerTopK(logits.g(), k, probs.g(), w.g(), idx.g());
        check(what + " probs", probs, tol(DType.F32));
        check(what + " topWeights", w, tol(DType.F32));
        checkInts(what + " topIdx", idx);
        int[] got = gpu().download(idx.g()).toIntArray();
        for (int j = 0; j < k; j++) {
          assertEquals(j, got[j], what + ": tie in row 0 not to the lower index");
          assertEquals(j, got[5 * k + j], what + ": tie in row 5 not to the lower index");
        }
      }
    }
  }

  /** All four grouped_in / grouped_out modes, W transposed both ways, with and without bias. */
  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "BF16"})
  void scatter2scatter(DType dt) {
    gpu();
    // (100, 70): no dimension a multiple of 8 (element-wise tile loads); (136, 264): 16-byte loads
    // and several 128-wide column tiles of the bf16 tensor-core kernel.
    for (int[] df : new int[][] {{100, 70}, {136, 264}})
      for (int[] spec : ROUTES) {
        int d = df[0], f = df[1];
        try (Route r = route(spec)) {
          long m = (long) r.n * r.k;
          for (boolean transW : new boolean[] {true, false}) {
            // W is (E, O=f, I=d) as stored: transW maps d to f (x @ W^T), otherwise f to d (x @ W).
            long o = f, i = d;
            long in = transW ? d : f, out = transW ? f : d;
            for (boolean gIn : new boolean[] {false, true}) {
              for (boolean gOut : new boolean[] {false, true}) {
                for (boolean withBias : new boolean[] {false, true}) {
                  String what =
                      "scatter2scatter "
                          + dt
                          + " N="
                          + r.n
                          + " k="
                          + r.k
                          + " transW="
                          + transW
                          + " groupedIn="
                          + gIn
                          + " groupedOut="
                          + gOut
                          + " bias="
                          + withBias;
                  try (Pair x = randn(dt, 1, gIn ? m : r.n, in);
                      Pair w = randn(dt, 0.3, E, o, i);
                      Pair bias = withBias ? randn(dt, 1, E, out) : null;
                      Pair y = poisoned(dt, m, out)) {
                    cpu()
                        .scatter2scatter(
                            x.c(),
                            w.c(),
                            bias == null ? null : bias.c(),
                            transW,
                            r.k,
                            r.sortedExp.c(),
                            r.sortedScat.c(),
                            gIn,
                            gOut,
                            y.c());
                    gpu()
                        .scatter2scatter(
                            x.g(),
                            w.g(),
                            bias == null ? null : bias.g(),
                            transW,
                            r.k,
                            r.sortedExp.g(),
                            r.sortedScat.g(),
                            gIn,
                            gOut,
                            y.g());
                    check(what, y, tol(dt));
                  }
                }
              }
            }
          }
        }
      }
  }

  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "BF16"})
  void groupAndGroupXtY(DType dt) {
    gpu();
    for (int[] df : new int[][] {{100, 70}, {136, 264}})
      for (int[] spec : ROUTES) {
        int d = df[0], f = df[1];
        try (Route r = route(spec)) {
          long m = (long) r.n * r.k;
          for (boolean withGates : new boolean[] {false, true}) {
            String what = "group " + dt + " N=" + r.n + " k=" + r.k + " gates=" + withGates;
            try (Pair x = randn(dt, 1, r.n, d);
                Pair gates = randn(DType.F32, 1, m);
                Pair out = poisoned(dt, m, d)) {
              cpu().group(x.c(), r.sortedScat.c(), r.k, withGates ? gates.c() : null, out.c());
              gpu().group(x.g(), r.sortedScat.g(), r.k, withGates ? gates.g() : null, out.g());
              check(what, out, tol(dt));
            }
          }
          for (boolean withDb : new boolean[] {false, true}) {
            String what = "groupXtY " + dt + " N=" + r.n + " k=" + r.k + " db=" + withDb;
            try (Pair x = randn(dt, 1, m, d);
                Pair dy = randn(dt, 1, m, f);
                Pair dW = randn(DType.F32, 1, E, f, d);
                Pair db = randn(DType.F32, 1, E, f)) {
              cpu().groupXtY(x.c(), dy.c(), r.offsets.c(), dW.c(), withDb ? db.c() : null);
              gpu().groupXtY(x.g(), dy.g(), r.offsets.g(), dW.g(), withDb ? db.g() : null);
              check(what + " dW", dW, tol(dt));
              check(what + " db", db, tol(dt));
            }
          }
        }
      }
  }

  /**
   * bf16 products large enough for the persistent variant-2 kernel (moe_mma.cu) to loop: more (row
   * tile, column tile) pairs than it launches blocks (two per SM), k loops far longer than its
   * pipeline, partial tiles in rows, columns and k, and an expert with no rows.
   */
  @ParameterizedTest
  @EnumSource(
      value = CudaScatterMoe.Kernel.class,
      names = {"V2", "N256", "N128", "WS256", "WS128", "WS256R"})
  void bf16ProductsSpanManyTilesAndStages(CudaScatterMoe.Kernel kernel) {
    CudaScatterMoe moe = gpu().moe();
    Assumptions.assumeTrue(
        kernel == CudaScatterMoe.Kernel.V2 || moe.hopper(),
        "the wgmma variants (" + kernel + ") need compute capability 9.0");
    inFamily(kernel, () -> bf16Products(kernel));
  }

  private void bf16Products(CudaScatterMoe.Kernel kernel) {
    int d = 264, f = 1064; // 264 = 8 * 33 (a partial k step), 1064 = 8 * 133
    try (Route r = route(new int[] {2000, 2, 0, 1, 2, 3, 5})) {
      long m = (long) r.n * r.k;
      for (boolean transW : new boolean[] {true, false}) {
        long in = transW ? d : f, out = transW ? f : d;
        boolean gIn = !transW, gOut = transW;
        String what =
            kernel + " scatter2scatter BF16 N=2000 k=2 transW=" + transW + " groupedIn=" + gIn;
        try (Pair x = randn(DType.BF16, 1, gIn ? m : r.n, in);
            Pair w = randn(DType.BF16, 0.1, E, f, d);
            Pair y = poisoned(DType.BF16, m, out)) {
          scatter2scatter(cpu(), Pair::c, x, w, transW, r, gIn, gOut, y);
          scatter2scatter(gpu(), Pair::g, x, w, transW, r, gIn, gOut, y);
          check(what, y, tol(DType.BF16));
        }
      }
      try (Pair x = randn(DType.BF16, 1, m, d);
          Pair dy = randn(DType.BF16, 1, m, f);
          Pair dW = randn(DType.F32, 1, E, f, d)) {
        cpu().groupXtY(x.c(), dy.c(), r.offsets.c(), dW.c(), null);
        gpu().groupXtY(x.g(), dy.g(), r.offsets.g(), dW.g(), null);
        check(kernel + " groupXtY BF16 N=2000 k=2 dW", dW, tol(DType.BF16));
      }
    }
  }

  /**
   * Variant 42 (AUTO on Hopper, float32 dW: variant 14 in clusters of two CTAs sharing the x tile,
   * each tile added by TMA reductions from shared memory) against variant 7 (the ws256r family:
   * red.global from the threads) and variant 14 (the v14 family: one CTA a tile) on the same GPU:
   * dW equal bit for bit (each element gets the same one add), and against the CPU. I = 264 ends in
   * a partial column tile and a partial box, O = 1064 in a partial row tile (the boxes clip at I
   * and O), 2000 tokens x 2 over five experts end in partial k steps, expert 4 gets no rows; dW
   * starts nonzero (it accumulates).
   */
  @Test
  void groupXtYTmaReductionIsTheRedEpilogueBitForBit() {
    CudaScatterMoe moe = gpu().moe();
    Assumptions.assumeTrue(moe.hopper(), "variants 14 and 42 need compute capability 9.0");
    int i = 264, o = 1064;
    try (Route r = route(new int[] {2000, 2, 0, 1, 2, 3, 5})) {
      long m = (long) r.n * r.k;
      // AUTO is variant 42: clusters of two over pairs of o tiles (O's nine tiles leave the last
      // cluster's second CTA past O); WS256R variant 7, V14 one CTA a tile
      CudaScatterMoe.Kernel[] others = {CudaScatterMoe.Kernel.WS256R, CudaScatterMoe.Kernel.V14};
      try (Pair x = randn(DType.BF16, 1, m, i);
          Pair dy = randn(DType.BF16, 1, m, o);
          Pair dW = randn(DType.F32, 1, E, o, i);
          Pair ws256r = poisoned(DType.F32, E, o, i);
          Pair v14 = poisoned(DType.F32, E, o, i)) {
        Pair[] starts = {ws256r, v14}; // each family's dW, from the same start as AUTO's
        for (Pair start : starts) {
          gpu().copy(dW.g(), start.g());
        }
        inFamily(
            CudaScatterMoe.Kernel.AUTO,
            () -> gpu().groupXtY(x.g(), dy.g(), r.offsets.g(), dW.g(), null));
        for (int f = 0; f < others.length; f++) {
          Pair mine = starts[f];
          inFamily(others[f], () -> gpu().groupXtY(x.g(), dy.g(), r.offsets.g(), mine.g(), null));
          assertArrayEquals(
              bits(mine), bits(dW), others[f] + "'s dW differs from variant 42's (AUTO)");
        }
        cpu().groupXtY(x.c(), dy.c(), r.offsets.c(), dW.c(), null);
        check("groupXtY (variant 42) dW", dW, tol(DType.BF16));
      }
    }
  }

  /**
   * Variant 48: groupXtY with accumulate false writes dW. Variants 42 (AUTO) and 14 (V14) store
   * their tiles by TMA where they otherwise reduce, variant 7 (WS256R) and the plain kernels zero
   * dW first and add; each, from NaN, is the addition into zeros bit for bit (expert 4 gets no
   * rows: its tiles are stored as zeros; O = 1064 leaves the last cluster's second CTA of variant
   * 42 past O), and against the CPU. A later call with accumulate true still adds.
   */
  @Test
  void groupXtYWrittenIsTheAdditionIntoZerosBitForBit() {
    CudaScatterMoe moe = gpu().moe();
    Assumptions.assumeTrue(moe.hopper(), "variants 42, 14 and 48 need compute capability 9.0");
    int i = 264, o = 1064;
    try (Route r = route(new int[] {2000, 2, 0, 1, 2, 3, 5})) {
      long m = (long) r.n * r.k;
      try (Pair x = randn(DType.BF16, 1, m, i);
          Pair dy = randn(DType.BF16, 1, m, o);
          Pair added = randn(DType.F32, 1, E, o, i)) {
        gpu().fill(added.g(), 0f);
        inFamily(
            CudaScatterMoe.Kernel.AUTO,
            () -> gpu().groupXtY(x.g(), dy.g(), r.offsets.g(), added.g(), null));
        for (CudaScatterMoe.Kernel k :
            new CudaScatterMoe.Kernel[] {
              CudaScatterMoe.Kernel.AUTO, CudaScatterMoe.Kernel.V14, CudaScatterMoe.Kernel.WS256R
            }) {
          try (Pair written = poisoned(DType.F32, E, o, i)) {
            inFamily(
                k, () -> gpu().groupXtY(x.g(), dy.g(), r.offsets.g(), written.g(), null, false));
            assertArrayEquals(
                bits(added), bits(written), k + ": dW written differs from dW added into zeros");
            cpu().groupXtY(x.c(), dy.c(), r.offsets.c(), written.c(), null, false);
            check(k + " groupXtY written", written, tol(DType.BF16));
            // accumulate true after it adds again: twice the product
            inFamily(k, () -> gpu().groupXtY(x.g(), dy.g(), r.offsets.g(), written.g(), null));
            cpu().groupXtY(x.c(), dy.c(), r.offsets.c(), written.c(), null);
            check(k + " groupXtY written, then added", written, tol(DType.BF16));
          }
        }
      }
    }
  }

  /**
   * Variant 16 (AUTO on Hopper: bf16 tiles through per-warp shared memory by stmatrix, stored in
   * 16-byte row pieces) against variant 5 (the ws256r family: 4-byte stores from the accumulators)
   * in all four grouped_in / grouped_out modes, x W^T and x W: y equal bit for bit, and against the
   * CPU. 1064 = 8 * 133 output columns end in a partial column tile (and 264 in a partial k step),
   * 2000 tokens x 2 over five experts in partial row tiles, expert 4 gets no rows; y starts
   * poisoned, so a row or column the epilogue skips or writes twice shows; 1060 output columns (no
   * multiple of 8) take variant 5 in both families. 12,000 tokens give each block of the persistent
   * kernel several tiles (its buffers reused), compared with variant 5 only (which
   * bf16ProductsSpanManyTilesAndStages checks against the CPU).
   */
  @Test
  void plainEpilogueThroughSharedMemoryIsVariant5BitForBit() {
    CudaScatterMoe moe = gpu().moe();
    Assumptions.assumeTrue(moe.hopper(), "variant 16 needs compute capability 9.0");
    int d = 264;
    // {tokens, F}: F = 1060 gives x W^T 1060 output columns, no multiple of 8, where variant 16
    // does not apply (its 16-byte row pieces would be misaligned) and variant 5 runs in AUTO too
    for (int[] tf : new int[][] {{2000, 1064}, {12000, 1064}, {2000, 1060}}) {
      int tokens = tf[0], f = tf[1];
      try (Route r = route(new int[] {tokens, 2, 0, 1, 2, 3, 5})) {
        long m = (long) r.n * r.k;
        for (boolean transW : new boolean[] {true, false}) {
          long in = transW ? d : f, out = transW ? f : d;
          for (boolean gIn : new boolean[] {false, true}) {
            for (boolean gOut : new boolean[] {false, true}) {
              String what = "transW=" + transW + " groupedIn=" + gIn + " groupedOut=" + gOut;
              try (Pair x = randn(DType.BF16, 1, gIn ? m : r.n, in);
                  Pair w = randn(DType.BF16, 0.1, E, f, d);
                  Pair y = poisoned(DType.BF16, m, out);
                  Pair y5 = poisoned(DType.BF16, m, out)) {
                inFamily(
                    CudaScatterMoe.Kernel.AUTO,
                    () -> scatter2scatter(gpu(), Pair::g, x, w, transW, r, gIn, gOut, y));
                inFamily(
                    CudaScatterMoe.Kernel.WS256R,
                    () -> scatter2scatter(gpu(), Pair::g, x, w, transW, r, gIn, gOut, y5));
                assertArrayEquals(bits(y5), bits(y), what + ": variant 16's y differs from 5's");
                if (tokens > 2000) continue;
                scatter2scatter(cpu(), Pair::c, x, w, transW, r, gIn, gOut, y);
                check("variant 16 scatter2scatter " + what, y, tol(DType.BF16));
              }
            }
          }
        }
      }
    }
  }

  /**
   * group by token (AUTO: each token's row read once and written to its k slots through the inverse
   * of sortedScattered) against group by output row (V15: group_kernel) on the same GPU, bit for
   * bit, with and without gates, 16-byte (D = 136) and element-wise (D = 100) rows, every routing
   * scenario (k = 1 to 4, experts with no rows, one token).
   */
  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "BF16"})
  void groupByTokenIsGroupByRowBitForBit(DType dt) {
    gpu();
    for (int d : new int[] {100, 136})
      for (int[] spec : ROUTES) {
        try (Route r = route(spec)) {
          long m = (long) r.n * r.k;
          for (boolean withGates : new boolean[] {false, true}) {
            String what =
                "group " + dt + " D=" + d + " N=" + r.n + " k=" + r.k + " gates=" + withGates;
            try (Pair x = randn(dt, 1, r.n, d);
                Pair gates = randn(DType.F32, 1, m);
                Pair out = poisoned(dt, m, d);
                Pair outRow = poisoned(dt, m, d)) {
              Tensor g = withGates ? gates.g() : null;
              inFamily(
                  CudaScatterMoe.Kernel.AUTO,
                  () -> gpu().group(x.g(), r.sortedScat.g(), r.k, g, out.g()));
              inFamily(
                  CudaScatterMoe.Kernel.V15,
                  () -> gpu().group(x.g(), r.sortedScat.g(), r.k, g, outRow.g()));
              assertArrayEquals(bits(outRow), bits(out), what + ": by token differs by row");
              cpu().group(x.c(), r.sortedScat.c(), r.k, withGates ? gates.c() : null, out.c());
              check(what, out, tol(dt));
            }
          }
        }
      }
  }

  /**
   * The SwiGLU epilogues, variants 15 and 13 (AUTO on Hopper: TMA-stored tiles, h asked into L2,
   * the rounds double-buffered), variant 11 (V11: the rounds through one buffer) and variant 10
   * (V10: direct stores), against the unfused ops (the ws256r family: the same products, then
   * swigluForward / gateRowsBackward / swigluBackward) on the same GPU: h, a and dH equal bit for
   * bit, dGates (the same products summed in another order) at float32 precision; both also against
   * the CPU. F = 1064 is no multiple of 128 (the gate box of the last tile reaches into the up
   * rows, whose columns the epilogue drops; variant 11 stores that tile directly) nor of 256; D =
   * 264 ends in a partial k step; expert 4 gets no rows, the others full 128-row tiles and a
   * partial last one.
   */
  @Test
  void swigluEpiloguesAreTheUnfusedOpsBitForBit() {
    swigluEpilogues(2000, 264, 1064);
  }

  /**
   * {@link #swigluEpiloguesAreTheUnfusedOpsBitForBit} with D = 1032 (17 k steps, the last partial,
   * against 5): variant 13's round-0 h load is issued two k steps before the main loop ends rather
   * than at its start, and the L2 prefetch of h eight steps before the end (variant 21,
   * kernels/lab/moe, needed that case; it passed on the H200 on 2026-12-03 with AUTO, V21, V11,
   * V10).
   */
  @Test
  void swigluEpiloguesOverLongerProductsAreTheUnfusedOpsBitForBit() {
    swigluEpilogues(600, 1032, 1064);
  }

  /**
   * {@link #swigluEpiloguesAreTheUnfusedOpsBitForBit} with 100 tokens over five experts (about 40
   * rows each): every row tile is an expert's last and partial, so no tile takes the full-tile TMA
   * path, the second consumer warpgroup's rows are empty and few tiles reach most blocks (in a
   * cluster kernel, kernels/lab/moe variant 27, the second CTA's).
   */
  @Test
  void swigluEpiloguesOverFewRowsAreTheUnfusedOpsBitForBit() {
    swigluEpilogues(100, 264, 1064);
  }

  private void swigluEpilogues(int tokens, int d, int f) {
    CudaScatterMoe moe = gpu().moe();
    Assumptions.assumeTrue(moe.hopper(), "variants 10 and 11 need compute capability 9.0");
    try (Route r = route(new int[] {tokens, 2, 0, 1, 2, 3, 5})) {
      long m = (long) r.n * r.k;
      try (Pair x = randn(DType.BF16, 1, r.n, d);
          Pair w1 = randn(DType.BF16, 0.1, E, 2 * f, d);
          Pair w2 = randn(DType.BF16, 0.1, E, d, f);
          Pair dY = randn(DType.BF16, 1, r.n, d); // token order: the fused call gathers rows
          Pair gates = randn(DType.F32, 0.5, m);
          Pair h = poisoned(DType.BF16, m, 2 * f);
          Pair a = poisoned(DType.BF16, m, f);
          Pair h2 = poisoned(DType.BF16, m, 2 * f);
          Pair a2 = poisoned(DType.BF16, m, f);
          Pair dGates = poisoned(DType.F32, m);
          Pair dH = poisoned(DType.BF16, m, 2 * f);
          Pair dGates2 = poisoned(DType.F32, m);
          Pair dH2 = poisoned(DType.BF16, m, 2 * f)) {
        // the unfused ops once: h2, a2, then dH2, dGates2 from them (each variant's fused h and a
        // are checked equal to h2 and a2 bit for bit before its backward reads them)
        inFamily(
            CudaScatterMoe.Kernel.WS256R,
            () -> {
              swigluForward(gpu(), Pair::g, false, r, x, w1, h2, a2);
              swigluBackward(gpu(), Pair::g, r, dY, w2, h2, a2, gates, dGates2, dH2);
            });
        for (CudaScatterMoe.Kernel fused :
            new CudaScatterMoe.Kernel[] {
              CudaScatterMoe.Kernel.AUTO,
              CudaScatterMoe.Kernel.V54,
              CudaScatterMoe.Kernel.V16,
              CudaScatterMoe.Kernel.V11,
              CudaScatterMoe.Kernel.V10
            }) {
          String v = fused + ": ";
          for (Pair p : new Pair[] {h, a, dH, dGates}) { // poisoned again for this variant
            cpu().fill(p.c(), Float.NaN);
            gpu().fill(p.g(), Float.NaN);
          }
          inFamily(fused, () -> swigluForward(gpu(), Pair::g, false, r, x, w1, h, a));
          assertArrayEquals(bits(h2), bits(h), v + "fused h differs from the unfused product's");
          assertArrayEquals(bits(a2), bits(a), v + "fused a differs from swigluForward's");
          swigluForward(cpu(), Pair::c, false, r, x, w1, h, a);
          check(v + "scatter2scatterSwiglu h", h, tol(DType.BF16));
          check(v + "scatter2scatterSwiglu a", a, tol(DType.BF16));
          sync(h); // the backward reads the same h on both backends
          sync(a);
          inFamily(fused, () -> swigluBackward(gpu(), Pair::g, r, dY, w2, h, a, gates, dGates, dH));
          assertArrayEquals(bits(dH2), bits(dH), v + "fused dH differs from the unfused ops'");
          compare(
              v + "fused dGates against gateRowsBackward's",
              gpu().download(dGates2.g()).toFloatArray(),
              gpu().download(dGates.g()).toFloatArray(),
              1e-5);
          swigluBackward(cpu(), Pair::c, r, dY, w2, h, a, gates, dGates, dH);
          check(v + "scatter2scatterSwigluBackward dH", dH, tol(DType.BF16));
          check(v + "scatter2scatterSwigluBackward dGates", dGates, tol(DType.BF16));
        }
      }
    }
  }

  /**
   * Variant 56 (AUTO since session 49): the first product storing SwiGLU's backward factors in h's
   * place and the down product's dX over dy's rows grouped with their gates, dH = [dA p | dA q] in
   * its epilogue, against the unfused ops on the same GPU (the ws256r family: the plain products,
   * then swigluFactors / swigluBackwardFactors): p, a and dH equal bit for bit, a also equal to the
   * h-saving fused forward's (AUTO); all against the CPU. The three cases of the SwiGLU epilogue
   * tests (full and partial tiles, 17 k steps, every row tile an expert's last).
   */
  @Test
  void swigluFactorsAreTheUnfusedOpsBitForBit() {
    swigluFactors(2000, 264, 1064);
    swigluFactors(600, 1032, 1064);
    swigluFactors(100, 264, 1064);
  }

  private void swigluFactors(int tokens, int d, int f) {
    Assumptions.assumeTrue(gpu().moe().hopper(), "variant 56 needs compute capability 9.0");
    String v = "variant 56 N=" + tokens + " D=" + d + ": ";
    try (Route r = route(new int[] {tokens, 2, 0, 1, 2, 3, 5})) {
      long m = (long) r.n * r.k;
      try (Pair x = randn(DType.BF16, 1, r.n, d);
          Pair w1 = randn(DType.BF16, 0.1, E, 2 * f, d);
          Pair w2 = randn(DType.BF16, 0.1, E, d, f);
          Pair dYg = randn(DType.BF16, 1, m, d); // dy's rows grouped, the gates applied
          Pair p = poisoned(DType.BF16, m, 2 * f);
          Pair a = poisoned(DType.BF16, m, f);
          Pair p2 = poisoned(DType.BF16, m, 2 * f);
          Pair a2 = poisoned(DType.BF16, m, f);
          Pair h3 = poisoned(DType.BF16, m, 2 * f);
          Pair a3 = poisoned(DType.BF16, m, f);
          Pair dH = poisoned(DType.BF16, m, 2 * f);
          Pair dH2 = poisoned(DType.BF16, m, 2 * f)) {
        inFamily(
            CudaScatterMoe.Kernel.WS256R,
            () -> {
              swigluForward(gpu(), Pair::g, true, r, x, w1, p2, a2);
              swigluFactorsBackward(gpu(), Pair::g, r, dYg, w2, p2, dH2);
            });
        inFamily(
            CudaScatterMoe.Kernel.AUTO,
            () -> {
              swigluForward(gpu(), Pair::g, false, r, x, w1, h3, a3);
              swigluForward(gpu(), Pair::g, true, r, x, w1, p, a);
            });
        assertArrayEquals(bits(p2), bits(p), v + "fused factors differ from swigluFactors'");
        assertArrayEquals(bits(a2), bits(a), v + "fused a differs from swigluFactors'");
        assertArrayEquals(bits(a3), bits(a), v + "a differs from the h-saving forward's (AUTO)");
        swigluForward(cpu(), Pair::c, true, r, x, w1, p, a);
        check(v + "scatter2scatterSwigluFactors p", p, tol(DType.BF16));
        check(v + "scatter2scatterSwigluFactors a", a, tol(DType.BF16));
        sync(p); // the backward reads the same factors on both backends
        inFamily(
            CudaScatterMoe.Kernel.AUTO,
            () -> swigluFactorsBackward(gpu(), Pair::g, r, dYg, w2, p, dH));
        assertArrayEquals(bits(dH2), bits(dH), v + "fused dH differs from the unfused ops'");
        swigluFactorsBackward(cpu(), Pair::c, r, dYg, w2, p, dH);
        check(v + "scatter2scatterSwigluFactorsBackward dH", dH, tol(DType.BF16));
      }
    }
  }

  /**
   * Variant 59's start groups (the warp-specialised products' blocks started in groups a fraction
   * of a main loop apart) change when the blocks start, not what they compute: the expert MLP in
   * AUTO (all six products: the SwiGLU forward, the down product, kernel56's dX2, the up product's
   * dX and both float32 dW by TMA reductions) gives its five outputs bit for bit as without them,
   * with two and with four groups, over rows enough that every group has tiles.
   */
  @Test
  void startGroupsLeaveTheMlpBitForBit() {
    Assumptions.assumeTrue(gpu().moe().hopper(), "variant 59 needs compute capability 9.0");
    CudaScatterMoe moe = gpu().moe();
    CudaScatterMoe.Lab before = moe.lab();
    try (MlpCase c = mlpCase(3000, 264, 1064)) {
      float[][] none = null;
      for (CudaScatterMoe.Stagger st :
          new CudaScatterMoe.Stagger[] {
            CudaScatterMoe.Stagger.NONE,
            new CudaScatterMoe.Stagger(2, 1),
            new CudaScatterMoe.Stagger(4, 2)
          }) {
        float[][] got;
        moe.lab(before.with("stagger=" + st));
        try {
          got = c.run(CudaScatterMoe.Kernel.AUTO);
        } finally {
          moe.lab(before);
        }
        if (none == null) {
          none = got;
          continue;
        }
        for (int i = 0; i < MlpCase.OUTPUTS.length; i++) {
          assertArrayEquals(
              none[i],
              got[i],
              "start groups " + st + ": " + MlpCase.OUTPUTS[i] + " differs from none's");
        }
      }
      assertTrue(new CudaScatterMoe.Stagger(2, 1).cycles(264) > 0, "two groups start apart");
    }
  }

  /**
   * Variant 60: groupGatesBackward in one pass over dY (group_gates_backward_kernel) gives both
   * gradients bit for bit as combineGatesBackward and group do (the 16-byte path at D = 264 and
   * 136, one element a lane at D = 100; k = 1 to 4, experts without rows, one token), and both
   * agree with the CPU.
   */
  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "BF16"})
  void groupGatesInOnePassAreTheTwoOpsBitForBit(DType dt) {
    CudaScatterMoe moe = gpu().moe();
    CudaScatterMoe.Lab before = moe.lab();
    for (int d : new int[] {100, 136, 264})
      for (int[] spec : ROUTES) {
        try (Route r = route(spec)) {
          long m = (long) r.n * r.k;
          for (boolean withGates : new boolean[] {false, true}) {
            String what =
                "groupGatesBackward "
                    + dt
                    + " D="
                    + d
                    + " N="
                    + r.n
                    + " k="
                    + r.k
                    + " gates="
                    + withGates;
            try (Pair dY = randn(dt, 1, r.n, d);
                Pair ex = randn(dt, 1, m, d);
                Pair gates = randn(DType.F32, 1, m);
                Pair dG = poisoned(DType.F32, r.n, r.k);
                Pair dGSplit = poisoned(DType.F32, r.n, r.k);
                Pair out = poisoned(dt, m, d);
                Pair outSplit = poisoned(dt, m, d)) {
              Tensor g = withGates ? gates.g() : null;
              try {
                moe.lab(before.with("groupgates=split"));
                gpu()
                    .groupGatesBackward(
                        dY.g(), r.sortedScat.g(), r.k, g, ex.g(), dGSplit.g(), outSplit.g());
                moe.lab(before.with("groupgates=fused"));
                gpu().groupGatesBackward(dY.g(), r.sortedScat.g(), r.k, g, ex.g(), dG.g(), out.g());
              } finally {
                moe.lab(before);
              }
              assertArrayEquals(bits(outSplit), bits(out), what + ": dY grouped differs");
              assertArrayEquals(bits(dGSplit), bits(dG), what + ": dGates differ");
              cpu()
                  .groupGatesBackward(
                      dY.c(),
                      r.sortedScat.c(),
                      r.k,
                      withGates ? gates.c() : null,
                      ex.c(),
                      dG.c(),
                      out.c());
              check(what + " dY grouped", out, tol(dt));
              check(what + " dGates", dG, tol(dt));
            }
          }
        }
      }
  }

  /** Variant 60 in the expert MLP (AUTO): its five outputs bit for bit as without it. */
  @Test
  void groupGatesInOnePassLeaveTheMlpBitForBit() {
    Assumptions.assumeTrue(
        gpu().moe().hopper(), "AUTO's factors path needs compute capability 9.0");
    CudaScatterMoe moe = gpu().moe();
    CudaScatterMoe.Lab before = moe.lab();
    try (MlpCase c = mlpCase(1500, 264, 1064)) {
      float[][] split, fused;
      try {
        moe.lab(before.with("groupgates=split"));
        split = c.run(CudaScatterMoe.Kernel.AUTO);
        moe.lab(before.with("groupgates=fused"));
        fused = c.run(CudaScatterMoe.Kernel.AUTO);
      } finally {
        moe.lab(before);
      }
      for (int i = 0; i < MlpCase.OUTPUTS.length; i++) {
        assertArrayEquals(
            split[i],
            fused[i],
            "variant 60: " + MlpCase.OUTPUTS[i] + " differs from the split ops'");
      }
    }
  }

  /**
   * Variant 61: each expert product's dW (kernel42, or kernel14 with :v14) on a second stream
   * beside its dX (kernel56 or kernel16) on the rest of the device gives the expert MLP's five
   * outputs bit for bit as the products in turn.
   */
  @Test
  void dwBesideDxLeavesTheMlpBitForBit() {
    Assumptions.assumeTrue(gpu().moe().hopper(), "variant 61 needs compute capability 9.0");
    CudaScatterMoe moe = gpu().moe();
    CudaScatterMoe.Lab before = moe.lab();
    int sms = gpu().multiprocessors();
    try (MlpCase c = mlpCase(3000, 264, 1064)) {
      moe.lab(before.with("beside=off"));
      assertFalse(gpu().dwBesideDx(), "off: the two calls");
      float[][] apart = c.run(CudaScatterMoe.Kernel.AUTO);
      for (CudaScatterMoe.Beside b :
          new CudaScatterMoe.Beside[] {
            new CudaScatterMoe.Beside(sms / 2, sms / 3, false),
            new CudaScatterMoe.Beside(sms / 3, sms / 2, true)
          }) {
        float[][] got;
        moe.lab(before.with("beside=" + b));
        try {
          assertTrue(gpu().dwBesideDx(), b + ": one call");
          got = c.run(CudaScatterMoe.Kernel.AUTO);
        } finally {
          moe.lab(before);
        }
        for (int i = 0; i < MlpCase.OUTPUTS.length; i++) {
          assertArrayEquals(
              apart[i], got[i], "beside " + b + ": " + MlpCase.OUTPUTS[i] + " differs");
        }
      }
    }
  }

  /**
   * Variants 62, 63 and 65: kernel56's dX2 on ping-pong warpgroups (64 x 256 tiles a warpgroup, or
   * 128 x 128 in 65; the main loops, and in variant 63 the epilogues, taking turns) gives dH bit
   * for bit as kernel56: full and partial tiles (F = 1064: four full column tiles of 256 and one of
   * 40, eight of 128 and one of 40), 17 k steps (D = 1032), every row tile an expert's last (100
   * tokens), and rows enough (8,000 tokens) for a dozen tiles a block, so both warpgroups take many
   * turns.
   */
  @Test
  void pingPongDx2IsKernel56BitForBit() {
    Assumptions.assumeTrue(gpu().moe().hopper(), "variants 62 and 63 need compute capability 9.0");
    CudaScatterMoe moe = gpu().moe();
    CudaScatterMoe.Lab before = moe.lab();
    CudaScatterMoe.PingPong[] variants = {
      new CudaScatterMoe.PingPong(62, 0),
      new CudaScatterMoe.PingPong(63, 0),
      new CudaScatterMoe.PingPong(65, 0)
    };
    for (int[] c :
        new int[][] {{2000, 264, 1064}, {600, 1032, 1064}, {100, 264, 1064}, {8000, 264, 1064}}) {
      int tokens = c[0], d = c[1], f = c[2];
      try (Route r = route(new int[] {tokens, 2, 0, 1, 2, 3, 5})) {
        long m = (long) r.n * r.k;
        try (Pair w2 = randn(DType.BF16, 0.1, E, d, f);
            Pair dYg = randn(DType.BF16, 1, m, d);
            Pair p = randn(DType.BF16, 1, m, 2 * f);
            Pair dH = poisoned(DType.BF16, m, 2 * f);
            Pair dH62 = poisoned(DType.BF16, m, 2 * f);
            Pair dH63 = poisoned(DType.BF16, m, 2 * f);
            Pair dH65 = poisoned(DType.BF16, m, 2 * f)) {
          Pair[] got = {dH62, dH63, dH65};
          try {
            moe.lab(before.with("pingpong=off"));
            inFamily(
                CudaScatterMoe.Kernel.AUTO,
                () -> swigluFactorsBackward(gpu(), Pair::g, r, dYg, w2, p, dH));
            for (int i = 0; i < variants.length; i++) {
              moe.lab(before.with("pingpong=" + variants[i]));
              Pair out = got[i];
              inFamily(
                  CudaScatterMoe.Kernel.AUTO,
                  () -> swigluFactorsBackward(gpu(), Pair::g, r, dYg, w2, p, out));
            }
          } finally {
            moe.lab(before);
          }
          for (int i = 0; i < variants.length; i++) {
            assertArrayEquals(
                bits(dH),
                bits(got[i]),
                variants[i] + " N=" + tokens + " D=" + d + ": dH differs from kernel56's");
          }
        }
      }
    }
  }

  /**
   * Variants 64 and 66: kernel56's first product (the factors and a) on ping-pong warpgroups (64 x
   * 128 and 128 x 64 output tiles a warpgroup) gives p and a bit for bit as kernel56 over the cases
   * of {@link #pingPongDx2IsKernel56BitForBit} (F = 1064: eight full column tiles of 128 and one of
   * 40; sixteen of 64 and one of 40).
   */
  @Test
  void pingPongFwd1IsKernel56BitForBit() {
    Assumptions.assumeTrue(gpu().moe().hopper(), "variants 64 and 66 need compute capability 9.0");
    CudaScatterMoe moe = gpu().moe();
    CudaScatterMoe.Lab before = moe.lab();
    for (int[] c :
        new int[][] {{2000, 264, 1064}, {600, 1032, 1064}, {100, 264, 1064}, {8000, 264, 1064}}) {
      int tokens = c[0], d = c[1], f = c[2];
      try (Route r = route(new int[] {tokens, 2, 0, 1, 2, 3, 5})) {
        long m = (long) r.n * r.k;
        try (Pair x = randn(DType.BF16, 1, r.n, d);
            Pair w1 = randn(DType.BF16, 0.1, E, 2 * f, d);
            Pair p = poisoned(DType.BF16, m, 2 * f);
            Pair a = poisoned(DType.BF16, m, f);
            Pair p64 = poisoned(DType.BF16, m, 2 * f);
            Pair a64 = poisoned(DType.BF16, m, f);
            Pair p66 = poisoned(DType.BF16, m, 2 * f);
            Pair a66 = poisoned(DType.BF16, m, f)) {
          try {
            moe.lab(before.with("pingpong=off"));
            inFamily(
                CudaScatterMoe.Kernel.AUTO,
                () -> swigluForward(gpu(), Pair::g, true, r, x, w1, p, a));
            moe.lab(before.with("pingpong=v64"));
            inFamily(
                CudaScatterMoe.Kernel.AUTO,
                () -> swigluForward(gpu(), Pair::g, true, r, x, w1, p64, a64));
            moe.lab(before.with("pingpong=v66"));
            inFamily(
                CudaScatterMoe.Kernel.AUTO,
                () -> swigluForward(gpu(), Pair::g, true, r, x, w1, p66, a66));
          } finally {
            moe.lab(before);
          }
          String v = " N=" + tokens + " D=" + d + ": ";
          assertArrayEquals(bits(p), bits(p64), "variant 64" + v + "the factors differ");
          assertArrayEquals(bits(a), bits(a64), "variant 64" + v + "a differs");
          assertArrayEquals(bits(p), bits(p66), "variant 66" + v + "the factors differ");
          assertArrayEquals(bits(a), bits(a66), "variant 66" + v + "a differs");
        }
      }
    }
  }

  /**
   * Variants 62-66, alone and together, in the expert MLP (AUTO): its five outputs bit for bit as
   * kernel56's.
   */
  @Test
  void pingPongLeavesTheMlpBitForBit() {
    Assumptions.assumeTrue(gpu().moe().hopper(), "variants 62-64 need compute capability 9.0");
    CudaScatterMoe moe = gpu().moe();
    CudaScatterMoe.Lab before = moe.lab();
    try (MlpCase c = mlpCase(3000, 264, 1064)) {
      float[][] base, got;
      for (String v : new String[] {"v62", "v63", "v65", "v64", "v66", "v63/v64", "v65/v66"}) {
        try {
          moe.lab(before.with("pingpong=off"));
          base = c.run(CudaScatterMoe.Kernel.AUTO);
          moe.lab(before.with("pingpong=" + v));
          got = c.run(CudaScatterMoe.Kernel.AUTO);
        } finally {
          moe.lab(before);
        }
        for (int i = 0; i < MlpCase.OUTPUTS.length; i++) {
          assertArrayEquals(base[i], got[i], v + ": " + MlpCase.OUTPUTS[i] + " differs");
        }
      }
    }
  }

  /**
   * The expert MLP in AUTO (variant 56 since session 49: the factors saved, dy grouped with its
   * gates, the gates' gradient from the kept ungated rows) against the same MLP in H (h saved, as
   * before) on the GPU: the same output bit for bit, the same gradients within bf16 rounding. (On
   * the H100 in session 49 it ran as V56 against AUTO, then the h path.)
   */
  @Test
  void moeMlpWithFactorsIsTheMlpWithH() {
    Assumptions.assumeTrue(gpu().moe().hopper(), "variant 56 needs compute capability 9.0");
    try (MlpCase c = mlpCase(1500, 264, 1064)) {
      float[][] h = c.run(CudaScatterMoe.Kernel.H), fac = c.run(CudaScatterMoe.Kernel.AUTO);
      assertArrayEquals(h[0], fac[0], "AUTO's output (the factors saved) differs from H's");
      for (int i = 1; i < MlpCase.OUTPUTS.length; i++) {
        compare(
            "AUTO (the factors) against H: " + MlpCase.OUTPUTS[i], h[i], fac[i], tol(DType.BF16));
      }
    }
  }

  /** A bf16 expert MLP (D, F, E experts) over tokens routed top-2, its inputs random. */
  private record MlpCase(Route r, MoeMlp mlp, Pair x, Pair w1, Pair w2, Pair topW, Pair dY)
      implements AutoCloseable {
    static final String[] OUTPUTS = {"y", "dX", "dTopKWeights", "gateUpGrad", "downGrad"};

    /** Forward and backward in family k (gradients zeroed first): the five OUTPUTS. */
    float[][] run(CudaScatterMoe.Kernel k) {
      float[][][] got = new float[1][][];
      inFamily(
          k,
          () -> {
            gpu().fill(mlp.gateUpGrad(), 0f);
            gpu().fill(mlp.downGrad(), 0f);
            assertEquals(k == CudaScatterMoe.Kernel.AUTO, gpu().swigluSavesFactors());
            try (MoeMlp.Forward fw = mlp.forward(x.g(), topW.g(), r.topIdx.g());
                MoeMlp.Grads g = mlp.backward(fw, dY.g())) {
              got[0] =
                  new float[][] {
                    gpu().download(fw.output()).toFloatArray(),
                    gpu().download(g.dX()).toFloatArray(),
                    gpu().download(g.dTopKWeights()).toFloatArray(),
                    gpu().download(mlp.gateUpGrad()).toFloatArray(),
                    gpu().download(mlp.downGrad()).toFloatArray()
                  };
            }
          });
      return got[0];
    }

    @Override
    public void close() {
      dY.close();
      topW.close();
      w2.close();
      w1.close();
      x.close();
      mlp.close();
      r.close();
    }
  }

  private static MlpCase mlpCase(int tokens, int d, int f) {
    Route r = route(new int[] {tokens, 2, 0, 1, 2, 3, 5});
    MoeMlp mlp = MoeMlp.allocate(gpu(), DType.BF16, d, f, E);
    MlpCase c =
        new MlpCase(
            r,
            mlp,
            randn(DType.BF16, 1, r.n, d),
            randn(DType.BF16, 0.1, E, 2 * f, d),
            randn(DType.BF16, 0.1, E, d, f),
            randn(DType.F32, 0.5, r.n, r.k),
            randn(DType.BF16, 1, r.n, d));
    gpu().copy(c.w1().g(), mlp.gateUp());
    gpu().copy(c.w2().g(), mlp.down());
    return c;
  }

  private static void inFamily(CudaScatterMoe.Kernel k, Runnable body) {
    CudaScatterMoe moe = gpu().moe();
    CudaScatterMoe.Kernel before = moe.kernel();
    moe.kernel(k);
    try {
      body.run();
    } finally {
      moe.kernel(before);
    }
  }

  /** Backend#scatter2scatter without bias on one side of the pairs. */
  private static void scatter2scatter(
      Backend be,
      Function<Pair, Tensor> side,
      Pair x,
      Pair w,
      boolean transW,
      Route r,
      boolean gIn,
      boolean gOut,
      Pair y) {
    be.scatter2scatter(
        side.apply(x),
        side.apply(w),
        null,
        transW,
        r.k,
        side.apply(r.sortedExp),
        side.apply(r.sortedScat),
        gIn,
        gOut,
        side.apply(y));
  }

  /**
   * Backend#scatter2scatterSwiglu (factors: scatter2scatterSwigluFactors, h then holding p and q)
   * on one side of the pairs (gathered x rows).
   */
  private static void swigluForward(
      Backend be,
      Function<Pair, Tensor> side,
      boolean factors,
      Route r,
      Pair x,
      Pair w1,
      Pair h,
      Pair a) {
    Tensor se = side.apply(r.sortedExp), ss = side.apply(r.sortedScat);
    if (factors) {
      be.scatter2scatterSwigluFactors(
          side.apply(x), side.apply(w1), r.k, se, ss, false, side.apply(h), side.apply(a));
    } else {
      be.scatter2scatterSwiglu(
          side.apply(x), side.apply(w1), r.k, se, ss, false, side.apply(h), side.apply(a));
    }
  }

  /** Backend#scatter2scatterSwigluFactorsBackward on one side of the pairs (dY grouped). */
  private static void swigluFactorsBackward(
      Backend be, Function<Pair, Tensor> side, Route r, Pair dYg, Pair w2, Pair p, Pair dH) {
    be.scatter2scatterSwigluFactorsBackward(
        side.apply(dYg),
        side.apply(w2),
        side.apply(r.sortedExp),
        side.apply(r.sortedScat),
        side.apply(p),
        side.apply(dH));
  }

  /** Backend#scatter2scatterSwigluBackward on one side of the pairs (gathered dY rows). */
  private static void swigluBackward(
      Backend be,
      Function<Pair, Tensor> side,
      Route r,
      Pair dY,
      Pair w2,
      Pair h,
      Pair a,
      Pair gates,
      Pair dGates,
      Pair dH) {
    be.scatter2scatterSwigluBackward(
        side.apply(dY),
        side.apply(w2),
        r.k,
        side.apply(r.sortedExp),
        side.apply(r.sortedScat),
        false,
        side.apply(h),
        side.apply(a),
        side.apply(gates),
        side.apply(dGates),
        side.apply(dH));
  }

  /** The GPU tensor's values as float bits (bf16 widened exactly), for bitwise comparisons. */
  private static int[] bits(Pair p) {
    float[] v = gpu().download(p.g()).toFloatArray();
    int[] b = new int[v.length];
    for (int i = 0; i < v.length; i++) b[i] = Float.floatToRawIntBits(v[i]);
    return b;
  }

  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "BF16"})
  void combineAndGatesBackward(DType dt) {
    gpu();
    // d = 264: the 16-byte vector path (d % 8 == 0), d = 100: one element per thread
    for (int d : new int[] {100, 264})
      for (int n : new int[] {1, 37}) {
        for (int k = 1; k <= 4; k++) {
          for (boolean withGates : new boolean[] {false, true}) {
            String what =
                "combine " + dt + " D=" + d + " N=" + n + " k=" + k + " gates=" + withGates;
            try (Pair ex = randn(dt, 1, (long) n * k, d);
                Pair gates = randn(DType.F32, 1, n, k);
                Pair y = poisoned(dt, n, d);
                Pair dY = randn(dt, 1, n, d);
                Pair dG = poisoned(DType.F32, n, k)) {
              cpu().combine(ex.c(), withGates ? gates.c() : null, k, y.c());
              gpu().combine(ex.g(), withGates ? gates.g() : null, k, y.g());
              check(what, y, tol(dt));
              cpu().combineGatesBackward(dY.c(), ex.c(), k, dG.c());
              gpu().combineGatesBackward(dY.g(), ex.g(), k, dG.g());
              check(what + " gates backward", dG, tol(dt));
            }
          }
        }
      }
  }

  @Test
  void tensorMapCacheGivesTheDriversEncoding() {
    gpu();
    long base = 1L << 20;
    long[] dims = {4096, 1792, 8};
    int[] box = {64, 256, 1};
    int[] fresh = TensorMaps.encode(base, dims, box, "W");
    int[] first = TensorMaps.bf16(base, dims, box, "W");
    int[] again = TensorMaps.bf16(base, dims, box, "W");
    assertArrayEquals(fresh, first);
    assertArrayEquals(fresh, again);
    // a caller may not change the cached map through the array it got
    again[0] ^= -1;
    assertArrayEquals(fresh, TensorMaps.bf16(base, dims, box, "W"));
    // another base or box is another map
    int[] other = TensorMaps.bf16(base + 4096, dims, box, "W");
    assertArrayEquals(TensorMaps.encode(base + 4096, dims, box, "W"), other);
    assertFalse(Arrays.equals(fresh, other));
  }

  @Test
  void flattenSortCountOverManyChunksAndManyExperts() {
    gpu();
    // {experts, tokens, k}: the chunked sort (1,024 slots per block) with a partial last chunk
    // and every other expert empty; 5,000 experts take the one-block-per-expert sort
    for (int[] c : new int[][] {{64, 5003, 16}, {8, 3001, 2}, {130, 1024, 1}, {5000, 700, 3}}) {
      int e = c[0], n = c[1], k = c[2];
      int[] allowed = new int[(e + 1) / 2];
      for (int i = 0; i < allowed.length; i++) allowed[i] = 2 * i;
      String what = "flattenSortCount E=" + e + " N=" + n + " k=" + k;
      try (Pair top = ints(routing(n, k, allowed), n, k);
          Pair se = poisonedInts((long) n * k);
          Pair ss = poisonedInts((long) n * k);
          Pair off = poisonedInts(e)) {
        cpu().flattenSortCount(top.c(), e, se.c(), ss.c(), off.c());
        gpu().flattenSortCount(top.g(), e, se.g(), ss.g(), off.g());
        checkInts(what + " sortedExpertIdxs", se);
        checkInts(what + " sortedScatteredIdxs", ss);
        checkInts(what + " expertOffsets", off);
      }
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "BF16"})
  void swiglu(DType dt) {
    gpu();
    // f 70: a thread per element; f 64: 8 columns per thread, 16-byte loads and stores
    for (int f : new int[] {70, 64})
      for (long m : new long[] {1, 74}) {
        try (Pair h = randn(dt, 2, m, 2 * f);
            Pair a = poisoned(dt, m, f);
            Pair dA = randn(dt, 1, m, f);
            Pair dH = poisoned(dt, m, 2 * f)) {
          cpu().swigluForward(h.c(), a.c());
          gpu().swigluForward(h.g(), a.g());
          check("swigluForward " + dt + " M=" + m + " F=" + f, a, tol(dt));
          cpu().swigluBackward(dA.c(), h.c(), dH.c());
          gpu().swigluBackward(dA.g(), h.g(), dH.g());
          check("swigluBackward " + dt + " M=" + m + " F=" + f, dH, tol(dt));
        }
      }
  }
}
