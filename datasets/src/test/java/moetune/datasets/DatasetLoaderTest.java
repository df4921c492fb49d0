package moetune.datasets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import moetune.templates.Message;
import moetune.templates.Role;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The three record shapes, and every malformed input giving one line naming file, line and field.
 */
class DatasetLoaderTest {
  @TempDir Path dir;

  Path file(String name, String content) throws IOException {
    Path p = dir.resolve(name);
    Files.writeString(p, content);
    return p;
  }

  @Test
  void shareGptJsonArrayWithSystem() throws Exception {
    Path p =
        file(
            "d.json",
            """
        [
          {"id": "a", "conversations": [
            {"from": "system", "value": "Be terse."},
            {"from": "human", "value": "Hi"},
            {"from": "gpt", "value": "Hello"}]},
          {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]}
        ]
        """);
    LoadedDataset d = DatasetLoader.load(p, DatasetFormat.SHAREGPT, false);
    assertEquals(2, d.records().size());
    ChatRecord r = d.records().get(0);
    assertEquals("Be terse.", r.system());
    assertEquals(java.util.List.of(Message.user("Hi"), Message.assistant("Hello")), r.messages());
    assertEquals("d.json:2", r.origin());
    assertEquals("d.json:6", d.records().get(1).origin());
    assertNull(d.records().get(1).system());
  }

  @Test
  void openAiJsonlAndAlpacaAndAuto() throws Exception {
    Path p =
        file(
            "m.jsonl",
            """
        {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}

        {"instruction": "Add.", "input": "1 and 2", "output": "3"}
        {"instruction": "Say hi.", "output": "hi"}
        {"conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": null}]}
        """);
    LoadedDataset d = DatasetLoader.load(p, DatasetFormat.AUTO, false);
    assertEquals(4, d.records().size());
    assertEquals("S", d.records().get(0).system());
    assertEquals("Add.\n\n1 and 2", d.records().get(1).messages().get(0).content());
    assertEquals("3", d.records().get(1).messages().get(1).content());
    assertEquals("Say hi.", d.records().get(2).messages().get(0).content());
    assertEquals("m.jsonl:3", d.records().get(1).origin());
    assertNull(d.records().get(3).messages().get(1).content(), "an open last turn is kept");
  }

  @Test
  void utf8ByteOrderMarkIsAccepted() throws Exception {
    Path p = dir.resolve("bom.jsonl");
    byte[] body =
        "{\"messages\": [{\"role\": \"user\", \"content\": \"h\u00e9\"}]}\n"
            .getBytes(StandardCharsets.UTF_8);
    byte[] all = new byte[body.length + 3];
    all[0] = (byte) 0xEF;
    all[1] = (byte) 0xBB;
    all[2] = (byte) 0xBF;
    System.arraycopy(body, 0, all, 3, body.length);
    Files.write(p, all);
    assertEquals(
        "h\u00e9",
        DatasetLoader.load(p, DatasetFormat.OPENAI, false)
            .records()
            .get(0)
            .messages()
            .get(0)
            .content());
  }

  @Test
  void tenMegabyteMessageLoads() throws Exception {
    String big = "x".repeat(10 << 20);
    Path p =
        file(
            "big.jsonl",
            "{\"conversations\": [{\"from\": \"human\", \"value\": \""
                + big
                + "\"}, {\"from\": \"gpt\", \"value\": \"ok\"}]}\n");
    assertEquals(
        10 << 20,
        DatasetLoader.load(p, DatasetFormat.SHAREGPT, false)
            .records()
            .get(0)
            .messages()
            .get(0)
            .content()
            .length());
  }

  @Test
  void invalidUtf8NamesTheLine() throws Exception {
    Path p = dir.resolve("bad.jsonl");
    byte[] good =
        "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}\n"
            .getBytes(StandardCharsets.UTF_8);
    byte[] all = new byte[good.length * 2];
    System.arraycopy(good, 0, all, 0, good.length);
    System.arraycopy(good, 0, all, good.length, good.length);
    all[good.length + 40] = (byte) 0xC3; // a lead byte followed by '"': malformed
    Files.write(p, all);
    assertError(p, DatasetFormat.OPENAI, "bad.jsonl:2: invalid UTF-8");
  }

  @Test
  void malformedRecordsEachGiveOneLine() throws Exception {
    assertError(
        file("a.jsonl", "{\"conversations\": [\n"),
        DatasetFormat.SHAREGPT,
        "a.jsonl:1: record 1: bad JSON");
    assertError(
        file("b.jsonl", "{\"conversations\": \"hi\"}"),
        DatasetFormat.SHAREGPT,
        "b.jsonl:1: record 1: field 'conversations' must be an array, got string");
    assertError(
        file("c.jsonl", "{\"conversations\": []}"),
        DatasetFormat.SHAREGPT,
        "c.jsonl:1: record 1: field 'conversations' is empty");
    assertError(
        file("d.jsonl", "{\"conversations\": [{\"from\": \"robot\", \"value\": \"x\"}]}"),
        DatasetFormat.SHAREGPT,
        "'conversations[0].from' is 'robot'");
    assertError(
        file("e.jsonl", "{\"conversations\": [{\"from\": \"human\", \"value\": 5}]}"),
        DatasetFormat.SHAREGPT,
        "'conversations[0].value' must be a string, got number");
    assertError(
        file("f.jsonl", "{\"messages\": [{\"role\": \"assistant\", \"content\": \"x\"}]}"),
        DatasetFormat.OPENAI,
        "message 1 in 'messages' is assistant but user was expected");
    assertError(
        file("g.jsonl", "{\"text\": \"x\"}"), DatasetFormat.AUTO, "record has none of the fields");
    // Streamed: a record is checked as soon as it is read, so a cut-off array is reported
    // where the cut is (inside a record) or at the end (between records).
    assertError(file("h.jsonl", "[{\"a\": 1,, }]"), DatasetFormat.AUTO, "h.jsonl:1: bad JSON");
    assertError(file("h2.jsonl", "[\n"), DatasetFormat.AUTO, "the JSON array is not closed");
    assertError(file("i.jsonl", "  \n"), DatasetFormat.AUTO, "the file is empty");
    assertError(dir.resolve("missing.jsonl"), DatasetFormat.AUTO, "no such file");
    assertError(
        file("j.json", "[{\"instruction\": 3, \"output\": \"x\"}]"),
        DatasetFormat.ALPACA,
        "j.json:1: record 1: field 'instruction' must be a string, got number");
    assertError(
        file(
            "k.jsonl",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"},"
                + " {\"role\": \"system\", \"content\": \"s\"}]}"),
        DatasetFormat.OPENAI,
        "a system message may only come first");
    assertError(
        file("l.jsonl", "[3]"), DatasetFormat.AUTO, "expected a JSON object record, got number");
  }

  @Test
  void renderingLoadAcceptsAnyTurnOrderAndOpenTurns() throws Exception {
    Path p =
        file(
            "r.jsonl",
            "{\"messages\": [{\"role\": \"assistant\", \"content\": null},"
                + " {\"role\": \"assistant\", \"content\": \"x\"}]}\n");
    assertError(p, DatasetFormat.OPENAI, "is assistant but user was expected");
    ChatRecord r = DatasetLoader.loadForRendering(p, DatasetFormat.AUTO).records().get(0);
    assertEquals(java.util.List.of(Message.assistant(null), Message.assistant("x")), r.messages());
  }

  @Test
  void skippingCountsEveryBadRecord() throws Exception {
    Path p =
        file(
            "mix.jsonl",
            """
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
        not json
        {"messages": []}
        {"messages": [{"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}
        """);
    assertError(p, DatasetFormat.OPENAI, "mix.jsonl:2: record 2: bad JSON");
    LoadedDataset d = DatasetLoader.load(p, DatasetFormat.OPENAI, true);
    assertEquals(2, d.records().size());
    assertEquals(2, d.skipped());
    assertTrue(d.skipReasons().get(1).contains("mix.jsonl:3: record 3"), d.skipReasons().get(1));
    assertEquals(Role.ASSISTANT, d.records().get(1).messages().get(1).role());
  }

  private static void assertError(Path p, DatasetFormat f, String needle) {
    DatasetException e =
        assertThrows(DatasetException.class, () -> DatasetLoader.load(p, f, false));
    assertTrue(e.getMessage().contains(needle), e.getMessage());
    assertTrue(e.getMessage().contains(p.getFileName().toString()), e.getMessage());
    assertTrue(!e.getMessage().contains("\n"), "one line: " + e.getMessage());
  }
}
