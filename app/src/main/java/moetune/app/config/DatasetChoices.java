package moetune.app.config;

/** The dataset formats and label modes a run config may name (those the datasets module reads). */
final class DatasetChoices {
  private DatasetChoices() {}

  static final String[] FORMATS = {"auto", "sharegpt", "openai", "alpaca"};
  static final String[] LABELS = {"all-assistant", "last-turn", "everything"};
}
