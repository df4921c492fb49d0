package moetune.engine.moe;

import moetune.engine.backend.Backend;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * The expert order of one batch's routed rows, computed once (ScatterMoE's flatten_sort_count) and
 * shared by both ParallelLinears of an expert MLP and by their backward.
 *
 * <p>Shape letters: N tokens, K experts per token (the fan-out), M = N*K routed rows, E experts.
 * Row p in expert order is the pair (token s/K, slot s%K) with s = sortedScatteredIdxs[p]; it
 * belongs to expert sortedExpertIdxs[p]; expert e owns rows [expertOffsets[e-1], expertOffsets[e]).
 *
 * @param sortedExpertIdxs I32 (M)
 * @param sortedScatteredIdxs I32 (M)
 * @param expertOffsets I32 (E), inclusive cumulative counts
 * @param numExperts E
 * @param k K, the fan-out of the tokens that were routed
 */
public record Routing(
    Tensor sortedExpertIdxs,
    Tensor sortedScatteredIdxs,
    Tensor expertOffsets,
    int numExperts,
    int k)
    implements AutoCloseable {

  public Routing {
    if (k <= 0 || sortedExpertIdxs.numel() % k != 0) {
      throw new IllegalArgumentException(
          "Routing: " + sortedExpertIdxs.numel() + " routed rows is not a multiple of k=" + k);
    }
    if (expertOffsets.numel() != numExperts) {
      throw new IllegalArgumentException(
          "Routing: expertOffsets has "
              + expertOffsets.numel()
              + " entries for "
              + numExperts
              + " experts");
    }
  }

  /** Sorts the (token, slot) pairs of topIdx I32 (N, K) by expert, on the backend. */
  public static Routing compute(Backend backend, Tensor topIdx, int numExperts) {
    int k = (int) topIdx.cols();
    long m = topIdx.numel();
    Tensor sei = backend.empty(DType.I32, m);
    Tensor ssi = backend.empty(DType.I32, m);
    Tensor offsets = backend.empty(DType.I32, numExperts);
    backend.flattenSortCount(topIdx, numExperts, sei, ssi, offsets);
    return new Routing(sei, ssi, offsets, numExperts, k);
  }

  /** M, the number of routed rows. */
  public long rows() {
    return sortedExpertIdxs.numel();
  }

  /** N, the number of tokens routed. */
  public long tokens() {
    return rows() / k;
  }

  @Override
  public void close() {
    sortedExpertIdxs.close();
    sortedScatteredIdxs.close();
    expertOffsets.close();
  }
}
