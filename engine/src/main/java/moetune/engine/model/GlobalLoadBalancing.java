package moetune.engine.model;

import moetune.engine.backend.Backend;
import moetune.engine.backend.Communicator;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * The load-balancing (aux) loss over the rows of every rank of an expert-parallel group, as
 * transformers computes it over the one batch it is given: {@link Backend#loadBalancingLoss}'s
 * formula (loss = E * sum_e (c_e / S) * (P_e / S), c_e routed slots of expert e, P_e the summed
 * probabilities, S the rows, all layers stacked, padding masked) with c, P and S summed over the
 * ranks, so N ranks with micro-batches b_0..b_N-1 give the aux loss of one device's micro-batch b_0
 * + ... + b_N-1. The sums are additive, so the collective is an all-reduce of 2E + 2 numbers;
 * computed on the host (the probabilities come down once per pass).
 */
final class GlobalLoadBalancing {
  private GlobalLoadBalancing() {}

  /**
   * The group's aux loss; with dProbs not null also its gradient on this rank's probabilities:
   * dProbs[r, e] = dScale * E * c_e * m_r / S^2 where dScale is the sum over ranks of {@code
   * weight} times coef (each rank's share of the step, so the group's rows together weigh as one
   * device's micro-batch of them). probs F32 (R, E), topIdx I32 (R, K), rowMask F32 (R) or null. A
   * collective.
   */
  static float compute(
      Communicator comm,
      Tensor probs,
      Tensor topIdx,
      Tensor rowMask,
      Tensor dProbs,
      float coef,
      float weight) {
    Backend be = probs.backend();
    int e = (int) probs.cols();
    int r = (int) probs.rows();
    int k = (int) topIdx.cols();
    float[] p = be.download(probs).toFloatArray();
    int[] idx = be.download(topIdx).toIntArray();
    float[] mask = rowMask == null ? null : be.download(rowMask).toFloatArray();
    double[] sums = new double[2 * e + 2]; // c (E), P (E), S, sum of weights
    for (int row = 0; row < r; row++) {
      double m = mask == null ? 1 : mask[row];
      sums[2 * e] += m;
      for (int j = 0; j < k; j++) {
        sums[idx[row * k + j]] += m;
      }
      for (int x = 0; x < e; x++) {
        sums[e + x] += m * p[row * e + x];
      }
    }
    sums[2 * e + 1] = weight;
    comm.allReduceSum(sums);
    double s = sums[2 * e];
    double loss = 0;
    if (s != 0) {
      for (int x = 0; x < e; x++) {
        loss += (sums[x] / s) * (sums[e + x] / s);
      }
    }
    if (dProbs != null) {
      double dScale = coef * sums[2 * e + 1];
      float[] d = new float[r * e];
      for (int row = 0; row < r; row++) {
        double m = mask == null ? 1 : mask[row];
        for (int x = 0; x < e; x++) {
          d[row * e + x] = s == 0 ? 0f : (float) (dScale * e * sums[x] * m / (s * s));
        }
      }
      be.copyFromHost(HostTensor.ofFloats(d, r, e), dProbs);
    }
    return (float) (e * loss);
  }
}
