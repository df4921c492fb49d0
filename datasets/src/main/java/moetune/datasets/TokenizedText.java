package moetune.datasets;

/**
 * A text as the model's tokenizer encodes it in one call (N tokens).
 *
 * @param ids token ids // (N)
 * @param tokens the tokenizer's token strings, e.g. "▁Hello" // (N)
 * @param starts first UTF-16 char of the text each token covers, -1 for tokens the post-processor
 *     added (BOS) // (N)
 * @param ends one past the last UTF-16 char covered, -1 likewise // (N)
 */
public record TokenizedText(int[] ids, String[] tokens, int[] starts, int[] ends) {
  public int length() {
    return ids.length;
  }
}
