package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.CudaContext.dt;

import moetune.engine.backend.AdamWCoefficients;
import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * sumSquares, clipByNorm and adamwStep on the GPU (adamw.cu): the global gradient-norm clip and the
 * AdamW step, none of which reads back to the host. The CPU twin is {@code CpuAdamW}; shapes are
 * checked by {@link OpShapes}.
 */
final class CudaAdamW {
  private final CudaContext ctx;

  CudaAdamW(CudaContext ctx) {
    this.ctx = ctx;
  }

  /** acc[0] += sum x^2 (block sums, one atomic per block). */
  void sumSquares(Tensor x, Tensor acc) {
    String op = "sumSquares";
    CudaTensor xt = ctx.ct(x, op, "x"), a = ctx.ct(acc, op, "acc");
    OpShapes.sumSquares(xt, a);
    if (vec4(xt)) {
      ctx.kernel("sum_squares_f32x4_kernel")
          .shapes(xt.describe())
          .grid(Math.min(ctx.gridFor(xt.numel() / 4), 1024))
          .block(256)
          .ptr("x", xt.address())
          .ptr("acc", a.address())
          .i64("n4", xt.numel() / 4)
          .launch();
      return;
    }
    ctx.kernel("sum_squares_kernel")
        .shapes(xt.describe())
        .grid(Math.min(ctx.gridFor(xt.numel()), 1024))
        .block(256)
        .ptr("x", xt.address())
        .i32("dt", dt(xt, op, "x"))
        .ptr("acc", a.address())
        .i64("n", xt.numel())
        .launch();
  }

  /** grad *= min(1, maxNorm / (sqrt(sumSq) + 1e-6)), the factor read on the device. */
  void clipByNorm(Tensor grad, Tensor sumSq, float maxNorm) {
    String op = "clipByNorm";
    CudaTensor g = ctx.ct(grad, op, "grad"), s = ctx.ct(sumSq, op, "sumSq");
    OpShapes.clipByNorm(g, s);
    if (vec4(g)) {
      ctx.kernel("clip_by_norm_f32x4_kernel")
          .shapes(g.describe())
          .grid(ctx.gridFor(g.numel() / 4))
          .block(256)
          .ptr("g", g.address())
          .ptr("sumSq", s.address())
          .f32("maxNorm", maxNorm)
          .i64("n4", g.numel() / 4)
          .launch();
      return;
    }
    ctx.kernel("clip_by_norm_kernel")
        .shapes(g.describe())
        .grid(ctx.gridFor(g.numel()))
        .block(256)
        .ptr("g", g.address())
        .i32("dt", dt(g, op, "grad"))
        .ptr("sumSq", s.address())
        .f32("maxNorm", maxNorm)
        .i64("n", g.numel())
        .launch();
  }

  /** One AdamW step over param, m, v (F32), grad any float dtype; lowPrecision written if given. */
  void adamwStep(
      Tensor param, Tensor grad, Tensor m, Tensor v, AdamWCoefficients c, Tensor lowPrecision) {
    String op = "adamwStep";
    CudaTensor p = ctx.ct(param, op, "param"),
        g = ctx.ct(grad, op, "grad"),
        mt = ctx.ct(m, op, "m"),
        vt = ctx.ct(v, op, "v");
    CudaTensor lp = lowPrecision == null ? null : ctx.ct(lowPrecision, op, "lowPrecision");
    long n = OpShapes.adamwStep(p, g, mt, vt, lp);
    // c: the step's constants, computed once on the host as torch does (AdamWCoefficients).
    long low = lp == null ? 0L : lp.address();
    int lowDt = dt(lp, op, "lowPrecision");
    boolean vec = vec4(p) && vec4(g) && vec4(mt) && vec4(vt) && (lowDt != 1 || low % 8 == 0);
    KernelLaunch k =
        vec
            ? ctx.kernel("adamw_f32x4_kernel")
                .grid(ctx.gridFor(n / 4))
                .ptr("p", p.address())
                .ptr("g", g.address())
            : ctx.kernel("adamw_kernel")
                .grid(ctx.gridFor(n))
                .ptr("p", p.address())
                .ptr("g", g.address())
                .i32("gdt", dt(g, op, "grad"));
    k.shapes(p.describe())
        .block(256)
        .ptr("m", mt.address())
        .ptr("v", vt.address())
        .f32("decay", c.decay())
        .f32("w1", c.w1())
        .f32("beta2", c.beta2())
        .f32("w2", c.w2())
        .f32("negStepSize", c.negStepSize())
        .f32("bc2Sqrt", c.bc2Sqrt())
        .f32("eps", c.eps())
        .ptr("low", low)
        .i32("lowdt", lowDt);
    if (vec) k.i64("n4", n / 4);
    else k.i64("n", n);
    k.launch();
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
