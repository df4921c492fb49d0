package moetune.engine.backend.cpu;

import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.Tensor;

/**
 * Backend#gateRowsBackward on the CPU, the oracle of gate_rows.cu: dGates[gi] = dot(rows[s], x[s /
 * xFan]) summed in double, then rows[s] *= gates[gi] in place.
 */
final class CpuGateRows {
  private CpuGateRows() {}

  static void backward(
      Parallel par,
      Tensor rowst,
      Tensor xt,
      int xFan,
      Tensor gateIdxt,
      Tensor gatest,
      Tensor dGatest) {
    String op = "gateRowsBackward";
    CpuTensor rows = Args.f32(op, "rows", rowst);
    CpuTensor x = xt == null ? null : Args.f32(op, "x", xt);
    CpuTensor gi = gateIdxt == null ? null : Args.i32(op, "gateIdx", gateIdxt);
    CpuTensor g = Args.f32(op, "gates", gatest);
    CpuTensor dg = dGatest == null ? null : Args.f32(op, "dGates", dGatest);
    int[] dims = OpShapes.gateRowsBackward(rowst, xt, xFan, gateIdxt, gatest, dGatest);
    int m = dims[0], c = dims[1];
    if (x != null) {
      CpuMatmul.checkNoOverlap(op, rows, x, "x");
    }
    int[] idx = new int[m];
    boolean[] seen = new boolean[m];
    for (int s = 0; s < m; s++) {
      int i = gi == null ? s : gi.ints()[gi.offset() + s];
      Args.check(
          i >= 0 && i < m && !seen[i],
          op + ": gateIdx is not a permutation of [0, " + m + ") at " + s);
      seen[i] = true;
      idx[s] = i;
    }
    float[] rv = rows.floats(), gv = g.floats();
    int ro = rows.offset(), go = g.offset();
    par.forEach(
        m,
        s -> {
          int rb = ro + s * c;
          if (dg != null) {
            float[] xv = x.floats();
            int xb = x.offset() + (s / xFan) * c;
            double sum = 0;
            for (int j = 0; j < c; j++) {
              sum += (double) rv[rb + j] * xv[xb + j];
            }
            dg.floats()[dg.offset() + idx[s]] = (float) sum;
          }
          float gate = gv[go + idx[s]];
          for (int j = 0; j < c; j++) {
            rv[rb + j] *= gate;
          }
        });
  }
}
