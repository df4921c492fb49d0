package moetune.datasets;

import moetune.templates.SpanKind;

/**
 * One conversation as tokens (length N ≤ the encoder's max length).
 *
 * @param inputIds token ids // (N)
 * @param labels target ids or -100, not shifted // (N)
 * @param kinds the span kind of each token (the kind of the last rendered char it covers, so
 *     "▁Hello" after a layout space is ASSISTANT); null for tokens the tokenizer's post-processor
 *     added (BOS) // (N)
 * @param fullLength the token count before truncation (≥ N); for a text so long that only a
 *     verified prefix was tokenized, a lower bound (still &gt; N, so truncated() holds)
 * @param origin file:line of the record
 */
public record EncodedChat(
    int[] inputIds, int[] labels, SpanKind[] kinds, int fullLength, String origin) {

  public int length() {
    return inputIds.length;
  }

  public boolean truncated() {
    return fullLength > inputIds.length;
  }

  public int trainableTokens() {
    int n = 0;
    for (int l : labels) {
      if (l != ChatEncoder.IGNORE) {
        n++;
      }
    }
    return n;
  }
}
