package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.CudaContext.dt;
import static moetune.engine.backend.cuda.CudaContext.require;
import static moetune.engine.backend.cuda.CudaContext.requireDtype;

import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * ropeForward and ropeBackward on the GPU (rope.cu): the rotation in place, its inverse for the
 * backward. The CPU twin is {@code CpuRope}.
 */
final class CudaRope {
  private final CudaContext ctx;

  CudaRope(CudaContext ctx) {
    this.ctx = ctx;
  }

  /** x (N, heads, hd) rotated in place by positions (N); sign -1 rotates back (the backward). */
  void apply(Tensor x, Tensor positions, float theta, float sign, String op) {
    CudaTensor xt = ctx.ct(x, op, "x"), p = ctx.ct(positions, op, "positions");
    requireDtype(p, DType.I32, op, "positions");
    long n = p.numel();
    require(
        xt.rank() >= 2 && n > 0 && xt.numel() % n == 0,
        op + ": x " + xt.describe() + " and positions " + p.describe());
    long hd = xt.dim(-1), heads = xt.numel() / n / hd;
    require(
        hd % 2 == 0 && heads * hd * n == xt.numel(),
        op + ": x " + xt.describe() + " is not (N=" + n + ", heads, even hd)");
    ctx.kernel("rope_kernel")
        .shapes(xt.describe())
        .grid(ctx.gridFor(n * heads * hd / 2))
        .block(256)
        .ptr("x", xt.address())
        .i32("dt", dt(xt, op, "x"))
        .ptr("positions", p.address())
        .f32("theta", theta)
        .i32("heads", (int) heads)
        .i32("hd", (int) hd)
        .i64("N", n)
        .f32("sign", sign)
        .launch();
  }
}
