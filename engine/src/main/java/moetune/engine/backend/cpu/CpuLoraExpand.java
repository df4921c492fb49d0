package moetune.engine.backend.cpu;

import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.Tensor;

/**
 * Backend#loraExpandAdd on the CPU, the oracle of lora_expand.cu: y_row += scale * sum_j x[p, j] *
 * W[e](j, col), the sum in float32 in order j = 0..r-1, then added once.
 */
final class CpuLoraExpand {
  private CpuLoraExpand() {}

  static void add(
      Parallel par,
      Tensor xt,
      Tensor wt,
      boolean transW,
      float scale,
      Tensor sortedExpt,
      Tensor sortedScatt,
      boolean groupedOut,
      Tensor yt) {
    String op = "loraExpandAdd";
    CpuTensor x = Args.f32(op, "x", xt);
    CpuTensor w = Args.f32(op, "W", wt);
    CpuTensor y = Args.f32(op, "y", yt);
    CpuTensor se = Args.i32(op, "sortedExpertIdxs", sortedExpt);
    CpuTensor ss = Args.i32(op, "sortedScatteredIdxs", sortedScatt);
    int[] dims = OpShapes.loraExpandAdd(xt, wt, transW, sortedExpt, sortedScatt, yt);
    int m = dims[0], r = dims[1], out = dims[2];
    int e = Math.toIntExact(w.dim(0));
    CpuMatmul.checkNoOverlap(op, y, x, "x");
    int[] ev = se.ints();
    int[] sv = ss.ints();
    int eo = se.offset(), so = ss.offset();
    boolean[] seen = new boolean[m];
    for (int p = 0; p < m; p++) {
      int ex = ev[eo + p];
      int s = sv[so + p];
      Args.check(
          ex >= 0 && ex < e,
          op + ": sortedExpertIdxs[" + p + "] = " + ex + " is not an expert of W " + w.describe());
      Args.check(
          s >= 0 && s < m && !seen[s],
          op + ": sortedScatteredIdxs is not a permutation of [0, " + m + ") at " + p);
      seen[s] = true;
    }
    float[] xv = x.floats(), wv = w.floats(), yv = y.floats();
    int xo = x.offset(), wo = w.offset(), yo = y.offset();
    par.forEach(
        m,
        p -> {
          int ex = ev[eo + p];
          int row = groupedOut ? p : sv[so + p];
          int xb = xo + p * r;
          int yb = yo + row * out;
          for (int col = 0; col < out; col++) {
            float acc = 0f;
            for (int j = 0; j < r; j++) {
              int wi =
                  transW
                      ? wo + (ex * out + col) * r + j // W (E, out, r)
                      : wo + (ex * r + j) * out + col; // W (E, r, out)
              acc += xv[xb + j] * wv[wi];
            }
            yv[yb + col] += scale * acc;
          }
        });
  }
}
