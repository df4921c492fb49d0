package moetune.app.config;

/**
 * One dataset of a run: a file and how to read it.
 *
 * @param path a JSON, JSONL or Parquet file
 * @param format how records are laid out (sharegpt, openai, alpaca, ...)
 * @param template the conversation template that renders them
 * @param labels which tokens carry the loss (the datasets module's label modes)
 * @param weight its mixing weight: its training sequences are taken {@code weight} times per epoch
 *     (2: twice, 0.5: a seeded half); null: 1
 */
public record DatasetSpec(
    String path, String format, String template, String labels, Double weight) {

  /** A dataset with weight 1. */
  public DatasetSpec(String path, String format, String template, String labels) {
    this(path, format, template, labels, null);
  }

  /** The mixing weight, 1 when none was given. */
  public double weightOrOne() {
    return weight == null ? 1.0 : weight;
  }
}
