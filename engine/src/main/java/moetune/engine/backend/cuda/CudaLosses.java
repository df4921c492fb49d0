package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.CudaContext.dt;

import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * crossEntropy, loadBalancingLoss, expertLoadStats, routerZLoss and sum on the GPU (loss.cu). None
 * reads back to the host. The CPU twin is {@code CpuLosses}.
 */
final class CudaLosses {
  /** The largest logits row cross_entropy_kernel keeps in shared memory (two blocks per SM). */
  static final long CE_ROW_CACHE_BYTES = 96 * 1024;

  private final CudaContext b;
  private final CudaElementwise elementwise; // sum zeroes its output first

  CudaLosses(CudaContext b, CudaElementwise elementwise) {
    this.b = b;
    this.elementwise = elementwise;
  }

  void crossEntropy(Tensor logits, Tensor targets, Tensor losses, Tensor dLogits, float dScale) {
    String op = "crossEntropy";
    CudaTensor l = b.ct(logits, op, "logits"),
        t = b.ct(targets, op, "targets"),
        out = b.ct(losses, op, "losses");
    CudaTensor dl = dLogits == null ? null : b.ct(dLogits, op, "dLogits");
    int[] nv = OpShapes.crossEntropy(l, t, out, dl);
    long n = nv[0], v = nv[1];
    // The gradient in the logits' dtype (in place, the training step): 512 threads and the row in
    // dynamic shared memory when it takes at most 96 KiB (two or more blocks per SM), so the
    // logits cross DRAM once each way; otherwise 1024 threads and a second read of the row.
    long rowBytes = v * l.dtype().bytes();
    boolean cacheRow =
        dLogits != null
            && dLogits.dtype() == l.dtype()
            && v % 8 == 0
            && l.address() % 16 == 0
            && b.ptr(dLogits, op, "dLogits") % 16 == 0
            && rowBytes <= CE_ROW_CACHE_BYTES
            && !CudaBackend.before("crossEntropy");
    b.kernel("cross_entropy_kernel")
        .shapes(l.describe())
        .grid(n)
        .block(cacheRow ? 512 : 1024)
        .smem(cacheRow ? (int) rowBytes : 0)
        .ptr("logits", l.address())
        .i32("ldt", dt(l, op, "logits"))
        .ptr("targets", t.address())
        .ptr("losses", out.address())
        .ptr("dlogits", b.ptr(dLogits, op, "dLogits"))
        .i32("gdt", dt(dLogits, op, "dLogits"))
        .f32("dScale", dScale)
        .i32("V", (int) v)
        .launch();
  }

  void expertLoadStats(Tensor probs, Tensor topIdx, Tensor rowMask, Tensor acc) {
    String op = "expertLoadStats";
    CudaTensor p = b.ct(probs, op, "probs"),
        i = b.ct(topIdx, op, "topIdx"),
        a = b.ct(acc, op, "acc");
    CudaTensor mt = rowMask == null ? null : b.ct(rowMask, op, "rowMask");
    int[] rekl = OpShapes.expertLoadStats(p, i, mt, a);
    long r = rekl[0], e = rekl[1], k = rekl[2], layers = rekl[3];
    long n = r / layers;
    b.kernel("expert_load_stats_kernel")
        .shapes(p.describe())
        .grid(Math.min(b.gridFor(n), 64), layers)
        .block(256)
        .smem((int) (e + 2) * 4)
        .ptr("probs", p.address())
        .ptr("topIdx", i.address())
        .ptr("mask", b.ptr(rowMask, op, "rowMask"))
        .ptr("acc", a.address())
        .i64("N", n)
        .i32("E", (int) e)
        .i32("K", (int) k)
        .launch();
  }

  void loadBalancingLoss(
      Tensor probs, Tensor topIdx, Tensor rowMask, Tensor lossOut, Tensor dProbs, float dScale) {
    String op = "loadBalancingLoss";
    CudaTensor p = b.ct(probs, op, "probs"),
        i = b.ct(topIdx, op, "topIdx"),
        lo = b.ct(lossOut, op, "lossOut");
    CudaTensor mt = rowMask == null ? null : b.ct(rowMask, op, "rowMask");
    CudaTensor dp = dProbs == null ? null : b.ct(dProbs, op, "dProbs");
    int[] rek = OpShapes.loadBalancingLoss(p, i, mt, lo, dp);
    long r = rek[0], e = rek[1], k = rek[2];
    long mask = b.ptr(rowMask, op, "rowMask");
    try (Tensor ws = b.zeros(DType.F32, 2 * e + 1)) {
      long w = b.ptr(ws, op, "stats");
      b.kernel("lb_stats_kernel")
          .shapes(p.describe())
          .grid(Math.min(b.gridFor(r), 256))
          .block(256)
          .smem((int) (2 * e + 1) * 4)
          .ptr("probs", p.address())
          .ptr("topIdx", i.address())
          .ptr("mask", mask)
          .ptr("ws", w)
          .i64("R", r)
          .i32("E", (int) e)
          .i32("K", (int) k)
          .launch();
      b.kernel("lb_loss_kernel")
          .shapes(p.describe())
          .grid(1)
          .block(32)
          .ptr("ws", w)
          .i32("E", (int) e)
          .ptr("lossOut", lo.address())
          .launch();
      if (dProbs != null) {
        b.kernel("lb_grad_kernel")
            .shapes(p.describe())
            .grid(b.gridFor(r * e))
            .block(256)
            .ptr("ws", w)
            .ptr("mask", mask)
            .ptr("dprobs", b.ptr(dProbs, op, "dProbs"))
            .f32("dScale", dScale)
            .i64("R", r)
            .i32("E", (int) e)
            .launch();
      }
    }
  }

  void routerZLoss(Tensor logits, Tensor rowMask, Tensor lossOut, Tensor dLogits, float dScale) {
    String op = "routerZLoss";
    CudaTensor l = b.ct(logits, op, "logits"), lo = b.ct(lossOut, op, "lossOut");
    CudaTensor mt = rowMask == null ? null : b.ct(rowMask, op, "rowMask");
    CudaTensor dl = dLogits == null ? null : b.ct(dLogits, op, "dLogits");
    int[] re = OpShapes.routerZLoss(l, mt, lo, dl);
    long r = re[0], e = re[1];
    long mask = b.ptr(rowMask, op, "rowMask");
    long blocks = (r * 32 + 255) / 256;
    try (Tensor ws = b.zeros(DType.F32, 2)) {
      long w = b.ptr(ws, op, "stats");
      b.kernel("zloss_stats_kernel")
          .shapes(l.describe())
          .grid(blocks)
          .block(256)
          .ptr("logits", l.address())
          .ptr("mask", mask)
          .ptr("ws", w)
          .i64("R", r)
          .i32("E", (int) e)
          .launch();
      b.kernel("zloss_loss_kernel")
          .shapes(l.describe())
          .grid(1)
          .block(1)
          .ptr("ws", w)
          .ptr("lossOut", lo.address())
          .launch();
      if (dLogits != null) {
        b.kernel("zloss_grad_kernel")
            .shapes(l.describe())
            .grid(blocks)
            .block(256)
            .ptr("logits", l.address())
            .ptr("mask", mask)
            .ptr("ws", w)
            .ptr("dlogits", b.ptr(dLogits, op, "dLogits"))
            .f32("dScale", dScale)
            .i64("R", r)
            .i32("E", (int) e)
            .launch();
      }
    }
  }

  void sum(Tensor x, float scale, Tensor out) {
    String op = "sum";
    CudaTensor xt = b.ct(x, op, "x"), o = b.ct(out, op, "out");
    OpShapes.sum(xt, o);
    elementwise.fill(o, 0f);
    b.kernel("sum_kernel")
        .shapes(xt.describe())
        .grid(Math.min(b.gridFor(xt.numel()), 1024))
        .block(256)
        .ptr("x", xt.address())
        .i32("dt", dt(xt, op, "x"))
        .f32("scale", scale)
        .ptr("out", o.address())
        .i64("n", xt.numel())
        .launch();
  }
}
