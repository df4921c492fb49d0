package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.CudaContext.dt;
import static moetune.engine.backend.cuda.CudaContext.require;

import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * Backend#gateRowsBackward on the GPU (gate_rows.cu): the gate gradient of a gated ParallelLinear
 * from its ungated dX rows, and those rows gated in place. The CPU twin is {@code CpuGateRows}.
 */
final class CudaGateRows {
  private static final int THREADS = 256; // gate_rows.cu GR_THREADS

  private CudaGateRows() {}

  static void backward(
      CudaContext ctx,
      Tensor rows,
      Tensor x,
      int xFan,
      Tensor gateIdx,
      Tensor gates,
      Tensor dGates) {
    String op = "gateRowsBackward";
    CudaTensor rt = ctx.ct(rows, op, "rows"), gt = ctx.ct(gates, op, "gates");
    CudaTensor xt = x == null ? null : ctx.ct(x, op, "x");
    CudaTensor it = gateIdx == null ? null : ctx.ct(gateIdx, op, "gateIdx");
    CudaTensor dg = dGates == null ? null : ctx.ct(dGates, op, "dGates");
    require(
        gt.dtype() == DType.F32 && (dg == null || dg.dtype() == DType.F32),
        op + ": gates and dGates must be F32, got " + gt.describe());
    require(
        it == null || it.dtype() == DType.I32,
        op + ": gateIdx must be I32, got " + (it == null ? "" : it.describe()));
    int[] dims = OpShapes.gateRowsBackward(rt, xt, xFan, it, gt, dg);
    int m = dims[0], c = dims[1];
    if (m == 0) {
      return;
    }
    ctx.kernel("gate_rows_backward_kernel")
        .shapes("rows " + rt.describe() + (xt == null ? "" : " x " + xt.describe()))
        .grid(m)
        .block(THREADS)
        .ptr("rows", rt.address())
        .i32("rdt", dt(rt, op, "rows"))
        .ptr("x", xt == null ? 0L : xt.address())
        .i32("xdt", xt == null ? 0 : dt(xt, op, "x"))
        .i32("xFan", xFan)
        .ptr("gateIdx", it == null ? 0L : it.address())
        .ptr("gates", gt.address())
        .ptr("dGates", dg == null ? 0L : dg.address())
        .i32("M", m)
        .i32("C", c)
        .launch();
  }
}
