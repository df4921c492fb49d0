package moetune.engine.backend.cpu;

import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.Tensor;

/**
 * Cross-entropy, transformers' load-balancing loss, the router z-loss and a plain sum. Row work
 * runs in parallel; every reduction over rows is summed in row order (or in fixed row chunks
 * combined in order), so the losses are bit-reproducible.
 */
final class CpuLosses {
  static final int IGNORE_INDEX = -100;
  private static final int ROWS_PER_TASK = 8;

  private final Parallel par;

  CpuLosses(Parallel par) {
    this.par = par;
  }

  /**
   * Backend#crossEntropy: losses[n] = logsumexp(logits[n]) - logits[n, t] (0 when t = -100);
   * dLogits = dScale * (softmax - onehot), zero rows for ignored targets. dLogits may alias the
   * logits: each row is read completely before it is overwritten.
   */
  void crossEntropy(
      Tensor logitst, Tensor targetst, Tensor lossest, Tensor dLogitst, float dScale) {
    String op = "crossEntropy";
    CpuTensor logits = Args.f32(op, "logits", logitst);
    CpuTensor targets = Args.i32(op, "targets", targetst);
    CpuTensor losses = Args.f32(op, "losses", lossest);
    CpuTensor dLogits = dLogitst == null ? null : Args.f32(op, "dLogits", dLogitst);
    int[] nv = OpShapes.crossEntropy(logits, targets, losses, dLogits);
    int n = nv[0], v = nv[1];
    int[] tv = targets.ints();
    for (int r = 0; r < n; r++) {
      int t = tv[targets.offset() + r];
      if (!(t == IGNORE_INDEX || (t >= 0 && t < v))) {
        throw new IllegalArgumentException(
            op
                + ": targets["
                + r
                + "] = "
                + t
                + " is neither -100 nor a token id in [0, "
                + v
                + ")");
      }
    }
    float[] lv = logits.floats();
    float[] outv = losses.floats();
    float[] dv = dLogits == null ? null : dLogits.floats();
    par.forChunks(
        n,
        ROWS_PER_TASK,
        (r0, r1) -> {
          for (int r = r0; r < r1; r++) {
            int t = tv[targets.offset() + r];
            int lo = logits.offset() + r * v;
            int dOff = dLogits == null ? 0 : dLogits.offset() + r * v;
            if (t == IGNORE_INDEX) {
              outv[losses.offset() + r] = 0f;
              if (dv != null) {
                java.util.Arrays.fill(dv, dOff, dOff + v, 0f);
              }
              continue;
            }
            double lse = logSumExp(lv, lo, v);
            outv[losses.offset() + r] = (float) (lse - lv[lo + t]);
            if (dv != null) {
              for (int c = 0; c < v; c++) {
                double p = Math.exp(lv[lo + c] - lse);
                dv[dOff + c] = (float) (dScale * (c == t ? p - 1 : p));
              }
            }
          }
        });
  }

  /**
   * Backend#loadBalancingLoss, as transformers' load_balancing_loss_func: loss = E * sum_e (c_e /
   * S) * P_e. Serial in row order: R * E is small. A mask that selects no row (S = 0) gives a loss
   * of 0 and zero gradient (transformers would divide by zero).
   */
  void expertLoadStats(Tensor probst, Tensor topIt, Tensor rowMaskt, Tensor acct) {
    String op = "expertLoadStats";
    CpuTensor probs = Args.f32(op, "probs", probst);
    CpuTensor topI = Args.i32(op, "topIdx", topIt);
    CpuTensor mask = rowMaskt == null ? null : Args.f32(op, "rowMask", rowMaskt);
    CpuTensor acc = Args.f32(op, "acc", acct);
    int[] rekl = OpShapes.expertLoadStats(probs, topI, mask, acc);
    int r = rekl[0], e = rekl[1], k = rekl[2], layers = rekl[3];
    int n = r / layers;
    float[] pv = probs.floats();
    float[] av = acc.floats();
    for (int l = 0; l < layers; l++) {
      double[] sums = new double[e + 2];
      for (int row = l * n; row < (l + 1) * n; row++) {
        double m = mask == null ? 1 : mask.floats()[mask.offset() + row];
        for (int j = 0; j < k; j++) {
          sums[expert(op, topI, row, j, k, e)] += m;
        }
        double h = 0;
        for (int x = 0; x < e; x++) {
          double p = pv[probs.offset() + row * e + x];
          if (p > 0) {
            h -= p * Math.log(p);
          }
        }
        sums[e] += m * h;
        sums[e + 1] += m;
      }
      for (int x = 0; x < e + 2; x++) {
        av[acc.offset() + l * (e + 2) + x] += (float) sums[x];
      }
    }
  }

  /** topIdx[row, j] of a (R, k) routing, checked to name one of the e experts. */
  private static int expert(String op, CpuTensor topI, int row, int j, int k, int e) {
    int x = topI.ints()[topI.offset() + row * k + j];
    if (!(x >= 0 && x < e)) {
      throw new IllegalArgumentException(
          op + ": topIdx[" + row + ", " + j + "] = " + x + " is not an expert in [0, " + e + ")");
    }
    return x;
  }

  void loadBalancingLoss(
      Tensor probst, Tensor topIt, Tensor rowMaskt, Tensor lossOutt, Tensor dProbst, float dScale) {
    String op = "loadBalancingLoss";
    CpuTensor probs = Args.f32(op, "probs", probst);
    CpuTensor topI = Args.i32(op, "topIdx", topIt);
    CpuTensor mask = rowMaskt == null ? null : Args.f32(op, "rowMask", rowMaskt);
    CpuTensor lossOut = Args.f32(op, "lossOut", lossOutt);
    CpuTensor dProbs = dProbst == null ? null : Args.f32(op, "dProbs", dProbst);
    int[] rek = OpShapes.loadBalancingLoss(probs, topI, mask, lossOut, dProbs);
    int r = rek[0], e = rek[1], k = rek[2];
    float[] pv = probs.floats();
    double[] count = new double[e];
    double[] probSum = new double[e];
    double s = 0;
    for (int row = 0; row < r; row++) {
      double m = mask == null ? 1 : mask.floats()[mask.offset() + row];
      s += m;
      for (int j = 0; j < k; j++) {
        count[expert(op, topI, row, j, k, e)] += m;
      }
      for (int x = 0; x < e; x++) {
        probSum[x] += m * pv[probs.offset() + row * e + x];
      }
    }
    double loss = 0;
    if (s != 0) {
      for (int x = 0; x < e; x++) {
        loss += (count[x] / s) * (probSum[x] / s);
      }
    }
    lossOut.floats()[lossOut.offset()] = (float) (e * loss);
    if (dProbs != null) {
      float[] dv = dProbs.floats();
      double ss = s;
      par.forChunks(
          r,
          256,
          (r0, r1) -> {
            for (int row = r0; row < r1; row++) {
              double m = mask == null ? 1 : mask.floats()[mask.offset() + row];
              for (int x = 0; x < e; x++) {
                double g = ss == 0 ? 0 : dScale * e * count[x] * m / (ss * ss);
                dv[dProbs.offset() + row * e + x] = (float) g;
              }
            }
          });
    }
  }

  /**
   * Backend#routerZLoss: loss = sum_r m_r z_r^2 / sum_r m_r with z_r = logsumexp(logits[r]);
   * dLogits[r] += dScale * 2 m_r z_r softmax(logits[r]) / sum_r m_r. An all-zero mask gives 0.
   */
  void routerZLoss(
      Tensor logitst, Tensor rowMaskt, Tensor lossOutt, Tensor dLogitst, float dScale) {
    String op = "routerZLoss";
    CpuTensor logits = Args.f32(op, "logits", logitst);
    CpuTensor mask = rowMaskt == null ? null : Args.f32(op, "rowMask", rowMaskt);
    CpuTensor lossOut = Args.f32(op, "lossOut", lossOutt);
    CpuTensor dLogits = dLogitst == null ? null : Args.f32(op, "dLogits", dLogitst);
    int[] re = OpShapes.routerZLoss(logits, mask, lossOut, dLogits);
    int r = re[0], e = re[1];
    float[] lv = logits.floats();
    double[] z = new double[r];
    par.forChunks(
        r,
        256,
        (r0, r1) -> {
          for (int row = r0; row < r1; row++) {
            z[row] = logSumExp(lv, logits.offset() + row * e, e);
          }
        });
    double s = 0;
    double loss = 0;
    for (int row = 0; row < r; row++) {
      double m = mask == null ? 1 : mask.floats()[mask.offset() + row];
      s += m;
      loss += m * z[row] * z[row];
    }
    lossOut.floats()[lossOut.offset()] = s == 0 ? 0f : (float) (loss / s);
    if (dLogits != null && s != 0) {
      float[] dv = dLogits.floats();
      double ss = s;
      par.forChunks(
          r,
          256,
          (r0, r1) -> {
            for (int row = r0; row < r1; row++) {
              double m = mask == null ? 1 : mask.floats()[mask.offset() + row];
              double c = dScale * 2 * m * z[row] / ss;
              int lo = logits.offset() + row * e;
              int dOff = dLogits.offset() + row * e;
              for (int x = 0; x < e; x++) {
                dv[dOff + x] += (float) (c * Math.exp(lv[lo + x] - z[row]));
              }
            }
          });
    }
  }

  /** Backend#sum: out[0] = scale * sum(x), summed in double over fixed chunks. */
  void sum(Tensor xt, float scale, Tensor outt) {
    CpuTensor x = Args.f32("sum", "x", xt);
    CpuTensor out = Args.f32("sum", "out", outt);
    OpShapes.sum(x, out);
    float[] xv = x.floats();
    double total =
        chunkedSum(
            x.size(),
            (s, e) -> {
              double acc = 0;
              for (int i = s; i < e; i++) {
                acc += xv[x.offset() + i];
              }
              return acc;
            });
    out.floats()[out.offset()] = (float) (scale * total);
  }

  /** The sum of part(start, end) over fixed chunks of [0, n), partials added in chunk order. */
  double chunkedSum(int n, Partial part) {
    int chunk = CpuElementwise.CHUNK;
    int chunks = (n + chunk - 1) / chunk;
    double[] partials = new double[chunks];
    par.forEach(chunks, c -> partials[c] = part.sum(c * chunk, Math.min(n, (c + 1) * chunk)));
    double total = 0;
    for (double p : partials) {
      total += p;
    }
    return total;
  }

  /** A partial sum over indices [start, end). */
  @FunctionalInterface
  interface Partial {
    double sum(int start, int end);
  }

  /** log(sum(exp(x))) of a row, with the max subtracted first; in double. */
  static double logSumExp(float[] x, int off, int n) {
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < n; i++) {
      max = Math.max(max, x[off + i]);
    }
    if (max == Float.NEGATIVE_INFINITY) {
      return max;
    }
    double sum = 0;
    for (int i = 0; i < n; i++) {
      sum += Math.exp(x[off + i] - (double) max);
    }
    return max + Math.log(sum);
  }
}
