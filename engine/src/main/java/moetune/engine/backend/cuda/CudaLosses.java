package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.CudaContext.dt;
import static moetune.engine.backend.cuda.CudaContext.require;
import static moetune.engine.backend.cuda.CudaContext.requireDtype;

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
    long n = l.rows(), v = l.cols();
    require(
        t.numel() == n && out.numel() == n,
        op
            + ": logits "
            + l.describe()
            + ", targets "
            + t.describe()
            + ", losses "
            + out.describe());
    requireDtype(t, DType.I32, op, "targets");
    requireDtype(out, DType.F32, op, "losses");
    if (dLogits != null) {
      require(
          dLogits.numel() == l.numel(),
          op + ": dLogits " + dLogits.describe() + " does not match logits " + l.describe());
    }
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
    long r = p.rows(), e = p.cols(), k = i.numel() / Math.max(1, r), layers = a.rows();
    requireDtype(p, DType.F32, op, "probs");
    requireDtype(i, DType.I32, op, "topIdx");
    requireDtype(a, DType.F32, op, "acc");
    require(
        i.numel() == r * k && a.cols() == e + 2 && layers >= 1 && r % layers == 0,
        op
            + ": probs "
            + p.describe()
            + ", topIdx "
            + i.describe()
            + ", acc "
            + a.describe()
            + ": acc must be (L, E+2) with L dividing the rows of probs");
    if (rowMask != null) {
      require(
          rowMask.numel() == r,
          op + ": rowMask " + rowMask.describe() + " should have " + r + " rows");
      requireDtype(rowMask, DType.F32, op, "rowMask");
    }
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
    long r = p.rows(), e = p.cols(), k = i.numel() / Math.max(1, r);
    require(
        i.numel() == r * k && lo.numel() == 1,
        op + ": probs " + p.describe() + ", topIdx " + i.describe() + ", lossOut " + lo.describe());
    requireDtype(p, DType.F32, op, "probs");
    requireDtype(i, DType.I32, op, "topIdx");
    requireDtype(lo, DType.F32, op, "lossOut");
    if (rowMask != null) {
      require(
          rowMask.numel() == r,
          op + ": rowMask " + rowMask.describe() + " should have " + r + " rows");
      requireDtype(rowMask, DType.F32, op, "rowMask");
    }
    if (dProbs != null) {
      require(
          dProbs.numel() == r * e,
          op + ": dProbs " + dProbs.describe() + " does not match probs " + p.describe());
      requireDtype(dProbs, DType.F32, op, "dProbs");
    }
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
    long r = l.rows(), e = l.cols();
    requireDtype(l, DType.F32, op, "logits");
    requireDtype(lo, DType.F32, op, "lossOut");
    require(lo.numel() == 1, op + ": lossOut " + lo.describe() + " must hold one value");
    if (rowMask != null) {
      require(
          rowMask.numel() == r,
          op + ": rowMask " + rowMask.describe() + " should have " + r + " rows");
      requireDtype(rowMask, DType.F32, op, "rowMask");
    }
    if (dLogits != null) {
      require(
          dLogits.numel() == l.numel(),
          op + ": dLogits " + dLogits.describe() + " does not match logits " + l.describe());
      requireDtype(dLogits, DType.F32, op, "dLogits");
    }
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
    require(o.numel() == 1, op + ": out " + o.describe() + " must hold one value");
    requireDtype(o, DType.F32, op, "out");
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
