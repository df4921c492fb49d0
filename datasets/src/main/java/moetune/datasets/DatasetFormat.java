package moetune.datasets;

import java.util.Locale;

/** The record shapes moetune reads; {@link #AUTO} picks per record by its fields. */
public enum DatasetFormat {
  /**
   * Chooses per record: {@code conversations} → ShareGPT, {@code messages} → OpenAI, {@code
   * instruction} → Alpaca.
   */
  AUTO,
  /**
   * ShareGPT / FastChat: {@code {"conversations": [{"from": "human"|"gpt"|"system", "value":
   * str}]}}.
   */
  SHAREGPT,
  /**
   * OpenAI chat: {@code {"messages": [{"role": "system"|"user"|"assistant", "content": str}]}},
   * optional {@code "system"}.
   */
  OPENAI,
  /** Alpaca: {@code {"instruction": str, "input": str?, "output": str}}. */
  ALPACA;

  /** Parses a CLI / config name: auto, sharegpt, openai (or messages), alpaca. */
  public static DatasetFormat parse(String name) {
    String n = name.trim().toLowerCase(Locale.ROOT);
    return switch (n) {
      case "auto" -> AUTO;
      case "sharegpt", "fastchat" -> SHAREGPT;
      case "openai", "messages" -> OPENAI;
      case "alpaca" -> ALPACA;
      default ->
          throw new DatasetException(
              "unknown dataset format '" + name + "'; use one of auto, sharegpt, openai, alpaca");
    };
  }
}
