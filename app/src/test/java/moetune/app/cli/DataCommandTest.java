package moetune.app.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code moetune data inspect|stats|sample} end to end. */
class DataCommandTest {
  @TempDir Path dir;

  static Path fixture() {
    Path p = Path.of(System.getProperty("moetune.fixtures", "../fixtures")).resolve("tiny-mixtral");
    Assumptions.assumeTrue(Files.isRegularFile(p.resolve("tokenizer.json")), "no fixture at " + p);
    return p;
  }

  @Test
  void inspectShowsTokensWithLabels() throws Exception {
    Path data =
        Files.writeString(
            dir.resolve("d.jsonl"),
            "{\"conversations\": [{\"from\": \"human\", \"value\": \"What is 2+2?\"},"
                + " {\"from\": \"gpt\", \"value\": \"4\"}]}\n");
    CliRunner r =
        CliRunner.run(
            "data",
            "inspect",
            "--data",
            data.toString(),
            "--template",
            "mistral",
            "--tokenizer",
            fixture().toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(
        r.out().contains("record 1 (d.jsonl:1), template mistral, 18 tokens, 2 trained"), r.out());
    // "[INST] What is 2+2? [/INST] 4</s>": only "4" and "</s>" carry labels.
    assertTrue(r.out().matches("(?s).*\\s28781\\s+28781 ASSISTANT\\s+\"4\" \\*\n.*"), r.out());
    assertTrue(r.out().matches("(?s).*\\s2\\s+2 END_OF_REPLY\\s+\"</s>\" \\*\n.*"), r.out());
    assertTrue(r.out().matches("(?s).*\\s1824\\s+-100 USER\\s+\"▁What\"\n.*"), r.out());
  }

  @Test
  void statsAndSample() throws Exception {
    Path data = dir.resolve("arith.jsonl");
    Path tok = dir.resolve("tok");
    CliRunner s =
        CliRunner.run(
            "data",
            "sample",
            "--output",
            data.toString(),
            "--count",
            "40",
            "--seed",
            "3",
            "--tokenizer-dir",
            tok.toString());
    assertEquals(0, s.code(), s.err());
    assertEquals(40, Files.readAllLines(data).size());
    CliRunner r =
        CliRunner.run(
            "data",
            "stats",
            "--data",
            data.toString(),
            "--template",
            "vicuna_v1.1",
            "--tokenizer",
            tok.toString(),
            "--max-length",
            "64");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("records            40"), r.out());
    assertTrue(r.out().contains("truncated"), r.out());
  }

  @Test
  void badRecordNumberIsOneLine() throws Exception {
    Path data =
        Files.writeString(
            dir.resolve("d.jsonl"), "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}\n");
    CliRunner r =
        CliRunner.run(
            "data",
            "inspect",
            "--data",
            data.toString(),
            "--template",
            "mistral",
            "--tokenizer",
            fixture().toString(),
            "--record",
            "5");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("--record 5 is out of range; the file has 1 records"), r.err());
  }
}
