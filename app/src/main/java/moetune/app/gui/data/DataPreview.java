package moetune.app.gui.data;

import java.util.List;

/**
 * What the Data screen shows after a load: every record tokenized with its label mask, the
 * statistics, and the errors (a bad record is listed with its file and line, never dropped
 * silently).
 */
public record DataPreview(List<Record> records, Stats stats, List<LoadError> errors) {

  /** One token as the model sees it; {@code trainable} when its label is not -100. */
  public record Token(int id, String text, boolean trainable) {}

  /**
   * One rendered, tokenized record.
   *
   * @param origin "file:line" (or "file#index" for JSON arrays)
   * @param truncated true when the record was cut to the max length
   */
  public record Record(String origin, List<Token> tokens, boolean truncated) {
    public int trainableCount() {
      int n = 0;
      for (Token t : tokens) {
        n += t.trainable() ? 1 : 0;
      }
      return n;
    }
  }

  /**
   * Dataset statistics.
   *
   * @param histogram counts of records per length bin; bin i covers
   *     [i * binWidth, (i + 1) * binWidth) tokens
   */
  public record Stats(int records, long tokens, long trainableTokens, int truncated,
      int skipped, int binWidth, int[] histogram) {}

  /** A record that could not be read, with where it is and why. */
  public record LoadError(String file, long line, String message) {
    @Override
    public String toString() {
      return file + ":" + line + ": " + message;
    }
  }
}
