package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.CudaContext.blockFor;
import static moetune.engine.backend.cuda.CudaContext.dt;
import static moetune.engine.backend.cuda.CudaContext.require;

import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * rmsnormForward and rmsnormBackward on the GPU (rmsnorm.cu). The CPU twin is {@code CpuRmsNorm};
 * shapes are checked by {@link OpShapes#rmsnormForward} / {@link OpShapes#rmsnormBackward}.
 */
final class CudaRmsNorm {
  private final CudaContext ctx;

  CudaRmsNorm(CudaContext ctx) {
    this.ctx = ctx;
  }

  /** Optional residual += delta, then out = w * x * rstd; one block per row. */
  void forward(Tensor residual, Tensor delta, Tensor w, float eps, Tensor out, Tensor rstd) {
    String op = "rmsnormForward";
    CudaTensor r = ctx.ct(residual, op, "residual"),
        wt = ctx.ct(w, op, "w"),
        o = ctx.ct(out, op, "out"),
        s = ctx.ct(rstd, op, "rstd");
    CudaTensor dl = delta == null ? null : ctx.ct(delta, op, "delta");
    int[] nd = OpShapes.rmsnormForward(r, dl, wt, o, s);
    int d = nd[1];
    ctx.kernel("rmsnorm_forward_kernel")
        .shapes(r.describe())
        .grid(nd[0])
        .block(blockFor(d))
        .ptr("residual", r.address())
        .i32("rdt", dt(r, op, "residual"))
        .ptr("delta", dl == null ? 0L : dl.address())
        .i32("ddt", dt(dl, op, "delta"))
        .ptr("w", wt.address())
        .i32("wdt", dt(wt, op, "w"))
        .f32("eps", eps)
        .ptr("out", o.address())
        .i32("odt", dt(o, op, "out"))
        .ptr("rstd", s.address())
        .i32("D", d)
        .launch();
  }

  /** dx overwrite, dw (optional) accumulate: per-block dw partials, then a column reduction. */
  void backward(Tensor dOut, Tensor x, Tensor w, Tensor rstd, Tensor dx, Tensor dw) {
    String op = "rmsnormBackward";
    CudaTensor g = ctx.ct(dOut, op, "dOut"),
        xt = ctx.ct(x, op, "x"),
        wt = ctx.ct(w, op, "w"),
        s = ctx.ct(rstd, op, "rstd");
    CudaTensor dxt = ctx.ct(dx, op, "dx");
    CudaTensor dwt = dw == null ? null : ctx.ct(dw, op, "dw");
    int[] nd = OpShapes.rmsnormBackward(g, xt, wt, s, dxt, dwt);
    long n = nd[0], d = nd[1];
    if (n == 0) {
      return;
    }
    // Each block keeps a D-float dw partial in shared memory; P blocks, then a column reduction.
    // D % 256 == 0 up to 2048 with 16-byte aligned tensors (the model's widths): the warp-per-row
    // kernel with 16-byte loads (rmsnorm.cu, 8 warps of ~120 registers); else a block per row.
    boolean rows =
        d % 256 == 0
            && d <= 2048
            && g.address() % 16 == 0
            && xt.address() % 16 == 0
            && wt.address() % 16 == 0
            && dxt.address() % 16 == 0;
    long parts = Math.min(n, 256);
    int smem = (int) (d * 4);
    require(
        smem <= 200 * 1024,
        op + ": hidden size " + d + " exceeds the kernel's shared-memory dw accumulator");
    try (Tensor part = dw == null ? null : ctx.empty(DType.F32, parts, d)) {
      long partAddr = ctx.ptr(part, op, "dw partials");
      ctx.kernel(rows ? "rmsnorm_backward_rows_kernel" : "rmsnorm_backward_kernel")
          .shapes(xt.describe())
          .grid(parts)
          .block(rows ? 256 : blockFor(d))
          .smem(smem)
          .ptr("dout", g.address())
          .i32("gdt", dt(g, op, "dOut"))
          .ptr("x", xt.address())
          .i32("xdt", dt(xt, op, "x"))
          .ptr("w", wt.address())
          .i32("wdt", dt(wt, op, "w"))
          .ptr("rstd", s.address())
          .ptr("dx", dxt.address())
          .i32("dxdt", dt(dxt, op, "dx"))
          .ptr("dwPart", partAddr)
          .i32("N", (int) n)
          .i32("D", (int) d)
          .launch();
      if (dwt != null) {
        ctx.kernel("rmsnorm_dw_reduce_kernel")
            .shapes(dwt.describe())
            .grid((d + 255) / 256)
            .block(256)
            .ptr("dwPart", partAddr)
            .i32("P", (int) parts)
            .ptr("dw", dwt.address())
            .i32("dwdt", dt(dwt, op, "dw"))
            .i32("D", (int) d)
            .launch();
      }
    }
  }
}
