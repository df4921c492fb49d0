package moetune.app.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import moetune.app.config.RunConfigFields;
import moetune.datasets.ByteTokenizerFiles;
import moetune.datasets.ChatEncoder;
import moetune.datasets.ChatRecord;
import moetune.datasets.ChatTokenizer;
import moetune.datasets.DatasetException;
import moetune.datasets.DatasetFormat;
import moetune.datasets.DatasetLoader;
import moetune.datasets.DatasetStats;
import moetune.datasets.EncodedChat;
import moetune.datasets.LabelMode;
import moetune.datasets.LoadedDataset;
import moetune.datasets.SampleData;
import moetune.datasets.TokenView;
import moetune.templates.RenderedPrompt;
import moetune.templates.Span;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code moetune data inspect|stats|sample}: look at a dataset the way the trainer will. */
@Command(
    name = "data",
    description = "Inspect datasets, show their statistics, write the sample dataset.",
    mixinStandardHelpOptions = true,
    subcommands = {DataCommand.Inspect.class, DataCommand.Stats.class, DataCommand.Sample.class})
public final class DataCommand implements Runnable {
  @Override
  public void run() {
    new picocli.CommandLine(this).usage(System.out);
  }

  /** The options every dataset-reading subcommand shares. */
  static final class DataOptions {
    @Option(
        names = {"--data", "--datasets"},
        required = true,
        description = "Dataset file (JSON, JSONL or Parquet).")
    Path data;

    @Option(
        names = "--format",
        defaultValue = "auto",
        description = "auto, sharegpt, openai or alpaca (default: ${DEFAULT-VALUE}).")
    String format;

    @Option(names = "--template", required = true, description = "Conversation template name.")
    String template;

    @Option(names = "--template-file", description = "JSON file with user templates.")
    Path templateFile;

    @Option(
        names = {"--tokenizer", "--model"},
        required = true,
        description = "Model directory holding tokenizer.json, or the tokenizer.json itself.")
    Path tokenizer;

    /** The directory of --tokenizer: train's --tokenizer names the file, so both are accepted. */
    Path tokenizerDir() {
      return java.nio.file.Files.isRegularFile(tokenizer)
          ? tokenizer.toAbsolutePath().getParent()
          : tokenizer;
    }

    @Option(
        names = "--labels",
        defaultValue = "all-assistant",
        description = "all-assistant, last-turn or everything (default: ${DEFAULT-VALUE}).")
    String labels;

    @Option(
        names = "--max-length",
        defaultValue = "" + RunConfigFields.MAX_LENGTH,
        description = "Truncate conversations to this many tokens (default: ${DEFAULT-VALUE}).")
    int maxLength;

    @Option(names = "--skip-invalid", description = "Skip (and count) bad records.")
    boolean skipInvalid;

    LoadedDataset load() {
      return DatasetLoader.load(data, DatasetFormat.parse(format), skipInvalid);
    }

    ChatEncoder encoder(ChatTokenizer tok) {
      return new ChatEncoder(
          tok,
          TemplateCommand.registry(templateFile).format(template, tok.directory()),
          LabelMode.parse(labels),
          maxLength);
    }
  }

  /** {@code data inspect}: one record, token by token, with its label. */
  @Command(
      name = "inspect",
      mixinStandardHelpOptions = true,
      description = "Show one record's prompt and its tokens with their labels.")
  static final class Inspect implements Callable<Integer> {
    @Mixin DataOptions opts;

    @Option(
        names = "--record",
        defaultValue = "1",
        description = "Record number, 1-based, among the loaded records (default: 1).")
    int record;

    @Override
    public Integer call() throws Exception {
      return UserErrors.run(
          "data inspect",
          () -> {
            LoadedDataset d = opts.load();
            if (record < 1 || record > d.records().size()) {
              throw new DatasetException(
                  opts.data
                      + ": --record "
                      + record
                      + " is out of range;"
                      + " the file has "
                      + d.records().size()
                      + " records");
            }
            ChatRecord r = d.records().get(record - 1);
            try (ChatTokenizer tok = ChatTokenizer.load(opts.tokenizerDir())) {
              ChatEncoder enc = opts.encoder(tok);
              for (String w :
                  moetune.app.run.ChatTemplateNotes.markerWarnings(enc.template(), tok)) {
                System.err.println("warning: " + w);
              }
              RenderedPrompt p = enc.render(r);
              EncodedChat e = enc.encode(r);
              System.out.println(
                  "record "
                      + record
                      + " ("
                      + r.origin()
                      + "), template "
                      + enc.template().name()
                      + ", "
                      + e.length()
                      + " tokens"
                      + (e.truncated() ? " (truncated from " + e.fullLength() + ")" : "")
                      + ", "
                      + e.trainableTokens()
                      + " trained");
              System.out.println("--- prompt (spans) ---");
              for (Span s : p.spans()) {
                System.out.printf("%-12s %s%n", s.kind(), quote(p.text(s)));
              }
              System.out.println("--- tokens (* = trained; label = the id itself) ---");
              System.out.printf("%6s %8s %8s %-12s %s%n", "index", "id", "label", "kind", "token");
              for (TokenView t : enc.inspect(r)) {
                System.out.printf(
                    "%6d %8d %8d %-12s %s%s%n",
                    t.index(),
                    t.id(),
                    t.label(),
                    t.kind() == null ? "(special)" : t.kind().name(),
                    quote(t.token()),
                    t.trained() ? " *" : "");
              }
            }
            return 0;
          });
    }
  }

  /** {@code data stats}. */
  @Command(
      name = "stats",
      mixinStandardHelpOptions = true,
      description = "Records, tokens, trainable tokens, truncation and a length histogram.")
  static final class Stats implements Callable<Integer> {
    @Mixin DataOptions opts;

    @Override
    public Integer call() throws Exception {
      return UserErrors.run(
          "data stats",
          () -> {
            LoadedDataset d = opts.load();
            try (ChatTokenizer tok = ChatTokenizer.load(opts.tokenizerDir())) {
              ChatEncoder enc = opts.encoder(tok);
              List<EncodedChat> docs = new ArrayList<>(d.records().size());
              for (ChatRecord r : d.records()) {
                docs.add(enc.encode(r));
              }
              System.out.print(DatasetStats.of(docs, d.skipped(), opts.maxLength).format());
              for (String s : d.skipReasons()) {
                System.err.println("skipped: " + s);
              }
            }
            return 0;
          });
    }
  }

  /** {@code data sample}: the bundled arithmetic dataset (and optionally a byte tokenizer). */
  @Command(
      name = "sample",
      mixinStandardHelpOptions = true,
      description = "Write the built-in arithmetic chat dataset as ShareGPT JSONL.")
  static final class Sample implements Callable<Integer> {
    @Option(names = "--output", required = true, description = "JSONL file to write.")
    Path output;

    @Option(names = "--count", defaultValue = "1000", description = "Conversations.")
    int count;

    @Option(names = "--seed", defaultValue = "1", description = "Generator seed.")
    long seed;

    @Option(
        names = "--tokenizer-dir",
        description = "Also write a byte-level tokenizer.json + tokenizer_config.json here.")
    Path tokenizerDir;

    @Override
    public Integer call() throws Exception {
      return UserErrors.run(
          "data sample",
          () -> {
            if (count < 1) {
              throw new DatasetException("--count " + count + " must be at least 1");
            }
            SampleData.writeShareGpt(output, SampleData.arithmetic(seed, count));
            System.err.println("wrote " + count + " conversations to " + output);
            if (tokenizerDir != null) {
              ByteTokenizerFiles.write(tokenizerDir);
              System.err.println(
                  "wrote a byte-level tokenizer (vocab "
                      + ByteTokenizerFiles.VOCAB_SIZE
                      + ") to "
                      + tokenizerDir);
            }
            return 0;
          });
    }
  }

  /**
   * Control characters and edges made visible: "\n", "\r", "\t", leading/trailing spaces in quotes.
   */
  static String quote(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '\n' -> b.append("\\n");
        case '\r' -> b.append("\\r");
        case '\t' -> b.append("\\t");
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        default -> b.append(c < 0x20 ? String.format("\\u%04x", (int) c) : String.valueOf(c));
      }
    }
    return b.append('"').toString();
  }
}
