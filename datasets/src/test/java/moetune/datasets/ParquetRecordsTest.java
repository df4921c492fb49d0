package moetune.datasets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import moetune.templates.Message;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Parquet datasets, on files DuckDB wrote as pyarrow writes HF datasets (list&lt;struct&gt;
 * columns, snappy and zstd; tools/make_parquet_fixtures.mjs): the records a JSONL file with the
 * same rows gives, and the same one-line errors.
 */
class ParquetRecordsTest {
  @TempDir Path dir;

  static Path fixture(String name) throws URISyntaxException {
    return Path.of(ParquetRecordsTest.class.getResource("/parquet/" + name).toURI());
  }

  @Test
  void openAiMessagesReadAsTheirJsonlTwin() throws Exception {
    Path pq = fixture("messages.parquet");
    DatasetException strict =
        assertThrows(
            DatasetException.class, () -> DatasetLoader.load(pq, DatasetFormat.AUTO, false));
    assertTrue(strict.getMessage().startsWith(pq + ":3: record 3: "), strict.getMessage());
    assertTrue(strict.getMessage().endsWith("(or pass --skip-invalid to skip bad records)"));

    LoadedDataset d = DatasetLoader.load(pq, DatasetFormat.AUTO, true);
    assertEquals(2, d.skipped(), d.skipReasons().toString());
    Path jsonl = dir.resolve("messages.jsonl");
    Files.writeString(
        jsonl,
        """
        {"id": 1, "messages": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]}
        {"id": 2, "messages": [{"role": "user", "content": "Héllo, 世界"}, {"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "And 3+3?"}, {"role": "assistant", "content": "6"}]}
        {"id": 3, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": null}, {"role": "assistant", "content": "ok"}]}
        {"id": 4, "messages": []}
        """);
    LoadedDataset twin = DatasetLoader.load(jsonl, DatasetFormat.AUTO, true);
    assertEquals(messages(twin), messages(d));
    assertEquals(
        twin.skipReasons().stream().map(r -> r.substring(r.indexOf(".jsonl:") + 6)).toList(),
        d.skipReasons().stream().map(r -> r.substring(r.indexOf(".parquet:") + 8)).toList());
    assertEquals(
        List.of(Message.user("What is 2+2?"), Message.assistant("4")),
        d.records().get(0).messages());
  }

  static List<List<Message>> messages(LoadedDataset d) {
    return d.records().stream().map(ChatRecord::messages).toList();
  }

  @Test
  void shareGptZstdAndAlpacaRead() throws Exception {
    LoadedDataset s =
        DatasetLoader.load(fixture("sharegpt.parquet"), DatasetFormat.SHAREGPT, false);
    assertEquals(2, s.records().size());
    assertEquals("You count.", s.records().get(1).system());
    assertEquals(Message.assistant("3"), s.records().get(1).messages().getLast());
    LoadedDataset a = DatasetLoader.load(fixture("alpaca.parquet"), DatasetFormat.AUTO, false);
    assertEquals(2, a.records().size());
    assertEquals("hi", a.records().get(1).messages().getLast().content());
    assertTrue(a.records().get(0).messages().getFirst().content().contains("2 and 3"));
  }

  @Test
  void aFileThatIsNotParquetIsOneLine() throws IOException {
    Path bad = Files.writeString(dir.resolve("bad.parquet"), "{\"messages\": []}\n");
    DatasetException e =
        assertThrows(
            DatasetException.class, () -> DatasetLoader.load(bad, DatasetFormat.AUTO, false));
    assertTrue(e.getMessage().startsWith(bad + ": cannot read it as Parquet ("), e.getMessage());
    assertEquals(1, e.getMessage().lines().count());
    Path none = dir.resolve("absent.parquet");
    assertEquals(
        none + ": no such file; check the path",
        assertThrows(
                DatasetException.class, () -> DatasetLoader.load(none, DatasetFormat.AUTO, false))
            .getMessage());
  }
}
