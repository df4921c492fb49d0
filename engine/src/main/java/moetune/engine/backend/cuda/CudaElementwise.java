package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.CudaContext.dt;
import static moetune.engine.backend.cuda.CudaContext.require;

import jcuda.driver.JCudaDriver;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Floats;
import moetune.engine.tensor.Tensor;

/**
 * copy, fill, add, axpy and scale on the GPU (elementwise.cu; same-dtype copies and fills are the
 * driver's memcpy and memset). The CPU twin is {@code CpuElementwise}.
 */
final class CudaElementwise {
  private final CudaContext ctx;

  CudaElementwise(CudaContext ctx) {
    this.ctx = ctx;
  }

  void copy(Tensor src, Tensor dst) {
    CudaTensor s = ctx.ct(src, "copy", "src"), d = ctx.ct(dst, "copy", "dst");
    require(
        s.numel() == d.numel(),
        "copy: src " + s.describe() + " and dst " + d.describe() + " differ in size");
    if (s.numel() == 0) {
      return;
    }
    if (s.dtype() == d.dtype()) {
      ctx.bind();
      Driver.check(
          JCudaDriver.cuMemcpyDtoDAsync(d.pointer(), s.pointer(), s.byteSize(), ctx.stream()),
          "cuMemcpyDtoDAsync",
          "copy " + s.describe() + " -> " + d.describe());
      return;
    }
    require(
        s.dtype().isFloating() && d.dtype().isFloating(),
        "copy: cannot convert " + s.describe() + " to " + d.describe());
    ctx.kernel("convert_kernel")
        .shapes(s.describe() + " -> " + d.describe())
        .grid(ctx.gridFor(s.numel()))
        .block(256)
        .ptr("src", s.address())
        .i32("sdt", dt(s, "copy", "src"))
        .ptr("dst", d.address())
        .i32("ddt", dt(d, "copy", "dst"))
        .i64("n", s.numel())
        .launch();
  }

  void fill(Tensor t, float value) {
    CudaTensor c = ctx.ct(t, "fill", "t");
    if (c.numel() == 0) {
      return;
    }
    ctx.bind();
    String where = "fill " + c.describe() + " with " + value;
    var stream = ctx.stream();
    int rc =
        switch (c.dtype()) {
          case F32 ->
              JCudaDriver.cuMemsetD32Async(
                  c.pointer(), Float.floatToRawIntBits(value), c.numel(), stream);
          case I32 -> JCudaDriver.cuMemsetD32Async(c.pointer(), (int) value, c.numel(), stream);
          case BF16 ->
              JCudaDriver.cuMemsetD16Async(
                  c.pointer(), Floats.floatToBf16(value), c.numel(), stream);
          case F16 ->
              JCudaDriver.cuMemsetD16Async(
                  c.pointer(), Floats.floatToF16(value), c.numel(), stream);
          case I64 ->
              throw new IllegalArgumentException("fill: I64 tensors are not supported on the GPU");
        };
    Driver.check(
        rc,
        c.dtype() == DType.F32 || c.dtype() == DType.I32 ? "cuMemsetD32Async" : "cuMemsetD16Async",
        where);
  }

  void add(Tensor a, Tensor b, Tensor out) {
    CudaTensor x = ctx.ct(a, "add", "a"), y = ctx.ct(b, "add", "b"), o = ctx.ct(out, "add", "out");
    require(
        x.numel() == y.numel() && x.numel() == o.numel(),
        "add: a "
            + x.describe()
            + ", b "
            + y.describe()
            + " and out "
            + o.describe()
            + " differ in size");
    ctx.kernel("add_kernel")
        .shapes(x.describe() + " + " + y.describe())
        .grid(ctx.gridFor(o.numel()))
        .block(256)
        .ptr("a", x.address())
        .i32("adt", dt(x, "add", "a"))
        .ptr("b", y.address())
        .i32("bdt", dt(y, "add", "b"))
        .ptr("out", o.address())
        .i32("odt", dt(o, "add", "out"))
        .i64("n", o.numel())
        .launch();
  }

  void axpy(float alpha, Tensor src, Tensor dst) {
    CudaTensor s = ctx.ct(src, "axpy", "src"), d = ctx.ct(dst, "axpy", "dst");
    require(
        s.numel() == d.numel(),
        "axpy: src " + s.describe() + " and dst " + d.describe() + " differ in size");
    ctx.kernel("axpy_kernel")
        .shapes(s.describe() + " -> " + d.describe())
        .grid(ctx.gridFor(d.numel()))
        .block(256)
        .f32("alpha", alpha)
        .ptr("src", s.address())
        .i32("sdt", dt(s, "axpy", "src"))
        .ptr("dst", d.address())
        .i32("ddt", dt(d, "axpy", "dst"))
        .i64("n", d.numel())
        .launch();
  }

  void scale(Tensor x, float s) {
    CudaTensor c = ctx.ct(x, "scale", "x");
    ctx.kernel("scale_kernel")
        .shapes(c.describe())
        .grid(ctx.gridFor(c.numel()))
        .block(256)
        .ptr("x", c.address())
        .i32("dt", dt(c, "scale", "x"))
        .f32("s", s)
        .i64("n", c.numel())
        .launch();
  }
}
