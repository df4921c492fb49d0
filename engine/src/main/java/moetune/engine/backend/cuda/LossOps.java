package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.CudaContext.dt;
import static moetune.engine.backend.cuda.CudaContext.require;
import static moetune.engine.backend.cuda.CudaContext.requireDtype;

import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/** Losses and sum on the GPU (loss.cu). None reads back to the host. */
final class LossOps {
  private final CudaContext b;
  private final CudaElementwise elementwise; // sum zeroes its output first

  LossOps(CudaContext b, CudaElementwise elementwise) {
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
    b.launch(
        "cross_entropy_kernel",
        l.describe(),
        n,
        1,
        1,
        1024,
        0,
        l.address(),
        dt(l, op, "logits"),
        t.address(),
        out.address(),
        b.ptr(dLogits, op, "dLogits"),
        dt(dLogits, op, "dLogits"),
        dScale,
        (int) v);
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
    b.launch(
        "expert_load_stats_kernel",
        p.describe(),
        Math.min(b.gridFor(n), 64),
        layers,
        1,
        256,
        (int) (e + 2) * 4,
        p.address(),
        i.address(),
        b.ptr(rowMask, op, "rowMask"),
        a.address(),
        n,
        (int) e,
        (int) k);
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
      b.launch(
          "lb_stats_kernel",
          p.describe(),
          Math.min(b.gridFor(r), 256),
          1,
          1,
          256,
          (int) (2 * e + 1) * 4,
          p.address(),
          i.address(),
          mask,
          w,
          r,
          (int) e,
          (int) k);
      b.launch("lb_loss_kernel", p.describe(), 1, 1, 1, 32, 0, w, (int) e, lo.address());
      if (dProbs != null) {
        b.launch(
            "lb_grad_kernel",
            p.describe(),
            b.gridFor(r * e),
            1,
            1,
            256,
            0,
            w,
            mask,
            b.ptr(dProbs, op, "dProbs"),
            dScale,
            r,
            (int) e);
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
      b.launch(
          "zloss_stats_kernel",
          l.describe(),
          blocks,
          1,
          1,
          256,
          0,
          l.address(),
          mask,
          w,
          r,
          (int) e);
      b.launch("zloss_loss_kernel", l.describe(), 1, 1, 1, 1, 0, w, lo.address());
      if (dLogits != null) {
        b.launch(
            "zloss_grad_kernel",
            l.describe(),
            blocks,
            1,
            1,
            256,
            0,
            l.address(),
            mask,
            w,
            b.ptr(dLogits, op, "dLogits"),
            dScale,
            r,
            (int) e);
      }
    }
  }

  void sum(Tensor x, float scale, Tensor out) {
    String op = "sum";
    CudaTensor xt = b.ct(x, op, "x"), o = b.ct(out, op, "out");
    require(o.numel() == 1, op + ": out " + o.describe() + " must hold one value");
    requireDtype(o, DType.F32, op, "out");
    elementwise.fill(o, 0f);
    b.launch(
        "sum_kernel",
        xt.describe(),
        Math.min(b.gridFor(xt.numel()), 1024),
        1,
        1,
        256,
        0,
        xt.address(),
        dt(xt, op, "x"),
        scale,
        o.address(),
        xt.numel());
  }
}
