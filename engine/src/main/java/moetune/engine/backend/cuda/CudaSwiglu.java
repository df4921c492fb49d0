package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.CudaContext.dt;

import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.Tensor;

/**
 * swigluForward and swigluBackward on the GPU (swiglu.cu). The CPU twin is {@code CpuSwiglu};
 * shapes are checked by {@link OpShapes#swigluForward} / {@link OpShapes#swigluBackward}.
 */
final class CudaSwiglu {
  private final CudaContext ctx;

  CudaSwiglu(CudaContext ctx) {
    this.ctx = ctx;
  }

  /** a = silu(h[:, :F]) * h[:, F:]; h (M, 2F), a (M, F) overwrite. */
  void forward(Tensor h, Tensor a) {
    forward(h, a, false);
  }

  /**
   * In place: h (M, 2F) = [gate | up] becomes the SwiGLU backward's factors [p | q]; a (M, F) =
   * silu(gate) * up overwrite (swiglu_factors_kernel).
   */
  void factors(Tensor h, Tensor a) {
    forward(h, a, true);
  }

  private void forward(Tensor h, Tensor a, boolean factors) {
    String op = factors ? "swigluFactors" : "swigluForward";
    CudaTensor ht = ctx.ct(h, op, "h"), at = ctx.ct(a, op, "a");
    int[] mf = OpShapes.swigluForward(ht, at);
    long m = mf[0];
    int f = mf[1];
    ctx.kernel(factors ? "swiglu_factors_kernel" : "swiglu_forward_kernel")
        .shapes(ht.describe())
        .grid(ctx.gridFor(m * f))
        .block(256)
        .ptr("h", ht.address())
        .i32("hdt", dt(ht, op, "h"))
        .ptr("a", at.address())
        .i32("adt", dt(at, op, "a"))
        .i64("M", m)
        .i32("F", f)
        .launch();
  }

  /** dH (M, 2F) overwrite from dA (M, F) and h (M, 2F); dH may alias h. */
  void backward(Tensor dA, Tensor h, Tensor dH) {
    backward(dA, h, dH, false);
  }

  /** dH (M, 2F) = [dA p | dA q] from dA (M, F) and the factors (M, 2F); dH may alias them. */
  void backwardFactors(Tensor dA, Tensor p, Tensor dH) {
    backward(dA, p, dH, true);
  }

  private void backward(Tensor dA, Tensor h, Tensor dH, boolean factors) {
    String op = factors ? "swigluBackwardFactors" : "swigluBackward";
    String saved = factors ? "p" : "h";
    CudaTensor g = ctx.ct(dA, op, "dA"), ht = ctx.ct(h, op, saved), dh = ctx.ct(dH, op, "dH");
    int[] mf = OpShapes.swigluBackward(g, ht, dh);
    long m = mf[0];
    int f = mf[1];
    ctx.kernel(factors ? "swiglu_backward_factors_kernel" : "swiglu_backward_kernel")
        .shapes(ht.describe())
        .grid(ctx.gridFor(m * f))
        .block(256)
        .ptr("da", g.address())
        .i32("dadt", dt(g, op, "dA"))
        .ptr("h", ht.address())
        .i32("hdt", dt(ht, op, saved))
        .ptr("dh", dh.address())
        .i32("dhdt", dt(dh, op, "dH"))
        .i64("M", m)
        .i32("F", f)
        .launch();
  }
}
