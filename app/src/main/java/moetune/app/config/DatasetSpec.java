package moetune.app.config;

/**
 * One dataset of a run: a file and how to read it.
 *
 * @param path a JSON or JSONL file
 * @param format how records are laid out (sharegpt, openai, alpaca, ...)
 * @param template the conversation template that renders them
 * @param labels which tokens carry the loss (the datasets module's label modes)
 */
public record DatasetSpec(String path, String format, String template, String labels) {}
