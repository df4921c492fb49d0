package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.CudaContext.dt;

import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.Tensor;

/**
 * ropeForward and ropeBackward on the GPU (rope.cu): the rotation in place, its inverse for the
 * backward. The CPU twin is {@code CpuRope}; shapes are checked by {@link OpShapes#rope}.
 */
final class CudaRope {
  private final CudaContext ctx;

  CudaRope(CudaContext ctx) {
    this.ctx = ctx;
  }

  /** x (N, heads, hd) rotated in place by positions (N); sign -1 rotates back (the backward). */
  void apply(Tensor x, Tensor positions, float theta, float sign, String op) {
    CudaTensor xt = ctx.ct(x, op, "x"), p = ctx.ct(positions, op, "positions");
    int[] nhd = OpShapes.rope(op, xt, p);
    long n = nhd[0], heads = nhd[1], hd = nhd[2];
    boolean vector = (hd / 2) % 8 == 0 && hd / 2 <= 512 && xt.address() % 16 == 0;
    // rope_v1_kernel: the previous kernel (same parameters), for KernelBandwidthBench's before row
    boolean v1 = vector && CudaBackend.before("rope");
    ctx.kernel(v1 ? "rope_v1_kernel" : "rope_kernel")
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
