package moetune.datasets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import moetune.sequences.PackedSequence;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The data path keeps the tokenized result, never the file's text: a dataset three times the heap
 * goes through {@link DataPipeline#prepare} in a child JVM, and the streamed path gives the same
 * rows as tokenizing the loaded records.
 */
class StreamedPipelineTest {

  /** The child: prepares ARGS[0] with the tokenizer of ARGS[1] at max length 16. */
  public static final class PrepareMain {
    public static void main(String[] args) {
      try (ChatTokenizer tok = ChatTokenizer.load(Path.of(args[1]))) {
        PreparedData p = DataPipeline.prepare(config(Path.of(args[0])), tok);
        System.out.println("records: " + p.stats().records() + " rows: " + p.train().size());
      }
    }
  }

  static DataConfig config(Path data) {
    return new DataConfig(
        data,
        DatasetFormat.OPENAI,
        false,
        "mistral",
        null,
        LabelMode.ALL_ASSISTANT,
        16,
        true,
        0.01,
        7);
  }

  private static List<String> text(List<PackedSequence> rows) {
    return rows.stream()
        .map(
            r ->
                Arrays.toString(r.inputIds())
                    + Arrays.toString(r.labels())
                    + Arrays.toString(r.positions())
                    + Arrays.toString(r.docIds()))
        .toList();
  }

  @Test
  void aDatasetLargerThanTheHeapIsTokenizedRecordByRecord(@TempDir Path tmp) throws Exception {
    Path model = Fixtures.tinyMixtral();
    Path big = tmp.resolve("big.jsonl");
    String record =
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\","
            + " \"content\": \""
            + "x".repeat(2000)
            + "\"}]}\n";
    int count = 40_000; // about 82 MB of text: held whole it would not fit the child's 48 MB heap
    try (BufferedWriter w = Files.newBufferedWriter(big, StandardCharsets.UTF_8)) {
      for (int i = 0; i < count; i++) {
        w.write(record);
      }
    }
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    Path log = tmp.resolve("child.log");
    Process p =
        new ProcessBuilder(
                List.of(
                    java,
                    "-Xmx48m",
                    "-cp",
                    System.getProperty("java.class.path"),
                    PrepareMain.class.getName(),
                    big.toString(),
                    model.toString()))
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    assertTrue(p.waitFor(240, TimeUnit.SECONDS), "child did not finish");
    String out = Files.readString(log);
    assertEquals(0, p.exitValue(), out);
    assertTrue(out.contains("records: " + count + " "), out);
  }

  @Test
  void streamingGivesTheRowsOfTokenizingTheLoadedRecords(@TempDir Path tmp) throws Exception {
    Path f = tmp.resolve("small.jsonl");
    SampleData.writeShareGpt(f, SampleData.arithmetic(5, 40));
    DataConfig c =
        new DataConfig(
            f,
            DatasetFormat.AUTO,
            false,
            "mistral",
            null,
            LabelMode.ALL_ASSISTANT,
            48,
            true,
            0.2,
            11);
    ChatTokenizer tok = Fixtures.mistral();
    PreparedData streamed = DataPipeline.prepare(c, tok);
    // the reference: load every record, split them, then tokenize each side
    ChatEncoder enc = new ChatEncoder(tok, DataPipeline.template(c, null), c.labels(), c.seqLen());
    DataSplit.Split<ChatRecord> split =
        DataSplit.split(DatasetLoader.load(f, c.format(), false).records(), 0.2, 11);
    List<EncodedChat> train =
        split.train().stream().map(enc::encode).filter(d -> d.trainableTokens() > 0).toList();
    List<EncodedChat> eval =
        split.eval().stream().map(enc::encode).filter(d -> d.trainableTokens() > 0).toList();
    assertEquals(text(Packer.pack(train, 48, tok.padId())), text(streamed.train()));
    assertEquals(text(Packer.pack(eval, 48, tok.padId())), text(streamed.eval()));
    assertTrue(streamed.eval().size() > 0 && streamed.train().size() > 0);
  }
}
