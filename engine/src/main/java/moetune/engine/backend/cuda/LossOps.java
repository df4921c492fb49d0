package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.CudaBackend.dt;
import static moetune.engine.backend.cuda.CudaBackend.require;
import static moetune.engine.backend.cuda.CudaBackend.requireDtype;

import moetune.engine.backend.AdamWCoefficients;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * Losses, reductions, clipping and AdamW on the GPU (loss.cu, adamw.cu). None reads back to the
 * host.
 */
final class LossOps {
  /** The largest logits row cross_entropy_kernel keeps in shared memory (two blocks per SM). */
  static final long CE_ROW_CACHE_BYTES = 96 * 1024;

  private final CudaBackend b;

  LossOps(CudaBackend b) {
    this.b = b;
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
    b.launch(
        "cross_entropy_kernel",
        l.describe(),
        n,
        1,
        1,
        cacheRow ? 512 : 1024,
        cacheRow ? (int) rowBytes : 0,
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
    b.fill(o, 0f);
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

  void sumSquares(Tensor x, Tensor acc) {
    String op = "sumSquares";
    CudaTensor xt = b.ct(x, op, "x"), a = b.ct(acc, op, "acc");
    require(a.numel() == 1, op + ": acc " + a.describe() + " must hold one value");
    requireDtype(a, DType.F32, op, "acc");
    if (vec4(xt)) {
      b.launch(
          "sum_squares_f32x4_kernel",
          xt.describe(),
          Math.min(b.gridFor(xt.numel() / 4), 1024),
          1,
          1,
          256,
          0,
          xt.address(),
          a.address(),
          xt.numel() / 4);
      return;
    }
    b.launch(
        "sum_squares_kernel",
        xt.describe(),
        Math.min(b.gridFor(xt.numel()), 1024),
        1,
        1,
        256,
        0,
        xt.address(),
        dt(xt, op, "x"),
        a.address(),
        xt.numel());
  }

  void clipByNorm(Tensor grad, Tensor sumSq, float maxNorm) {
    String op = "clipByNorm";
    CudaTensor g = b.ct(grad, op, "grad"), s = b.ct(sumSq, op, "sumSq");
    require(s.numel() == 1, op + ": sumSq " + s.describe() + " must hold one value");
    requireDtype(s, DType.F32, op, "sumSq");
    if (vec4(g)) {
      b.launch(
          "clip_by_norm_f32x4_kernel",
          g.describe(),
          b.gridFor(g.numel() / 4),
          1,
          1,
          256,
          0,
          g.address(),
          s.address(),
          maxNorm,
          g.numel() / 4);
      return;
    }
    b.launch(
        "clip_by_norm_kernel",
        g.describe(),
        b.gridFor(g.numel()),
        1,
        1,
        256,
        0,
        g.address(),
        dt(g, op, "grad"),
        s.address(),
        maxNorm,
        g.numel());
  }

  void adamwStep(
      Tensor param, Tensor grad, Tensor m, Tensor v, AdamWCoefficients c, Tensor lowPrecision) {
    String op = "adamwStep";
    CudaTensor p = b.ct(param, op, "param"),
        g = b.ct(grad, op, "grad"),
        mt = b.ct(m, op, "m"),
        vt = b.ct(v, op, "v");
    long n = p.numel();
    require(
        g.numel() == n && mt.numel() == n && vt.numel() == n,
        op
            + ": param "
            + p.describe()
            + ", grad "
            + g.describe()
            + ", m "
            + mt.describe()
            + ", v "
            + vt.describe());
    requireDtype(p, DType.F32, op, "param");
    requireDtype(mt, DType.F32, op, "m");
    requireDtype(vt, DType.F32, op, "v");
    if (lowPrecision != null) {
      require(
          lowPrecision.numel() == n,
          op
              + ": lowPrecision "
              + lowPrecision.describe()
              + " does not match param "
              + p.describe());
    }
    // c: the step's constants, computed once on the host as torch does (AdamWCoefficients).
    long low = b.ptr(lowPrecision, op, "lowPrecision");
    int lowDt = dt(lowPrecision, op, "lowPrecision");
    if (vec4(p) && vec4(g) && vec4(mt) && vec4(vt) && (lowDt != 1 || low % 8 == 0)) {
      b.launch(
          "adamw_f32x4_kernel",
          p.describe(),
          b.gridFor(n / 4),
          1,
          1,
          256,
          0,
          p.address(),
          g.address(),
          mt.address(),
          vt.address(),
          c.decay(),
          c.w1(),
          c.beta2(),
          c.w2(),
          c.negStepSize(),
          c.bc2Sqrt(),
          c.eps(),
          low,
          lowDt,
          n / 4);
      return;
    }
    b.launch(
        "adamw_kernel",
        p.describe(),
        b.gridFor(n),
        1,
        1,
        256,
        0,
        p.address(),
        g.address(),
        dt(g, op, "grad"),
        mt.address(),
        vt.address(),
        c.decay(),
        c.w1(),
        c.beta2(),
        c.w2(),
        c.negStepSize(),
        c.bc2Sqrt(),
        c.eps(),
        low,
        lowDt,
        n);
  }

  /**
   * Whether a tensor can take the 16-byte vector kernels: float32, 16-byte aligned, a multiple of 4
   * elements. The flat parameter, gradient and moment buffers are; odd views fall back to the
   * scalar kernels (and {@code bench kernels} times both that way).
   */
  private static boolean vec4(CudaTensor t) {
    return t.dtype() == DType.F32 && t.numel() % 4 == 0 && t.address() % 16 == 0;
  }
}
