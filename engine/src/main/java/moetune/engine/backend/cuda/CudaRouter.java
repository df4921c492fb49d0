package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.CudaContext.dt;
import static moetune.engine.backend.cuda.CudaContext.require;

import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * routerTopK, routerBackward and flattenSortCount on the GPU (router.cu). Routing stays on the
 * device: top-k, the counting sort and the expert offsets never visit the host. The CPU twin is
 * {@code CpuRouter}; shapes are checked by {@link OpShapes}.
 */
final class CudaRouter {
  private static final int MAX_K = 16; // router.cu: top-k in registers

  private final CudaContext ctx;

  CudaRouter(CudaContext ctx) {
    this.ctx = ctx;
  }

  /**
   * Softmax over E in float32, top-k, renormalised weights; a warp per row (a thread per row below
   * 32 experts and past 2048).
   */
  void topK(Tensor logits, int k, Tensor probs, Tensor topWeights, Tensor topIdx) {
    String op = "routerTopK";
    CudaTensor l = ctx.ct(logits, op, "logits"),
        p = ctx.ct(probs, op, "probs"),
        w = ctx.ct(topWeights, op, "topWeights");
    CudaTensor i = ctx.ct(topIdx, op, "topIdx");
    require(k <= MAX_K, op + ": k=" + k + " exceeds the kernel's " + MAX_K);
    int[] ne = OpShapes.routerTopK(l, k, p, w, i);
    int n = ne[0];
    // a warp per token from 32 experts up to what each lane's 64-bit taken mask holds (2048); a
    // thread per token below (H200 2026-12-03, 16,384 tokens: 64 experts top-16 0.46 -> 0.12-0.24
    // ms with the warp, but 8 experts top-2 0.03-0.05 -> 0.04-0.15 ms: 24 of 32 lanes idle) and
    // above
    boolean warp = ne[1] >= 32 && ne[1] <= 2048;
    ctx.kernel(warp ? "router_topk_warp_kernel" : "router_topk_kernel")
        .shapes(l.describe() + " k=" + k)
        .grid(warp ? (n + 3) / 4 : (n + 127) / 128)
        .block(128)
        .ptr("logits", l.address())
        .i32("ldt", dt(l, op, "logits"))
        .i32("N", n)
        .i32("E", ne[1])
        .i32("K", k)
        .ptr("probs", p.address())
        .ptr("topW", w.address())
        .ptr("topIdx", i.address())
        .launch();
  }

  /** dLogits (N, E) overwrite from the top-k weights' and the probabilities' gradients. */
  void backward(Tensor dTopWeights, Tensor dProbs, Tensor probs, Tensor topIdx, Tensor dLogits) {
    String op = "routerBackward";
    CudaTensor p = ctx.ct(probs, op, "probs"),
        i = ctx.ct(topIdx, op, "topIdx"),
        g = ctx.ct(dLogits, op, "dLogits");
    CudaTensor dw = dTopWeights == null ? null : ctx.ct(dTopWeights, op, "dTopWeights");
    CudaTensor dp = dProbs == null ? null : ctx.ct(dProbs, op, "dProbs");
    int[] nek = OpShapes.routerBackward(dw, dp, p, i, g);
    int n = nek[0];
    ctx.kernel("router_backward_kernel")
        .shapes(p.describe() + " k=" + nek[2])
        .grid((n + 127) / 128)
        .block(128)
        .ptr("dTopW", dw == null ? 0L : dw.address())
        .ptr("dProbs", dp == null ? 0L : dp.address())
        .ptr("probs", p.address())
        .ptr("topIdx", i.address())
        .ptr("dLogits", g.address())
        .i32("gdt", dt(g, op, "dLogits"))
        .i32("N", n)
        .i32("E", nek[1])
        .i32("K", nek[2])
        .launch();
  }

  /** ScatterMoE's flatten_sort_count: count per expert, then a stable placement per expert. */
  // router.cu SORT_CHUNK (slots per block of the chunked sort) and SORT_MAX_E (its shared-memory
  // bound; more experts take the one-block-per-expert sort)
  private static final int SORT_CHUNK = 1024, SORT_MAX_E = 4096;

  void flattenSortCount(
      Tensor topIdx,
      int numExperts,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      Tensor expertOffsets) {
    String op = "flattenSortCount";
    CudaTensor t = ctx.ct(topIdx, op, "topIdx"),
        se = ctx.ct(sortedExpertIdxs, op, "sortedExpertIdxs");
    CudaTensor ss = ctx.ct(sortedScatteredIdxs, op, "sortedScatteredIdxs"),
        off = ctx.ct(expertOffsets, op, "expertOffsets");
    long m = OpShapes.flattenSortCount(t, numExperts, se, ss, off);
    require(numExperts <= 65535, op + ": at most 65535 experts (one block each)");
    if (m > 0 && numExperts <= SORT_MAX_E) {
      // chunked: C blocks count, one block scans the (E, C) counts, C warps place
      long chunks = (m + SORT_CHUNK - 1) / SORT_CHUNK;
      try (Tensor starts = ctx.empty(DType.I32, numExperts * chunks)) {
        long st = ctx.ptr(starts, op, "chunkCounts");
        ctx.kernel("expert_chunk_count_kernel")
            .shapes(t.describe())
            .grid(chunks)
            .block(256)
            .smem(numExperts * 4)
            .ptr("topIdx", t.address())
            .i64("M", m)
            .i32("E", numExperts)
            .i32("C", (int) chunks)
            .ptr("chunkCounts", st)
            .launch();
        ctx.kernel("expert_chunk_scan_kernel")
            .shapes(t.describe())
            .grid(1)
            .block(1024)
            .ptr("chunkCounts", st)
            .i32("E", numExperts)
            .i32("C", (int) chunks)
            .ptr("offsets", off.address())
            .launch();
        ctx.kernel("expert_chunk_place_kernel")
            .shapes(t.describe())
            .grid(chunks)
            .block(32)
            .smem(numExperts * 4)
            .ptr("topIdx", t.address())
            .i64("M", m)
            .i32("E", numExperts)
            .i32("C", (int) chunks)
            .ptr("chunkStarts", st)
            .ptr("sortedExpert", se.address())
            .ptr("sortedScattered", ss.address())
            .launch();
      }
      return;
    }
    try (Tensor counts = ctx.zeros(DType.I32, numExperts)) {
      long c = ctx.ptr(counts, op, "counts");
      ctx.kernel("expert_count_kernel")
          .shapes(t.describe())
          .grid(ctx.gridFor(m))
          .block(256)
          .ptr("topIdx", t.address())
          .i64("M", m)
          .i32("E", numExperts)
          .ptr("counts", c)
          .launch();
      ctx.kernel("expert_place_kernel")
          .shapes(t.describe())
          .grid(numExperts)
          .block(1024)
          .ptr("topIdx", t.address())
          .i64("M", m)
          .i32("E", numExperts)
          .ptr("counts", c)
          .ptr("sortedExpert", se.address())
          .ptr("sortedScattered", ss.address())
          .ptr("offsets", off.address())
          .launch();
    }
  }
}
