package moetune.engine.backend.cpu;

import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.Tensor;

/**
 * HF MixtralRMSNorm in float32: variance = mean(x^2), rstd = rsqrt(variance + eps), out = w * (x *
 * rstd). The sum of squares is accumulated in double (torch sums pairwise in float32; both are
 * within an ulp of the exact value for hidden sizes we meet).
 */
final class CpuRmsNorm {
  private static final int ROWS_PER_TASK = 16;
  private static final int COLS_PER_TASK = 32;

  private final Parallel par;

  CpuRmsNorm(Parallel par) {
    this.par = par;
  }

  /** Backend#rmsnormForward: optional residual += delta, then out = w * x * rstd. */
  void forward(Tensor rt, Tensor dt, Tensor wt, float eps, Tensor outt, Tensor rstdt) {
    String op = "rmsnormForward";
    CpuTensor w = Args.f32(op, "w", wt);
    CpuTensor res = Args.f32(op, "residual", rt);
    CpuTensor delta = dt == null ? null : Args.f32(op, "delta", dt);
    CpuTensor out = Args.f32(op, "out", outt);
    CpuTensor rstd = Args.f32(op, "rstd", rstdt);
    int[] nd = OpShapes.rmsnormForward(res, delta, w, out, rstd);
    int n = nd[0], d = nd[1];
    float[] x = res.floats();
    float[] dl = delta == null ? null : delta.floats();
    float[] wv = w.floats();
    float[] o = out.floats();
    float[] rs = rstd.floats();
    int xo = res.offset();
    int dlo = delta == null ? 0 : delta.offset();
    int wo = w.offset();
    int oo = out.offset();
    int ro = rstd.offset();
    par.forChunks(
        n,
        ROWS_PER_TASK,
        (r0, r1) -> {
          for (int r = r0; r < r1; r++) {
            int xr = xo + r * d;
            if (dl != null) {
              int dr = dlo + r * d;
              for (int c = 0; c < d; c++) {
                x[xr + c] += dl[dr + c];
              }
            }
            double ss = 0;
            for (int c = 0; c < d; c++) {
              float sq = x[xr + c] * x[xr + c];
              ss += sq;
            }
            float variance = (float) (ss / d);
            float r1s = rsqrt(variance + eps);
            rs[ro + r] = r1s;
            int orow = oo + r * d;
            for (int c = 0; c < d; c++) {
              o[orow + c] = wv[wo + c] * (x[xr + c] * r1s);
            }
          }
        });
  }

  /**
   * Backward of out = w * x * rstd: dw += sum_n dOut * x * rstd; dx += rstd * w * dOut - x * rstd^3
   * / D * sum_c(dOut * w * x). dw is computed first (column tasks) so dx may alias dOut.
   */
  void backward(Tensor doutt, Tensor xt, Tensor wt, Tensor rstdt, Tensor dxt, Tensor dwt) {
    String op = "rmsnormBackward";
    CpuTensor w = Args.f32(op, "w", wt);
    CpuTensor x = Args.f32(op, "x", xt);
    CpuTensor dOut = Args.f32(op, "dOut", doutt);
    CpuTensor rstd = Args.f32(op, "rstd", rstdt);
    CpuTensor dx = Args.f32(op, "dx", dxt);
    CpuTensor dw = dwt == null ? null : Args.f32(op, "dw", dwt);
    int[] nd = OpShapes.rmsnormBackward(dOut, x, w, rstd, dx, dw);
    int n = nd[0], d = nd[1];
    float[] g = dOut.floats();
    float[] xv = x.floats();
    float[] wv = w.floats();
    float[] rs = rstd.floats();
    float[] dxv = dx.floats();
    int go = dOut.offset();
    int xo = x.offset();
    int wo = w.offset();
    int ro = rstd.offset();
    int dxo = dx.offset();
    if (dw != null) {
      float[] dwv = dw.floats();
      int dwo = dw.offset();
      par.forChunks(
          d,
          COLS_PER_TASK,
          (c0, c1) -> {
            double[] acc = new double[c1 - c0];
            for (int r = 0; r < n; r++) {
              float rr = rs[ro + r];
              for (int c = c0; c < c1; c++) {
                acc[c - c0] += g[go + r * d + c] * (xv[xo + r * d + c] * rr);
              }
            }
            for (int c = c0; c < c1; c++) {
              dwv[dwo + c] += (float) acc[c - c0];
            }
          });
    }
    par.forChunks(
        n,
        ROWS_PER_TASK,
        (r0, r1) -> {
          for (int r = r0; r < r1; r++) {
            double rr = rs[ro + r];
            double dot = 0;
            for (int c = 0; c < d; c++) {
              dot += (double) g[go + r * d + c] * wv[wo + c] * xv[xo + r * d + c];
            }
            double k = rr * rr * rr * dot / d;
            for (int c = 0; c < d; c++) {
              double gi = (double) g[go + r * d + c] * wv[wo + c];
              dxv[dxo + r * d + c] += (float) (rr * gi - k * xv[xo + r * d + c]);
            }
          }
        });
  }

  /** torch.rsqrt in float32, to within an ulp: the double result rounded once. */
  static float rsqrt(float v) {
    return (float) (1.0 / Math.sqrt(v));
  }
}
