package moetune.engine.train;

import java.util.List;
import moetune.sequences.PackedSequence;

/**
 * A micro-batch: B packed sequences of T positions laid out row after row, as the model takes them.
 * Labels as in {@link PackedSequence}: HF's, unshifted (the model shifts them once, in its loss).
 *
 * @param batch B
 * @param seqLen T
 * @param inputIds (B*T)
 * @param labels (B*T) unshifted labels (labels[b*T + t] is predicted at t-1), -100 = no loss
 * @param positions (B*T)
 * @param docIds (B*T) per-row document ids, -1 for padding
 * @param labelledTokens tokens that carry a loss (the sum of the rows' {@link
 *     PackedSequence#labelledTokens})
 */
public record TokenBatch(
    int batch,
    int seqLen,
    int[] inputIds,
    int[] labels,
    int[] positions,
    int[] docIds,
    long labelledTokens) {

  /** Stacks sequences of equal length into one batch. */
  public static TokenBatch of(List<PackedSequence> rows) {
    int b = rows.size();
    int t = rows.getFirst().length();
    int[] ids = new int[b * t];
    int[] labels = new int[b * t];
    int[] positions = new int[b * t];
    int[] docs = new int[b * t];
    long labelled = 0;
    for (int r = 0; r < b; r++) {
      PackedSequence s = rows.get(r);
      if (s.length() != t) {
        throw new IllegalArgumentException(
            "TokenBatch: row 0 has " + t + " positions but row " + r + " has " + s.length());
      }
      System.arraycopy(s.inputIds(), 0, ids, r * t, t);
      System.arraycopy(s.labels(), 0, labels, r * t, t);
      System.arraycopy(s.positions(), 0, positions, r * t, t);
      System.arraycopy(s.docIds(), 0, docs, r * t, t);
      labelled += s.labelledTokens();
    }
    return new TokenBatch(b, t, ids, labels, positions, docs, labelled);
  }
}
