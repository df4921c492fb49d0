package moetune.app.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code moetune template list|render} end to end on temp files. */
class TemplateCommandTest {
  @TempDir Path dir;

  static final String INPUT =
      String.join(
          "\n",
          "{\"system\": null, \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"},"
              + " {\"role\": \"assistant\", \"content\": \"Hello!\"}, {\"role\": \"user\","
              + " \"content\": \"How are you?\"}, {\"role\": \"assistant\", \"content\": null}]}",
          "{\"system\": \"Be brief.\", \"messages\": [{\"role\": \"user\", \"content\":"
              + " \" sp\\u00e4ce \\ud83d\\ude00\\r\\n<|im_end|> \"}, {\"role\": \"assistant\","
              + " \"content\": \"\"}]}",
          "{\"conversations\": [{\"from\": \"human\", \"value\": \"Q\"}, {\"from\": \"gpt\","
              + " \"value\": \"A\"}]}",
          "");

  @Test
  void renderWritesOnePromptPerLineInOrder() throws Exception {
    Path in = Files.writeString(dir.resolve("in.jsonl"), INPUT);
    Path out = dir.resolve("out.jsonl");
    CliRunner r =
        CliRunner.run(
            "template",
            "render",
            "--template",
            "chatml",
            "--input",
            in.toString(),
            "--output",
            out.toString());
    assertEquals(0, r.code(), r.err());
    List<String> lines = Files.readAllLines(out);
    assertEquals(3, lines.size());
    var m = new com.fasterxml.jackson.databind.ObjectMapper();
    String sys = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n";
    assertEquals(
        sys
            + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
            + "<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n",
        m.readTree(lines.get(0)).get("prompt").asText());
    // An empty reply renders as an open turn, like FastChat's `if message:`.
    assertEquals(
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n sp\u00e4ce "
            + "\ud83d\ude00\r\n<|im_end|> <|im_end|>\n<|im_start|>assistant\n",
        m.readTree(lines.get(1)).get("prompt").asText());
    assertEquals(
        sys + "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n",
        m.readTree(lines.get(2)).get("prompt").asText());
  }

  @Test
  void renderVicunaMatchesFastChat() throws Exception {
    Path in = Files.writeString(dir.resolve("in.jsonl"), INPUT);
    Path out = dir.resolve("v.jsonl");
    assertEquals(
        0,
        CliRunner.run(
                "template",
                "render",
                "--template",
                "vicuna_v1.1",
                "--input",
                in.toString(),
                "--output",
                out.toString())
            .code());
    var m = new com.fasterxml.jackson.databind.ObjectMapper();
    List<String> lines = Files.readAllLines(out);
    assertEquals(
        "Be brief. USER:  sp\u00e4ce \ud83d\ude00\r\n<|im_end|>  ASSISTANT:",
        m.readTree(lines.get(1)).get("prompt").asText());
  }

  @Test
  void badInputLeavesTheOutputUntouched() throws Exception {
    Path in =
        Files.writeString(
            dir.resolve("bad.jsonl"),
            "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}\n{\"messages\": [{\"role\":"
                + " \"robot\", \"content\": \"a\"}]}\n");
    Path out = Files.writeString(dir.resolve("keep.jsonl"), "precious\n");
    CliRunner r =
        CliRunner.run(
            "template",
            "render",
            "--template",
            "mistral",
            "--input",
            in.toString(),
            "--output",
            out.toString());
    assertEquals(2, r.code());
    assertTrue(r.err().contains("bad.jsonl:2") && r.err().contains("'messages[0].role'"), r.err());
    assertEquals(1, r.err().strip().lines().count(), r.err());
    assertEquals("precious\n", Files.readString(out));
    try (var files = Files.list(dir)) {
      assertEquals(2, files.count(), "no temp file left behind");
    }
  }

  @Test
  void unknownTemplateIsOneLine() throws Exception {
    Path in = Files.writeString(dir.resolve("in.jsonl"), INPUT);
    CliRunner r =
        CliRunner.run(
            "template",
            "render",
            "--template",
            "vicuna",
            "--input",
            in.toString(),
            "--output",
            dir.resolve("o").toString());
    assertEquals(2, r.code());
    assertTrue(
        r.err()
            .startsWith(
                "moetune template render: unknown template 'vicuna'; known templates: "
                    + "hf, vicuna_v1.1, llama-2"),
        r.err());
  }

  @Test
  void listShowsEveryBuiltin() {
    CliRunner r = CliRunner.run("template", "list");
    assertEquals(0, r.code());
    for (String n :
        List.of(
            "vicuna_v1.1",
            "llama-2",
            "mistral",
            "zephyr",
            "alpaca",
            "one_shot",
            "zero_shot",
            "airoboros_v3",
            "openchat_3.5",
            "tulu",
            "mpt-7b-chat",
            "dolly_v2",
            "Nous-Hermes-2-Mixtral-8x7B-DPO",
            "chatml")) {
      assertTrue(r.out().lines().anyMatch(l -> l.startsWith(n + " ")), n);
    }
  }
}
