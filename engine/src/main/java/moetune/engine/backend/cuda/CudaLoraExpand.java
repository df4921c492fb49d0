package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.CudaContext.dt;
import static moetune.engine.backend.cuda.CudaContext.require;

import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * Backend#loraExpandAdd on the GPU (lora_expand.cu): the adapter's B (or A in the backward) product
 * added straight into the routed rows. The CPU twin is {@code CpuLoraExpand}.
 */
final class CudaLoraExpand {
  private static final int COLS = 256; // lora_expand.cu LX_COLS
  private static final int ROWS = 64; // LX_ROWS

  private CudaLoraExpand() {}

  static void add(
      CudaContext ctx,
      Tensor x,
      Tensor w,
      boolean transW,
      float scale,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      boolean groupedOut,
      Tensor y) {
    String op = "loraExpandAdd";
    CudaTensor xt = ctx.ct(x, op, "x"), wt = ctx.ct(w, op, "W"), yt = ctx.ct(y, op, "y");
    CudaTensor se = ctx.ct(sortedExpertIdxs, op, "sortedExpertIdxs"),
        ss = ctx.ct(sortedScatteredIdxs, op, "sortedScatteredIdxs");
    require(
        se.dtype() == DType.I32 && ss.dtype() == DType.I32,
        op + ": routing indices must be I32, got " + se.describe() + " and " + ss.describe());
    int[] dims = OpShapes.loraExpandAdd(xt, wt, transW, se, ss, yt);
    int m = dims[0], r = dims[1], out = dims[2];
    if (m == 0 || out == 0) {
      return;
    }
    require(
        (m + ROWS - 1) / ROWS <= 65535,
        op + ": " + m + " routed rows exceed the launch's " + 65535L * ROWS + " row limit");
    ctx.kernel("lora_expand_add_kernel")
        .shapes("x " + xt.describe() + " W " + wt.describe() + (transW ? "^T" : ""))
        .grid((out + COLS - 1) / COLS, (m + ROWS - 1) / ROWS)
        .block(256)
        .ptr("x", xt.address())
        .i32("xdt", dt(xt, op, "x"))
        .ptr("w", wt.address())
        .i32("wdt", dt(wt, op, "W"))
        .ptr("y", yt.address())
        .i32("ydt", dt(yt, op, "y"))
        .ptr("sortedExpert", se.address())
        .ptr("sortedScattered", ss.address())
        .i32("M", m)
        .i32("r", r)
        .i32("outDim", out)
        .i32("transW", transW ? 1 : 0)
        .i32("groupedOut", groupedOut ? 1 : 0)
        .f32("scale", scale)
        .launch();
  }
}
