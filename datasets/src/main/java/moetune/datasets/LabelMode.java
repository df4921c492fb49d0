package moetune.datasets;

/** Which tokens carry a training label (all others are -100). */
public enum LabelMode {
  /** Every assistant reply and the separator / EOS that ends it (FastChat's default). */
  ALL_ASSISTANT,
  /** Only the last assistant reply and its end. */
  LAST_TURN,
  /** Every token (plain language modelling on the rendered prompt). */
  EVERYTHING;

  public static LabelMode parse(String name) {
    return switch (name.trim().toLowerCase(java.util.Locale.ROOT).replace('_', '-')) {
      case "all-assistant", "assistant", "all" -> ALL_ASSISTANT;
      case "last-turn", "last" -> LAST_TURN;
      case "everything" -> EVERYTHING;
      default ->
          throw new DatasetException(
              "unknown label mode '" + name + "'; use all-assistant, last-turn or everything");
    };
  }
}
