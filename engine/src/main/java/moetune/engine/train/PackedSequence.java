package moetune.engine.train;

/**
 * One training sequence of exactly T token positions, as the data pipeline packs it. The engine
 * never reads datasets: the app turns records into these.
 *
 * @param inputIds (T) token ids; padding positions hold any valid id (0)
 * @param targets (T) the token to predict at each position, already shifted (targets[t] is the id
 *     at t+1 of the same document), or -100 where no loss is taken (prompt tokens, the last token
 *     of each document, padding)
 * @param positions (T) rotary position of each token, restarting at 0 for every packed document
 * @param docIds (T) document index within the sequence (0, 1, ...), -1 for padding; attention never
 *     crosses documents
 */
public record PackedSequence(int[] inputIds, int[] targets, int[] positions, int[] docIds) {
  public PackedSequence {
    int t = inputIds.length;
    if (targets.length != t || positions.length != t || docIds.length != t) {
      throw new IllegalArgumentException(
          "PackedSequence: inputIds has "
              + t
              + " positions but targets "
              + targets.length
              + ", positions "
              + positions.length
              + ", docIds "
              + docIds.length);
    }
  }

  public int length() {
    return inputIds.length;
  }

  /** Positions that carry a loss. */
  public int labelledTokens() {
    int n = 0;
    for (int y : targets) {
      if (y != -100) {
        n++;
      }
    }
    return n;
  }

  /**
   * A single unpadded document: positions 0..T-1, doc 0, targets = next id, none after the last.
   */
  public static PackedSequence ofDocument(int[] ids) {
    int t = ids.length;
    int[] targets = new int[t];
    int[] positions = new int[t];
    for (int i = 0; i < t; i++) {
      targets[i] = i + 1 < t ? ids[i + 1] : -100;
      positions[i] = i;
    }
    return new PackedSequence(ids.clone(), targets, positions, new int[t]);
  }
}
