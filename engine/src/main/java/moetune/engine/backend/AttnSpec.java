package moetune.engine.backend;

import moetune.engine.tensor.Tensor;

/**
 * Which keys each query may attend to.
 *
 * <p>Queries are laid out (B, Tq) and keys (B, Tk) with {@code Tq <= Tk}; query i of row b sits at
 * absolute index {@code Tk - Tq + i} (so Tq == Tk in training, and Tq < Tk when decoding with a KV
 * cache). Key j of row b is visible to query i of the same row iff
 *
 * <ul>
 *   <li>causal: {@code j <= Tk - Tq + i};
 *   <li>window: {@code window <= 0 || (Tk - Tq + i) - j < window} (HF's sliding_window: a query
 *       sees itself and the window-1 keys before it);
 *   <li>documents: {@code docIds == null || docIds[b*Tk + j] == docIds[b*Tk + Tk - Tq + i]}, and a
 *       key whose docId is negative (padding) is never visible.
 * </ul>
 *
 * A query that sees no key (for example a padding query) gets an output of zeros and a log-sum-exp
 * of -infinity, and contributes no gradient.
 *
 * @param batch B
 * @param queryLen Tq
 * @param keyLen Tk
 * @param docIds I32 (B*Tk) document id per key position, or null when every row is one document
 * @param window sliding window in tokens, or 0 for none
 * @param hostDocIds the same ids on the host (B*Tk), or null: a backend that plans on the ids'
 *     values (cuDNN's ragged layout) reads them here instead of downloading the tensor. The caller
 *     that uploaded the ids passes the array it uploaded; both must stay unchanged while the spec
 *     is in use.
 */
public record AttnSpec(
    int batch, int queryLen, int keyLen, Tensor docIds, int window, int[] hostDocIds) {

  /** A spec without a host copy of the doc ids. */
  public AttnSpec(int batch, int queryLen, int keyLen, Tensor docIds, int window) {
    this(batch, queryLen, keyLen, docIds, window, null);
  }

  public AttnSpec {
    if (batch <= 0 || queryLen <= 0 || keyLen < queryLen) {
      throw new IllegalArgumentException(
          "AttnSpec: need batch > 0 and 0 < queryLen <= keyLen, got B="
              + batch
              + " Tq="
              + queryLen
              + " Tk="
              + keyLen);
    }
    if (docIds != null && docIds.numel() != (long) batch * keyLen) {
      throw new IllegalArgumentException(
          "AttnSpec: docIds has "
              + docIds.numel()
              + " entries, expected B*Tk="
              + (long) batch * keyLen);
    }
    if (hostDocIds != null && (docIds == null || hostDocIds.length != docIds.numel())) {
      throw new IllegalArgumentException(
          "AttnSpec: hostDocIds has "
              + hostDocIds.length
              + " entries but docIds "
              + (docIds == null ? "is null" : "has " + docIds.numel()));
    }
  }

  /** Plain causal self-attention over B rows of T tokens. */
  public static AttnSpec causal(int batch, int seqLen, int window) {
    return new AttnSpec(batch, seqLen, seqLen, null, window);
  }
}
