package moetune.sequences;

/**
 * One fixed-length training row (length T): what the datasets produce, what the trainer batches and
 * what the model takes. The one convention, end to end, is Hugging Face's:
 *
 * <p>{@code labels} are NOT shifted: {@code labels[t]} is the target for the token at t, and the
 * model computes the loss of position t-1 predicting it (the shift happens once, inside the model's
 * loss). -100 = no loss. The first label of a row is never a target (nothing precedes it), and the
 * first token of every document has label -100, so a packed row never trains one document's last
 * token to predict the next document's first.
 *
 * @param inputIds token ids, padding = the tokenizer's pad id (any valid id) // (T)
 * @param labels target ids or -100 // (T)
 * @param positions position ids, restarting at 0 for each document; 0 on padding // (T)
 * @param docIds document index within this row (0, 1, ...); -1 on padding, whose keys attention
 *     never attends and whose tokens the router losses leave out // (T)
 */
public record PackedSequence(int[] inputIds, int[] labels, int[] positions, int[] docIds) {

  /** A label that carries no loss, as torch's CrossEntropyLoss ignore_index. */
  public static final int IGNORE = -100;

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

  /**
   * Tokens that carry a loss: labels other than -100 at positions 1..T-1 (the first label of a row
   * has no position before it to predict it; the datasets set it to -100 anyway).
   */
  public int labelledTokens() {
    int n = 0;
    for (int t = 1; t < labels.length; t++) {
      if (labels[t] != IGNORE) {
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

  /**
   * A single unpadded document: positions 0..T-1, doc 0, every token after the first a target
   * (labels = ids, HF's causal-LM labels, with the first one -100 as the datasets write it).
   */
  public static PackedSequence ofDocument(int[] ids) {
    int t = ids.length;
    int[] labels = ids.clone();
    int[] positions = new int[t];
    for (int i = 0; i < t; i++) {
      positions[i] = i;
    }
    if (t > 0) {
      labels[0] = IGNORE;
    }
    return new PackedSequence(ids.clone(), labels, positions, new int[t]);
  }
}
