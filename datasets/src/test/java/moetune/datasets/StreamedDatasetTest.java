package moetune.datasets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Dataset files are streamed (any size, bounded memory); bad Unicode names file:line. */
class StreamedDatasetTest {

  /** The child: counts the records of a file through the streaming reader. */
  public static final class CountMain {
    public static void main(String[] args) {
      long[] n = {0};
      JsonLines.forEach(Path.of(args[0]), e -> n[0]++);
      System.out.println("records: " + n[0]);
    }
  }

  @Test
  void aFileMuchLargerThanTheHeapIsReadRecordByRecord(@TempDir Path tmp) throws Exception {
    Path big = tmp.resolve("big.jsonl");
    String record =
        "{\"messages\": [{\"role\": \"user\", \"content\": \""
            + "x".repeat(900)
            + "\"}, {\"role\": \"assistant\", \"content\": \"ok\"}]}\n";
    int count = 100_000; // about 96 MB, three times the child's heap
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
                    "-Xmx32m",
                    "-cp",
                    System.getProperty("java.class.path"),
                    CountMain.class.getName(),
                    big.toString()))
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "child did not finish");
    String out = Files.readString(log);
    assertEquals(0, p.exitValue(), out);
    assertTrue(out.contains("records: " + count), out);
  }

  @Test
  void aLoneSurrogateNamesFileLineAndField(@TempDir Path tmp) throws Exception {
    Path f = tmp.resolve("chat.jsonl");
    Files.writeString(
        f,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\","
            + " \"content\": \"ok\"}]}\n"
            + "\n"
            + "{\"messages\": [{\"role\": \"user\", \"content\": \"a\\ud800b\"}, {\"role\":"
            + " \"assistant\", \"content\": \"ok\"}]}\n");
    DatasetException e =
        assertThrows(
            DatasetException.class, () -> DatasetLoader.load(f, DatasetFormat.OPENAI, false));
    assertTrue(
        e.getMessage()
            .startsWith(
                f
                    + ":3: record 2: field 'messages[0].content': a lone UTF-16 surrogate \\ud800"
                    + " at char 1"),
        e.getMessage());
    LoadedDataset skipped = DatasetLoader.load(f, DatasetFormat.OPENAI, true);
    assertEquals(1, skipped.records().size());
    assertEquals(1, skipped.skipped());
  }

  @Test
  void aLoneSurrogateInAnArrayFileNamesItsLine(@TempDir Path tmp) throws Exception {
    Path f = tmp.resolve("chat.json");
    Files.writeString(
        f,
        "\n\n[\n  {\"conversations\": [{\"from\": \"human\", \"value\": \"q\"},"
            + " {\"from\": \"gpt\", \"value\": \"x\\udc00\"}]}\n]\n");
    DatasetException e =
        assertThrows(
            DatasetException.class, () -> DatasetLoader.load(f, DatasetFormat.SHAREGPT, false));
    assertTrue(
        e.getMessage().startsWith(f + ":4: record 1: field 'conversations[1].value'"),
        e.getMessage());
  }

  @Test
  void theTokenizerRefusesALoneSurrogateWithALine() {
    ChatTokenizer t = Fixtures.mistral();
    DatasetException e = assertThrows(DatasetException.class, () -> t.encode("ab\ud800"));
    assertTrue(e.getMessage().contains("lone UTF-16 surrogate \\ud800 at char 2"), e.getMessage());
    assertEquals(t.encode("ab\ud83d\ude00").ids().length, t.encode("ab\ud83d\ude00").ids().length);
  }

  @Test
  void invalidUtf8DeepInABigFileNamesItsLine(@TempDir Path tmp) throws Exception {
    Path f = tmp.resolve("bad.jsonl");
    byte[] good =
        "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}\n"
            .getBytes(StandardCharsets.UTF_8);
    int lines = 5000; // well past the reader's buffers
    byte[] all = new byte[good.length * lines];
    for (int i = 0; i < lines; i++) {
      System.arraycopy(good, 0, all, i * good.length, good.length);
    }
    all[good.length * 4321 + 40] = (byte) 0xC3; // in line 4322
    Files.write(f, all);
    DatasetException e =
        assertThrows(
            DatasetException.class, () -> DatasetLoader.load(f, DatasetFormat.OPENAI, false));
    assertTrue(e.getMessage().startsWith(f + ":4322: invalid UTF-8"), e.getMessage());
  }
}
