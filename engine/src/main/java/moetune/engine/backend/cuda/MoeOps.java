package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.CudaBackend.dt;
import static moetune.engine.backend.cuda.CudaBackend.require;
import static moetune.engine.backend.cuda.CudaBackend.requireDtype;

import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * Routing and the ScatterMoE kernels on the GPU (router.cu, scatter2scatter.cu, group.cu,
 * groupxty.cu, swiglu.cu). Routing stays on the device: top-k, the counting sort and the expert
 * offsets never visit the host.
 */
final class MoeOps {
  private static final int MAX_K = 16; // router.cu
  private static final int TILE = 64; // tile.cuh TBM = TBN (the float32 SIMT kernels)
  private static final int TC_TILE =
      128; // tc_tile.cuh TC_BM = TC_BN (the bf16 tensor-core kernels, variant 1)
  // moe_mma.cu (variant 2: mma.sync + 4-stage cp.async): MM_BM = MM_BN, MM_SMEM_BYTES
  private static final int MM_TILE = 128, MM_SMEM_BYTES = 4 * 2 * 128 * 40 * 2;
  // its per-block expert table takes (2E + 1) ints of shared memory next to the 80 KiB of stages;
  // up to 4096 experts two blocks still fit an SM (beyond, variant 1 runs)
  private static final int MM_MAX_EXPERTS = 4096;
  // moe_wgmma.cu (variant 3: sm_90a wgmma): wg_smem_bytes(256, 4) and wg_smem_bytes(128, 3); the
  // MN-major descriptors' leading byte offset (one 64-column slab of a tile)
  private static final int WG_N256_SMEM = 4 * (128 + 256) * 64 * 2 + 1024,
      WG_N128_SMEM = 3 * (128 + 128) * 64 * 2 + 1024,
      WG_SLAB = 8192;
  // moe_wgmma_ws.cu (variant 5: warp-specialised, TMA): ws_smem_bytes(256, 4), ws_smem_bytes(128,
  // 6) (stages + 1 KiB alignment slack + the full and empty barriers), 384 threads
  private static final int WS_256_SMEM = 4 * (128 + 256) * 64 * 2 + 1024 + 2 * 4 * 8,
      WS_128_SMEM = 6 * (128 + 128) * 64 * 2 + 1024 + 2 * 6 * 8,
      WS_THREADS = 384;

  /**
   * Which bf16 kernels run the grouped products (environment MOETUNE_MOE_KERNEL). AUTO takes, per
   * product, the kernel measured fastest on the device (kernels/lab/moe/README.md): variant 3
   * (wgmma, sm_90a) on compute capability 9.0, variant 2 (mma.sync) elsewhere.
   */
  enum Kernel {
    AUTO,
    /** Variant 2 (moe_mma.cu) for every product. */
    V2,
    /** Variant 3 with 128 x 256 tiles for every product (compute capability 9.0 only). */
    N256,
    /** Variant 3 with 128 x 128 tiles for every product (compute capability 9.0 only). */
    N128,
    /**
     * Variant 5 (warp-specialised: TMA weights, mbarrier stages, setmaxnreg) with 128 x 256 tiles
     * for every product (compute capability 9.0 only).
     */
    WS256,
    /** Variant 5 with 128 x 128 tiles (6 stages) for every product (compute capability 9.0). */
    WS128;

    boolean warpSpecialised() {
      return this == WS256 || this == WS128;
    }

    int tileN() {
      return this == N256 || this == WS256 ? 256 : 128;
    }

    static Kernel fromEnv(String value) {
      if (value == null || value.isBlank()) {
        return AUTO;
      }
      return switch (value.strip().toLowerCase(java.util.Locale.ROOT)) {
        case "auto" -> AUTO;
        case "v2" -> V2;
        case "n256" -> N256;
        case "n128" -> N128;
        case "ws256" -> WS256;
        case "ws128" -> WS128;
        default ->
            throw new IllegalArgumentException(
                "MOETUNE_MOE_KERNEL="
                    + value
                    + " is not a MoE kernel family: use auto (the default), v2 (mma.sync), n256,"
                    + " n128, ws256 or ws128 (wgmma, Hopper only)");
      };
    }
  }

  /** The bf16 product kinds, each with its own measured choice. */
  enum Product {
    /** x W^T (the forward products). */
    FORWARD,
    /** x W (the dX products). */
    DX,
    /** dy^T x grouped over rows (the weight gradients). */
    DW
  }

  private final CudaBackend b;
  private Kernel kernel;

  MoeOps(CudaBackend b) {
    this.b = b;
    this.kernel = Kernel.fromEnv(System.getenv("MOETUNE_MOE_KERNEL"));
  }

  Kernel kernel() {
    return kernel;
  }

  /** Tests and benchmarks switch kernel families on one backend. */
  void kernel(Kernel k) {
    this.kernel = k;
  }

  /** Whether this device runs the sm_90a kernels (variant 3). */
  boolean hopper() {
    return b.computeCapability() == 90;
  }

  /**
   * The variant-3 configuration for a product that variant 2 can take, or null for variant 2.
   * AUTO's per-product choice is the lab's measurement on the H200, 2026-12-02, the three shapes of
   * issue 10 (kernels/lab/moe/README.md): 128 x 256 tiles (one block per SM) where the output rows
   * are grouped, and for scattered output rows only over a long k (inDim >= 16384), where the
   * scattered epilogue that no second block overlaps costs little; 128 x 128 tiles (two blocks per
   * SM) for the other scattered-output products and the weight gradients.
   */
  private Kernel wgmma(Product p, long experts, boolean scatteredOut, long inDim) {
    if (!hopper() || experts > MM_MAX_EXPERTS) {
      if (kernel != Kernel.AUTO && kernel != Kernel.V2) {
        require(
            hopper(),
            "MOETUNE_MOE_KERNEL="
                + kernel.name().toLowerCase(java.util.Locale.ROOT)
                + " needs compute capability 9.0; "
                + b.name()
                + " has "
                + b.computeCapability()
                + ": use auto or v2");
      }
      return null;
    }
    return switch (kernel) {
      case V2 -> null;
      case N256, N128, WS256, WS128 -> kernel;
      case AUTO ->
          switch (p) {
            case FORWARD, DX -> !scatteredOut || inDim >= 16384 ? Kernel.N256 : Kernel.N128;
            case DW -> Kernel.N128;
          };
    };
  }

  void routerTopK(Tensor logits, int k, Tensor probs, Tensor topWeights, Tensor topIdx) {
    String op = "routerTopK";
    CudaTensor l = b.ct(logits, op, "logits"),
        p = b.ct(probs, op, "probs"),
        w = b.ct(topWeights, op, "topWeights");
    CudaTensor i = b.ct(topIdx, op, "topIdx");
    long n = l.rows(), e = l.cols();
    require(
        k >= 1 && k <= e && k <= MAX_K,
        op + ": k=" + k + " must be in [1, min(E=" + e + ", " + MAX_K + ")]");
    require(
        p.numel() == n * e && w.numel() == n * k && i.numel() == n * k,
        op
            + ": logits "
            + l.describe()
            + ", k="
            + k
            + " but probs "
            + p.describe()
            + ", topWeights "
            + w.describe()
            + ", topIdx "
            + i.describe());
    requireDtype(p, DType.F32, op, "probs");
    requireDtype(w, DType.F32, op, "topWeights");
    requireDtype(i, DType.I32, op, "topIdx");
    b.launch(
        "router_topk_kernel",
        l.describe() + " k=" + k,
        (n + 127) / 128,
        1,
        1,
        128,
        0,
        l.address(),
        dt(l, op, "logits"),
        (int) n,
        (int) e,
        k,
        p.address(),
        w.address(),
        i.address());
  }

  void routerBackward(
      Tensor dTopWeights, Tensor dProbs, Tensor probs, Tensor topIdx, Tensor dLogits) {
    String op = "routerBackward";
    CudaTensor p = b.ct(probs, op, "probs"),
        i = b.ct(topIdx, op, "topIdx"),
        g = b.ct(dLogits, op, "dLogits");
    long n = p.rows(), e = p.cols(), k = i.numel() / Math.max(1, n);
    require(
        i.numel() == n * k && g.numel() == n * e,
        op + ": probs " + p.describe() + ", topIdx " + i.describe() + ", dLogits " + g.describe());
    requireDtype(p, DType.F32, op, "probs");
    requireDtype(i, DType.I32, op, "topIdx");
    if (dTopWeights != null) {
      require(
          dTopWeights.numel() == n * k,
          op + ": dTopWeights " + dTopWeights.describe() + " for topIdx " + i.describe());
      requireDtype(dTopWeights, DType.F32, op, "dTopWeights");
    }
    if (dProbs != null) {
      require(
          dProbs.numel() == n * e,
          op + ": dProbs " + dProbs.describe() + " for probs " + p.describe());
      requireDtype(dProbs, DType.F32, op, "dProbs");
    }
    b.launch(
        "router_backward_kernel",
        p.describe() + " k=" + k,
        (n + 127) / 128,
        1,
        1,
        128,
        0,
        b.ptr(dTopWeights, op, "dTopWeights"),
        b.ptr(dProbs, op, "dProbs"),
        p.address(),
        i.address(),
        g.address(),
        dt(g, op, "dLogits"),
        (int) n,
        (int) e,
        (int) k);
  }

  void flattenSortCount(
      Tensor topIdx,
      int numExperts,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      Tensor expertOffsets) {
    String op = "flattenSortCount";
    CudaTensor t = b.ct(topIdx, op, "topIdx"), se = b.ct(sortedExpertIdxs, op, "sortedExpertIdxs");
    CudaTensor ss = b.ct(sortedScatteredIdxs, op, "sortedScatteredIdxs"),
        off = b.ct(expertOffsets, op, "expertOffsets");
    long m = t.numel();
    require(
        se.numel() == m && ss.numel() == m && off.numel() == numExperts && numExperts > 0,
        op
            + ": topIdx "
            + t.describe()
            + ", E="
            + numExperts
            + " but sortedExpertIdxs "
            + se.describe()
            + ", sortedScatteredIdxs "
            + ss.describe()
            + ", expertOffsets "
            + off.describe());
    for (CudaTensor c : new CudaTensor[] {t, se, ss, off})
      requireDtype(c, DType.I32, op, "index tensors");
    require(numExperts <= 65535, op + ": at most 65535 experts (one block each)");
    try (Tensor counts = b.zeros(DType.I32, numExperts)) {
      long c = b.ptr(counts, op, "counts");
      b.launch(
          "expert_count_kernel",
          t.describe(),
          b.gridFor(m),
          1,
          1,
          256,
          0,
          t.address(),
          m,
          numExperts,
          c);
      b.launch(
          "expert_place_kernel",
          t.describe(),
          numExperts,
          1,
          1,
          1024,
          0,
          t.address(),
          m,
          numExperts,
          c,
          se.address(),
          ss.address(),
          off.address());
    }
  }

  void scatter2scatter(
      Tensor x,
      Tensor w,
      Tensor bias,
      boolean transW,
      int fanOut,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      boolean groupedIn,
      boolean groupedOut,
      Tensor y) {
    String op = "scatter2scatter";
    CudaTensor xt = b.ct(x, op, "x"), wt = b.ct(w, op, "W"), yt = b.ct(y, op, "y");
    CudaTensor se = b.ct(sortedExpertIdxs, op, "sortedExpertIdxs"),
        ss = b.ct(sortedScatteredIdxs, op, "sortedScatteredIdxs");
    require(wt.rank() == 3, op + ": W must be (E, O, I), got " + wt.describe());
    long e = wt.dim(0), o = wt.dim(1), i = wt.dim(2);
    long in = transW ? i : o, out = transW ? o : i;
    long m = se.numel();
    require(fanOut >= 1, op + ": fanOut " + fanOut + " must be >= 1");
    long xRows = groupedIn ? m : m / fanOut;
    require(
        ss.numel() == m && (groupedIn || m % fanOut == 0),
        op
            + ": routing covers "
            + m
            + " rows, sortedScatteredIdxs "
            + ss.describe()
            + ", k="
            + fanOut);
    require(
        xt.cols() == in && xt.rows() == xRows,
        op
            + ": x "
            + xt.describe()
            + " should be ("
            + xRows
            + ", "
            + in
            + ") for W "
            + wt.describe()
            + (transW ? "^T" : "")
            + ", k="
            + fanOut
            + ", groupedIn="
            + groupedIn
            + ", routing over "
            + m
            + " rows");
    require(
        yt.rows() == m && yt.cols() == out,
        op + ": y " + yt.describe() + " should be (" + m + ", " + out + ")");
    if (bias != null) {
      require(
          bias.numel() == e * out,
          op + ": bias " + bias.describe() + " should be (" + e + ", " + out + ")");
    }
    requireDtype(se, DType.I32, op, "sortedExpertIdxs");
    requireDtype(ss, DType.I32, op, "sortedScatteredIdxs");
    String shapes = "x " + xt.describe() + " W " + wt.describe() + " k=" + fanOut;
    if (xt.dtype() == DType.BF16 && wt.dtype() == DType.BF16) {
      boolean v2 =
          mmaRows(in, transW ? 8 : out)
              && xt.address() % 16 == 0
              && wt.address() % 16 == 0
              && yt.address() % 4 == 0
              && e <= MM_MAX_EXPERTS;
      // variant 2 is persistent: about two blocks per SM walk the (expert row tile, column tile)
      // space that each block builds from the sorted expert indices; variant 1 (rows not a
      // multiple of 8 elements, unaligned bases) assigns row tiles per expert on the device, so
      // its grid is an upper bound
      Kernel wg = v2 ? wgmma(transW ? Product.FORWARD : Product.DX, e, !groupedOut, in) : null;
      if (wg != null && wg.warpSpecialised()) {
        if (m == 0) {
          return; // no routed rows (a tensor map needs extents of at least 1)
        }
        int bn = wg.tileN();
        long wsTiles = ((m + MM_TILE - 1) / MM_TILE + e) * ((out + bn - 1) / bn);
        // weight: (E, out, in) read as (n, k) boxes for x W^T, (E, in, out) as 64 x 64 slabs of
        // (k, n) for x W; rows of x by TMA when grouped, else gathered by cp.async (tmA unused)
        int[] tmW =
            transW
                ? TensorMaps.bf16(
                    wt.address(), new long[] {in, out, e}, new int[] {64, bn, 1}, op + " W")
                : TensorMaps.bf16(
                    wt.address(), new long[] {out, in, e}, new int[] {64, 64, 1}, op + " W");
        int[] tmA =
            groupedIn
                ? TensorMaps.bf16(xt.address(), new long[] {in, m}, new int[] {64, 128}, op + " x")
                : tmW;
        String mode = (transW ? "t" : "n") + (groupedIn ? "c" : "g");
        b.launch(
            "scatter2scatter_ws" + bn + "_" + mode + "_kernel5",
            shapes,
            Math.min(wsTiles, b.multiprocessors()),
            1,
            1,
            WS_THREADS,
            (bn == 256 ? WS_256_SMEM : WS_128_SMEM) + (int) (2 * e + 1) * 4,
            tmW,
            tmA,
            xt.address(),
            b.ptr(bias, op, "bias"),
            dt(bias, op, "bias"),
            yt.address(),
            dt(yt, op, "y"),
            se.address(),
            ss.address(),
            (int) m,
            (int) e,
            (int) in,
            (int) out,
            fanOut,
            groupedOut ? 1 : 0);
        return;
      }
      if (wg != null) {
        int bn = wg == Kernel.N256 ? 256 : 128;
        long wgTiles = ((m + MM_TILE - 1) / MM_TILE + e) * ((out + bn - 1) / bn);
        b.launch(
            wg == Kernel.N256
                ? "scatter2scatter_wgmma_n256_kernel3"
                : "scatter2scatter_wgmma_n128_kernel3",
            shapes,
            Math.min(wgTiles, (wg == Kernel.N256 ? 1L : 2L) * b.multiprocessors()),
            1,
            1,
            256,
            (wg == Kernel.N256 ? WG_N256_SMEM : WG_N128_SMEM) + (int) (2 * e + 1) * 4,
            xt.address(),
            wt.address(),
            b.ptr(bias, op, "bias"),
            dt(bias, op, "bias"),
            yt.address(),
            dt(yt, op, "y"),
            se.address(),
            ss.address(),
            (int) m,
            (int) e,
            (int) in,
            (int) out,
            transW ? 1 : 0,
            fanOut,
            groupedIn ? 1 : 0,
            groupedOut ? 1 : 0,
            WG_SLAB);
        return;
      }
      long tiles = ((m + MM_TILE - 1) / MM_TILE + e) * ((out + MM_TILE - 1) / MM_TILE);
      b.launch(
          v2 ? "scatter2scatter_bf16_kernel2" : "scatter2scatter_bf16_kernel",
          shapes,
          v2 ? Math.min(tiles, 2L * b.multiprocessors()) : (out + TC_TILE - 1) / TC_TILE,
          v2 ? 1 : (m + TC_TILE - 1) / TC_TILE + e,
          1,
          256,
          v2 ? MM_SMEM_BYTES + (int) (2 * e + 1) * 4 : (int) (e * 4),
          xt.address(),
          wt.address(),
          b.ptr(bias, op, "bias"),
          dt(bias, op, "bias"),
          yt.address(),
          dt(yt, op, "y"),
          se.address(),
          ss.address(),
          (int) m,
          (int) e,
          (int) in,
          (int) out,
          transW ? 1 : 0,
          fanOut,
          groupedIn ? 1 : 0,
          groupedOut ? 1 : 0);
      return;
    }
    long rowTiles = (m + TILE - 1) / TILE + e;
    b.launch(
        "scatter2scatter_kernel",
        "x " + xt.describe() + " W " + wt.describe() + " k=" + fanOut,
        (out + TILE - 1) / TILE,
        rowTiles,
        1,
        256,
        (int) (e * 4),
        xt.address(),
        dt(xt, op, "x"),
        wt.address(),
        dt(wt, op, "W"),
        b.ptr(bias, op, "bias"),
        dt(bias, op, "bias"),
        yt.address(),
        dt(yt, op, "y"),
        se.address(),
        ss.address(),
        (int) m,
        (int) e,
        (int) in,
        (int) out,
        transW ? 1 : 0,
        fanOut,
        groupedIn ? 1 : 0,
        groupedOut ? 1 : 0);
  }

  /**
   * Whether variant 2 (moe_mma.cu) applies: its 16-byte cp.async copies need the contiguous
   * dimension of each operand to be a multiple of 8 bf16 elements (row starts 16-byte aligned).
   */
  private static boolean mmaRows(long a, long b) {
    return a % 8 == 0 && b % 8 == 0;
  }

  void group(Tensor x, Tensor sortedScatteredIdxs, int fanOut, Tensor gates, Tensor out) {
    String op = "group";
    CudaTensor xt = b.ct(x, op, "x"),
        ss = b.ct(sortedScatteredIdxs, op, "sortedScatteredIdxs"),
        o = b.ct(out, op, "out");
    long m = ss.numel(), d = xt.cols();
    require(
        fanOut >= 1 && m % fanOut == 0 && xt.rows() == m / fanOut && o.rows() == m && o.cols() == d,
        op
            + ": x "
            + xt.describe()
            + ", k="
            + fanOut
            + ", routing over "
            + m
            + " rows, out "
            + o.describe());
    requireDtype(ss, DType.I32, op, "sortedScatteredIdxs");
    if (gates != null) {
      require(
          gates.numel() == m,
          op + ": gates " + gates.describe() + " should have " + m + " entries");
      requireDtype(gates, DType.F32, op, "gates");
    }
    b.launch(
        "group_kernel",
        xt.describe() + " k=" + fanOut,
        m,
        1,
        1,
        LayerOps.blockFor(d),
        0,
        xt.address(),
        dt(xt, op, "x"),
        ss.address(),
        fanOut,
        b.ptr(gates, op, "gates"),
        o.address(),
        dt(o, op, "out"),
        (int) d);
  }

  void groupXtY(Tensor x, Tensor dy, Tensor expertOffsets, Tensor dW, Tensor db) {
    String op = "groupXtY";
    CudaTensor xt = b.ct(x, op, "x"),
        g = b.ct(dy, op, "dy"),
        off = b.ct(expertOffsets, op, "expertOffsets"),
        w = b.ct(dW, op, "dW");
    require(w.rank() == 3, op + ": dW must be (E, O, I), got " + w.describe());
    long e = w.dim(0), o = w.dim(1), i = w.dim(2), m = xt.rows();
    require(
        xt.cols() == i && g.cols() == o && g.rows() == m && off.numel() == e,
        op
            + ": x "
            + xt.describe()
            + ", dy "
            + g.describe()
            + ", expertOffsets "
            + off.describe()
            + ", dW "
            + w.describe());
    requireDtype(off, DType.I32, op, "expertOffsets");
    require(
        e <= 65535 && (o + TILE - 1) / TILE <= 65535,
        op + ": too many experts or output rows for the grid: " + w.describe());
    if (xt.dtype() == DType.BF16 && g.dtype() == DType.BF16) {
      boolean v2 = mmaRows(i, o) && xt.address() % 16 == 0 && g.address() % 16 == 0;
      Kernel wg = v2 && w.address() % 8 == 0 ? wgmma(Product.DW, e, false, m) : null;
      if (wg != null && wg.warpSpecialised()) {
        // no rows (m == 0): dW += nothing, and a tensor map needs extents of at least 1
        int bn = wg.tileN();
        long wsTiles = m == 0 ? 0 : e * ((o + MM_TILE - 1) / MM_TILE) * ((i + bn - 1) / bn);
        b.launch(
            "group_xty_ws" + bn + "_kernel5",
            "x " + xt.describe() + " dy " + g.describe(),
            Math.min(wsTiles, b.multiprocessors()),
            1,
            1,
            WS_THREADS,
            bn == 256 ? WS_256_SMEM : WS_128_SMEM,
            wsTiles == 0
                ? new int[32]
                : TensorMaps.bf16(g.address(), new long[] {o, m}, new int[] {64, 64}, op + " dy"),
            wsTiles == 0
                ? new int[32]
                : TensorMaps.bf16(xt.address(), new long[] {i, m}, new int[] {64, 64}, op + " x"),
            xt.address(),
            g.address(),
            off.address(),
            w.address(),
            dt(w, op, "dW"),
            (int) e,
            (int) i,
            (int) o);
      } else if (wg != null) {
        int bn = wg == Kernel.N256 ? 256 : 128;
        b.launch(
            wg == Kernel.N256 ? "group_xty_wgmma_n256_kernel3" : "group_xty_wgmma_n128_kernel3",
            "x " + xt.describe() + " dy " + g.describe(),
            (i + bn - 1) / bn,
            (o + MM_TILE - 1) / MM_TILE,
            e,
            256,
            wg == Kernel.N256 ? WG_N256_SMEM : WG_N128_SMEM,
            xt.address(),
            g.address(),
            off.address(),
            w.address(),
            dt(w, op, "dW"),
            (int) i,
            (int) o,
            WG_SLAB);
      } else {
        int tile = v2 ? MM_TILE : TC_TILE;
        b.launch(
            v2 ? "group_xty_bf16_kernel2" : "group_xty_bf16_kernel",
            "x " + xt.describe() + " dy " + g.describe(),
            (i + tile - 1) / tile,
            (o + tile - 1) / tile,
            e,
            256,
            v2 ? MM_SMEM_BYTES : 0,
            xt.address(),
            g.address(),
            off.address(),
            w.address(),
            dt(w, op, "dW"),
            (int) i,
            (int) o);
      }
    } else {
      b.launch(
          "group_xty_kernel",
          "x " + xt.describe() + " dy " + g.describe(),
          (i + TILE - 1) / TILE,
          (o + TILE - 1) / TILE,
          e,
          256,
          0,
          xt.address(),
          dt(xt, op, "x"),
          g.address(),
          dt(g, op, "dy"),
          off.address(),
          w.address(),
          dt(w, op, "dW"),
          (int) i,
          (int) o);
    }
    if (db != null) {
      CudaTensor bt = b.ct(db, op, "db");
      require(
          bt.numel() == e * o, op + ": db " + bt.describe() + " should be (" + e + ", " + o + ")");
      b.launch(
          "group_db_kernel",
          "dy " + g.describe(),
          (o + 255) / 256,
          e,
          1,
          256,
          0,
          g.address(),
          dt(g, op, "dy"),
          off.address(),
          bt.address(),
          dt(bt, op, "db"),
          (int) o);
    }
  }

  void combine(Tensor expanded, Tensor gates, int k, Tensor y) {
    String op = "combine";
    CudaTensor ex = b.ct(expanded, op, "expanded"), yt = b.ct(y, op, "y");
    long n = yt.rows(), d = yt.cols();
    require(
        k >= 1 && ex.rows() == n * k && ex.cols() == d,
        op + ": expanded " + ex.describe() + ", k=" + k + ", y " + yt.describe());
    if (gates != null) {
      require(
          gates.numel() == n * k,
          op + ": gates " + gates.describe() + " should be (" + n + ", " + k + ")");
      requireDtype(gates, DType.F32, op, "gates");
    }
    b.launch(
        "combine_kernel",
        ex.describe() + " k=" + k,
        n,
        1,
        1,
        LayerOps.blockFor(d),
        0,
        ex.address(),
        dt(ex, op, "expanded"),
        b.ptr(gates, op, "gates"),
        k,
        yt.address(),
        dt(yt, op, "y"),
        (int) d);
  }

  void combineGatesBackward(Tensor dY, Tensor expanded, int k, Tensor dGates) {
    String op = "combineGatesBackward";
    CudaTensor g = b.ct(dY, op, "dY"),
        ex = b.ct(expanded, op, "expanded"),
        dg = b.ct(dGates, op, "dGates");
    long n = g.rows(), d = g.cols();
    require(
        k >= 1 && ex.rows() == n * k && ex.cols() == d && dg.numel() == n * k,
        op
            + ": dY "
            + g.describe()
            + ", expanded "
            + ex.describe()
            + ", k="
            + k
            + ", dGates "
            + dg.describe());
    requireDtype(dg, DType.F32, op, "dGates");
    b.launch(
        "combine_gates_backward_kernel",
        ex.describe() + " k=" + k,
        (n * k * 32 + 255) / 256,
        1,
        1,
        256,
        0,
        g.address(),
        dt(g, op, "dY"),
        ex.address(),
        dt(ex, op, "expanded"),
        k,
        dg.address(),
        n * k,
        (int) d);
  }

  void swigluForward(Tensor h, Tensor a) {
    String op = "swigluForward";
    CudaTensor ht = b.ct(h, op, "h"), at = b.ct(a, op, "a");
    long m = at.rows(), f = at.cols();
    require(
        ht.rows() == m && ht.cols() == 2 * f,
        op
            + ": h "
            + ht.describe()
            + " should be ("
            + m
            + ", "
            + 2 * f
            + ") for a "
            + at.describe());
    b.launch(
        "swiglu_forward_kernel",
        ht.describe(),
        b.gridFor(m * f),
        1,
        1,
        256,
        0,
        ht.address(),
        dt(ht, op, "h"),
        at.address(),
        dt(at, op, "a"),
        m,
        (int) f);
  }

  void swigluBackward(Tensor dA, Tensor h, Tensor dH) {
    String op = "swigluBackward";
    CudaTensor g = b.ct(dA, op, "dA"), ht = b.ct(h, op, "h"), dh = b.ct(dH, op, "dH");
    long m = g.rows(), f = g.cols();
    require(
        ht.rows() == m && ht.cols() == 2 * f && dh.numel() == ht.numel(),
        op + ": dA " + g.describe() + ", h " + ht.describe() + ", dH " + dh.describe());
    b.launch(
        "swiglu_backward_kernel",
        ht.describe(),
        b.gridFor(m * f),
        1,
        1,
        256,
        0,
        g.address(),
        dt(g, op, "dA"),
        ht.address(),
        dt(ht, op, "h"),
        dh.address(),
        dt(dh, op, "dH"),
        m,
        (int) f);
  }
}
