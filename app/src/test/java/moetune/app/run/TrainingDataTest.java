package moetune.app.run;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import moetune.app.config.RunConfig;
import moetune.app.config.RunConfigParser;
import moetune.datasets.ChatTokenizer;
import moetune.datasets.DatasetException;
import moetune.datasets.SampleData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The run's data: --skip-invalid counted and reported, truncation reported, mixing weights. */
class TrainingDataTest {
  static final Path TINY = Path.of(System.getProperty("moetune.fixtures"), "tiny-mixtral");

  static RunConfig config(Path tmp, String datasets, String extra) throws IOException {
    Path f = tmp.resolve("run.yaml");
    Files.writeString(
        f,
        "model: m\nout: o\nformat: sharegpt\npacking: false\neval-split: 0\n"
            + "datasets:\n"
            + datasets
            + (extra.contains("max-length") ? extra : extra + "max-length: 256\n"));
    return RunConfigParser.parse(f, Map.of());
  }

  static Path chats(Path tmp, String name, int n, boolean withBadLine) throws IOException {
    Path f = tmp.resolve(name);
    SampleData.writeShareGpt(f, SampleData.arithmetic(n, n));
    if (withBadLine) {
      List<String> lines = new ArrayList<>(Files.readAllLines(f));
      lines.add(1, "{\"conversations\": 7}");
      Files.write(f, lines);
    }
    return f;
  }

  @Test
  void skipInvalidCountsAndReportsBadRecords(@TempDir Path tmp) throws IOException {
    Path bad = chats(tmp, "bad.jsonl", 20, true);
    try (ChatTokenizer tok = ChatTokenizer.load(TINY)) {
      RunConfig strict = config(tmp, "  - " + bad + "\n", "");
      DatasetException e =
          assertThrows(DatasetException.class, () -> TrainingData.prepare(strict, tok));
      assertTrue(e.getMessage().startsWith(bad + ":2: record 2: "), e.getMessage());
      assertTrue(e.getMessage().endsWith("(or pass --skip-invalid to skip bad records)"));

      TrainingData d =
          TrainingData.prepare(config(tmp, "  - " + bad + "\n", "skip-invalid: true\n"), tok);
      assertEquals(20, d.conversations());
      assertTrue(d.summary().contains(bad + ": 1 invalid record skipped"), d.summary());
    }
  }

  @Test
  void truncationIsReportedInTheSummary(@TempDir Path tmp) throws IOException {
    Path f = tmp.resolve("long.jsonl");
    String reply = "the answer is long ".repeat(20);
    Files.writeString(
        f,
        "{\"conversations\": [{\"from\": \"human\", \"value\": \"hi\"}, {\"from\": \"gpt\", \"value\":"
            + " \""
            + reply
            + "\"}]}\n"
            + "{\"conversations\": [{\"from\": \"human\", \"value\": \"hi\"}, {\"from\": \"gpt\","
            + " \"value\": \"ok\"}]}\n");
    try (ChatTokenizer tok = ChatTokenizer.load(TINY)) {
      TrainingData d =
          TrainingData.prepare(config(tmp, "  - " + f + "\n", "max-length: 64\n"), tok);
      assertTrue(
          d.summary()
              .matches(
                  "(?s).*long\\.jsonl: 1 conversation truncated at 64 tokens \\(\\d+ tokens cut\\).*"),
          d.summary());
    }
  }

  @Test
  void mixingWeightsRepeatAndSubsampleEachDataset(@TempDir Path tmp) throws IOException {
    Path a = chats(tmp, "a.jsonl", 10, false);
    Path b = chats(tmp, "b.jsonl", 40, false);
    try (ChatTokenizer tok = ChatTokenizer.load(TINY)) {
      TrainingData plain =
          TrainingData.prepare(config(tmp, "  - " + a + "\n  - " + b + "\n", ""), tok);
      assertEquals(50, plain.train().size(), "one conversation per sequence without packing");
      TrainingData mixed =
          TrainingData.prepare(
              config(
                  tmp,
                  "  - path: " + a + "\n    weight: 2.5\n  - path: " + b + "\n    weight: 0.25\n",
                  ""),
              tok);
      assertEquals(25 + 10, mixed.train().size());
      assertTrue(mixed.summary().contains(a + ": weight 2.5: 10 -> 25 sequences"), mixed.summary());
      assertTrue(
          mixed.summary().contains(b + ": weight 0.25: 40 -> 10 sequences"), mixed.summary());
    }
  }
}
