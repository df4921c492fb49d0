package moetune.datasets;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * What a dataset amounts to once encoded.
 *
 * @param records conversations encoded
 * @param skipped bad records skipped at load (only with skipping on)
 * @param tokens tokens kept (after truncation)
 * @param trainableTokens tokens with a label
 * @param truncated conversations cut at the max length
 * @param truncatedTokens tokens those conversations lost (a lower bound for texts so long that only
 *     a prefix was tokenized)
 * @param truncatedWithoutTrainable truncated conversations the cut left with no trainable token
 * @param withoutTrainable conversations left with no trainable token (dropped from training)
 * @param maxLength the encoder's max length
 * @param longest the longest conversation before truncation, in tokens
 * @param histogram conversation lengths before truncation, in power-of-two buckets
 */
public record DatasetStats(
    int records,
    int skipped,
    long tokens,
    long trainableTokens,
    int truncated,
    long truncatedTokens,
    int truncatedWithoutTrainable,
    int withoutTrainable,
    int maxLength,
    int longest,
    List<Bucket> histogram) {

  /** {@code count} conversations with from ≤ length < to tokens. */
  public record Bucket(int from, int to, int count) {}

  public DatasetStats {
    histogram = List.copyOf(histogram);
  }

  /** Statistics of encoded conversations; {@code skipped} is carried from the load. */
  public static DatasetStats of(List<EncodedChat> docs, int skipped, int maxLength) {
    long tokens = 0;
    long trainable = 0;
    int truncated = 0;
    long cut = 0;
    int cutEmpty = 0;
    int without = 0;
    int longest = 0;
    for (EncodedChat d : docs) {
      tokens += d.length();
      int t = d.trainableTokens();
      trainable += t;
      truncated += d.truncated() ? 1 : 0;
      cut += d.fullLength() - d.length();
      cutEmpty += d.truncated() && t == 0 ? 1 : 0;
      without += t == 0 ? 1 : 0;
      longest = Math.max(longest, d.fullLength());
    }
    List<Bucket> hist = new ArrayList<>();
    int from = 0;
    int to = 16;
    while (from <= longest) {
      int count = 0;
      for (EncodedChat d : docs) {
        count += d.fullLength() >= from && d.fullLength() < to ? 1 : 0;
      }
      hist.add(new Bucket(from, to, count));
      from = to;
      to *= 2;
    }
    return new DatasetStats(
        docs.size(),
        skipped,
        tokens,
        trainable,
        truncated,
        cut,
        cutEmpty,
        without,
        maxLength,
        longest,
        hist);
  }

  /**
   * One line on what truncation and skipping did, or "" when neither did anything: {@code "3
   * conversations truncated at 512 tokens (812 tokens cut, 1 left with no trainable token); 2
   * invalid records skipped"}.
   */
  public String lossNote() {
    List<String> parts = new ArrayList<>();
    if (truncated > 0) {
      parts.add(
          truncated
              + " conversation"
              + (truncated == 1 ? "" : "s")
              + " truncated at "
              + maxLength
              + " tokens ("
              + truncatedTokens
              + " tokens cut"
              + (truncatedWithoutTrainable == 0
                  ? ""
                  : ", " + truncatedWithoutTrainable + " left with no trainable token")
              + ")");
    }
    if (skipped > 0) {
      parts.add(skipped + " invalid record" + (skipped == 1 ? "" : "s") + " skipped");
    }
    return String.join("; ", parts);
  }

  /** A few lines for a terminal. */
  public String format() {
    StringBuilder b = new StringBuilder();
    b.append(String.format(Locale.ROOT, "records            %d%n", records));
    b.append(String.format(Locale.ROOT, "skipped (invalid)  %d%n", skipped));
    b.append(String.format(Locale.ROOT, "tokens             %d%n", tokens));
    b.append(
        String.format(
            Locale.ROOT,
            "trainable tokens   %d (%.1f%%)%n",
            trainableTokens,
            tokens == 0 ? 0.0 : 100.0 * trainableTokens / tokens));
    b.append(
        String.format(
            Locale.ROOT,
            "truncated          %d (at %d tokens; %d tokens cut)%n",
            truncated,
            maxLength,
            truncatedTokens));
    b.append(
        String.format(
            Locale.ROOT,
            "no trainable token %d%s%n",
            withoutTrainable,
            truncatedWithoutTrainable == 0
                ? ""
                : " (" + truncatedWithoutTrainable + " of them by truncation)"));
    b.append(String.format(Locale.ROOT, "longest            %d tokens%n", longest));
    int max = histogram.stream().mapToInt(Bucket::count).max().orElse(1);
    for (Bucket h : histogram) {
      int bar = max == 0 ? 0 : (int) Math.round(40.0 * h.count() / max);
      b.append(
          String.format(
              Locale.ROOT, "  [%6d, %6d) %7d %s%n", h.from(), h.to(), h.count(), "#".repeat(bar)));
    }
    return b.toString();
  }
}
