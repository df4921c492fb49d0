package moetune.engine.backend.cpu;

import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.Tensor;

/**
 * Mixtral routing (softmax over all experts in float32, top-k, renormalise), its backward, and
 * ScatterMoE's flatten-sort-count. The GPU twin is {@code CudaRouter} (router.cu); shapes are
 * checked by {@link OpShapes}.
 */
final class CpuRouter {
  private static final int ROWS_PER_TASK = 64;

  private final Parallel par;

  CpuRouter(Parallel par) {
    this.par = par;
  }

  /** Backend#routerTopK. */
  void topK(Tensor logitst, int k, Tensor probst, Tensor topWt, Tensor topIt) {
    String op = "routerTopK";
    CpuTensor logits = Args.f32(op, "logits", logitst);
    CpuTensor probs = Args.f32(op, "probs", probst);
    CpuTensor topW = Args.f32(op, "topWeights", topWt);
    CpuTensor topI = Args.i32(op, "topIdx", topIt);
    int[] ne = OpShapes.routerTopK(logits, k, probs, topW, topI);
    int n = ne[0], e = ne[1];
    float[] lv = logits.floats();
    float[] pv = probs.floats();
    float[] wv = topW.floats();
    int[] iv = topI.ints();
    par.forChunks(
        n,
        ROWS_PER_TASK,
        (r0, r1) -> {
          boolean[] taken = new boolean[e];
          for (int r = r0; r < r1; r++) {
            int po = probs.offset() + r * e;
            softmax(lv, logits.offset() + r * e, pv, po, e);
            java.util.Arrays.fill(taken, false);
            int wo = topW.offset() + r * k;
            int io = topI.offset() + r * k;
            for (int j = 0; j < k; j++) {
              // Strictly greater while scanning upward: ties go to the lower expert index.
              int best = -1;
              for (int x = 0; x < e; x++) {
                if (!taken[x] && (best < 0 || pv[po + x] > pv[po + best])) {
                  best = x;
                }
              }
              taken[best] = true;
              iv[io + j] = best;
              wv[wo + j] = pv[po + best];
            }
            float sum = 0f;
            for (int j = 0; j < k; j++) {
              sum += wv[wo + j];
            }
            for (int j = 0; j < k; j++) {
              wv[wo + j] /= sum;
            }
          }
        });
  }

  /**
   * Backend#routerBackward. With t the selected probabilities, S = sum t and w = t / S: d t_j =
   * (dw_j - sum_l dw_l w_l) / S; then dp = dProbs + scatter(dt), and the softmax backward dLogits =
   * p * (dp - sum_e p_e dp_e).
   */
  void backward(Tensor dTopWt, Tensor dProbst, Tensor probst, Tensor topIt, Tensor dLogitst) {
    String op = "routerBackward";
    CpuTensor probs = Args.f32(op, "probs", probst);
    CpuTensor topI = Args.i32(op, "topIdx", topIt);
    CpuTensor dTopW = dTopWt == null ? null : Args.f32(op, "dTopWeights", dTopWt);
    CpuTensor dProbs = dProbst == null ? null : Args.f32(op, "dProbs", dProbst);
    CpuTensor dLogits = Args.f32(op, "dLogits", dLogitst);
    int[] nek = OpShapes.routerBackward(dTopW, dProbs, probs, topI, dLogits);
    int n = nek[0], e = nek[1], k = nek[2];
    float[] pv = probs.floats();
    int[] iv = topI.ints();
    float[] dwv = dTopW == null ? null : dTopW.floats();
    float[] dpv = dProbs == null ? null : dProbs.floats();
    float[] dlv = dLogits.floats();
    par.forChunks(
        n,
        ROWS_PER_TASK,
        (r0, r1) -> {
          double[] dp = new double[e];
          for (int r = r0; r < r1; r++) {
            int po = probs.offset() + r * e;
            int io = topI.offset() + r * k;
            for (int x = 0; x < e; x++) {
              dp[x] = dpv == null ? 0 : dpv[dProbs.offset() + r * e + x];
            }
            if (dwv != null) {
              int wo = dTopW.offset() + r * k;
              double s = 0;
              for (int j = 0; j < k; j++) {
                s += pv[po + checkedExpert(op, iv[io + j], e, r, j)];
              }
              double dotW = 0;
              for (int j = 0; j < k; j++) {
                dotW += dwv[wo + j] * (pv[po + iv[io + j]] / s);
              }
              for (int j = 0; j < k; j++) {
                dp[iv[io + j]] += (dwv[wo + j] - dotW) / s;
              }
            }
            double dot = 0;
            for (int x = 0; x < e; x++) {
              dot += pv[po + x] * dp[x];
            }
            int lo = dLogits.offset() + r * e;
            for (int x = 0; x < e; x++) {
              dlv[lo + x] = (float) (pv[po + x] * (dp[x] - dot));
            }
          }
        });
  }

  /**
   * Backend#flattenSortCount: a stable counting sort of the flat (token, slot) indices by expert.
   * Sequential: M is small and the order must be exactly the stable one.
   */
  void flattenSortCount(
      Tensor topIt, int numExperts, Tensor sortedExpt, Tensor sortedScatt, Tensor offsetst) {
    String op = "flattenSortCount";
    CpuTensor topI = Args.i32(op, "topIdx", topIt);
    CpuTensor sortedExp = Args.i32(op, "sortedExpertIdxs", sortedExpt);
    CpuTensor sortedScat = Args.i32(op, "sortedScatteredIdxs", sortedScatt);
    CpuTensor offsets = Args.i32(op, "expertOffsets", offsetst);
    int m =
        Math.toIntExact(
            OpShapes.flattenSortCount(topI, numExperts, sortedExp, sortedScat, offsets));
    int k = Math.toIntExact(topI.cols());
    int[] iv = topI.ints();
    int[] counts = new int[numExperts];
    for (int s = 0; s < m; s++) {
      counts[checkedExpert(op, iv[topI.offset() + s], numExperts, s / k, s % k)]++;
    }
    int[] next = new int[numExperts]; // write cursor of each expert's run
    int[] ov = offsets.ints();
    int end = 0;
    for (int x = 0; x < numExperts; x++) {
      next[x] = end;
      end += counts[x];
      ov[offsets.offset() + x] = end;
    }
    int[] ev = sortedExp.ints();
    int[] sv = sortedScat.ints();
    for (int s = 0; s < m; s++) {
      int x = iv[topI.offset() + s];
      int p = next[x]++;
      ev[sortedExp.offset() + p] = x;
      sv[sortedScat.offset() + p] = s;
    }
  }

  /** Float32 softmax of src[so, so+n) into dst[do, do+n): exp(x - max) / sum, sum in double. */
  static void softmax(float[] src, int so, float[] dst, int dOff, int n) {
    float max = Float.NEGATIVE_INFINITY;
    for (int x = 0; x < n; x++) {
      max = Math.max(max, src[so + x]);
    }
    double sum = 0;
    for (int x = 0; x < n; x++) {
      float ex = (float) Math.exp(src[so + x] - max);
      dst[dOff + x] = ex;
      sum += ex;
    }
    float fs = (float) sum;
    for (int x = 0; x < n; x++) {
      dst[dOff + x] /= fs;
    }
  }

  private static int checkedExpert(String op, int expert, int numExperts, int row, int slot) {
    if (expert < 0 || expert >= numExperts) {
      throw new IllegalArgumentException(
          op
              + ": topIdx["
              + row
              + ", "
              + slot
              + "] = "
              + expert
              + " is not an expert in [0, "
              + numExperts
              + ")");
    }
    return expert;
  }
}
