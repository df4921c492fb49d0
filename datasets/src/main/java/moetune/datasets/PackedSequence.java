package moetune.datasets;

/**
 * One fixed-length training row (length T), the unit the trainer turns into an engine batch.
 *
 * <p>{@code labels} are NOT shifted (Hugging Face semantics): {@code labels[t]} is the target for
 * the token at t, and the model computes the loss of position t-1 predicting it. -100 = no loss.
 * The first token of every document has label -100, so a packed row never trains one document's
 * last token to predict the next document's first.
 *
 * @param inputIds token ids, padding = the tokenizer's pad id // (T)
 * @param labels target ids or -100 // (T)
 * @param positions position ids, restarting at 0 for each document; 0 on padding // (T)
 * @param docIds document index within this row (0, 1, ...); -1 on padding, whose keys attention
 *     never attends // (T)
 */
public record PackedSequence(int[] inputIds, int[] labels, int[] positions, int[] docIds) {
  public PackedSequence {
    int t = inputIds.length;
    if (labels.length != t || positions.length != t || docIds.length != t) {
      throw new IllegalArgumentException(
          "PackedSequence arrays differ in length: ids "
              + t
              + ", labels "
              + labels.length
              + ", positions "
              + positions.length
              + ", docIds "
              + docIds.length);
    }
  }

  /** T. */
  public int length() {
    return inputIds.length;
  }

  /** Tokens whose label is not -100. */
  public int trainableTokens() {
    int n = 0;
    for (int l : labels) {
      if (l != ChatEncoder.IGNORE) {
        n++;
      }
    }
    return n;
  }

  /** Tokens that are not padding. */
  public int realTokens() {
    int n = 0;
    for (int d : docIds) {
      if (d >= 0) {
        n++;
      }
    }
    return n;
  }
}
