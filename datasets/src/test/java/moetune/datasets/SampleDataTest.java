package moetune.datasets;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import moetune.sequences.PackedSequence;
import moetune.templates.Message;
import moetune.templates.TemplateRegistry;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The bundled arithmetic chats and the byte-level tokenizer for new models. */
class SampleDataTest {
  @TempDir Path dir;

  static final Pattern ANSWER = Pattern.compile("(-?\\d+) ([-+*]) (\\d+) = (-?\\d+)\\.");

  @Test
  void arithmeticIsDeterministicAndCorrect() {
    List<ChatRecord> a = SampleData.arithmetic(5, 200);
    assertEquals(a, SampleData.arithmetic(5, 200));
    assertNotEquals(a, SampleData.arithmetic(6, 200));
    int followUps = 0;
    for (ChatRecord r : a) {
      assertTrue(r.messages().size() == 2 || r.messages().size() == 4);
      followUps += r.messages().size() == 4 ? 1 : 0;
      for (int i = 1; i < r.messages().size(); i += 2) {
        Matcher m = ANSWER.matcher(r.messages().get(i).content());
        assertTrue(m.matches(), r.messages().get(i).content());
        long x = Long.parseLong(m.group(1));
        long y = Long.parseLong(m.group(3));
        long want =
            switch (m.group(2)) {
              case "+" -> x + y;
              case "-" -> x - y;
              default -> x * y;
            };
        assertEquals(want, Long.parseLong(m.group(4)));
      }
    }
    assertTrue(followUps > 20 && followUps < 80, "about a quarter: " + followUps);
  }

  @Test
  void writtenShareGptReadsBack() throws Exception {
    List<ChatRecord> a = SampleData.arithmetic(1, 30);
    Path f = dir.resolve("arith.jsonl");
    SampleData.writeShareGpt(f, a);
    LoadedDataset d = DatasetLoader.load(f, DatasetFormat.SHAREGPT, false);
    assertEquals(30, d.records().size());
    for (int i = 0; i < 30; i++) {
      assertEquals(a.get(i).messages(), d.records().get(i).messages());
    }
  }

  @Test
  void byteTokenizerLoadsInDjlAndEncodesEveryByte() throws Exception {
    ByteTokenizerFiles.write(dir);
    try (ChatTokenizer tok = ChatTokenizer.load(dir)) {
      assertEquals(265, ByteTokenizerFiles.VOCAB_SIZE);
      assertEquals(ByteTokenizerFiles.VOCAB_SIZE, tok.vocabSize());
      assertEquals(1, tok.bosId());
      assertEquals(2, tok.eosId());
      String text = "h\u00e9 \n<|im_end|></s>";
      TokenizedText tt = tok.encode(text);
      int b = ByteTokenizerFiles.BYTE_BASE;
      assertArrayEquals(
          new int[] {1, b + 'h', b + 0xC3, b + 0xA9, b + ' ', b + '\n', 260, 2}, tt.ids());
      assertEquals(text, tok.decode(java.util.Arrays.copyOfRange(tt.ids(), 1, tt.length())));
      // Both bytes of 'é' cover char 1.
      assertEquals(1, tt.starts()[2]);
      assertEquals(1, tt.starts()[3]);
      // Long texts are not truncated.
      assertEquals(5001, tok.encode("a".repeat(5000)).length());
    }
  }

  @Test
  void pipelineOnSampleDataWithByteTokenizer() throws Exception {
    ByteTokenizerFiles.write(dir);
    Path data = dir.resolve("arith.jsonl");
    SampleData.writeShareGpt(data, SampleData.arithmetic(3, 50));
    try (ChatTokenizer tok = ChatTokenizer.load(dir)) {
      DataConfig c =
          new DataConfig(
              data,
              DatasetFormat.AUTO,
              false,
              "chatml",
              null,
              LabelMode.ALL_ASSISTANT,
              256,
              true,
              0.1,
              9);
      PreparedData p = DataPipeline.prepare(c, tok);
      assertEquals(50, p.stats().records());
      assertEquals(0, p.stats().truncated());
      long trainable =
          p.train().stream().mapToLong(PackedSequence::labelledTokens).sum()
              + p.eval().stream().mapToLong(PackedSequence::labelledTokens).sum();
      assertEquals(p.stats().trainableTokens(), trainable);
      for (PackedSequence s : p.train()) {
        assertEquals(256, s.length());
      }
      // Same seed, same rows.
      PreparedData q = DataPipeline.prepare(c, tok);
      assertArrayEquals(p.train().get(0).inputIds(), q.train().get(0).inputIds());
      // Each reply ends with the single <|im_end|> token, trained.
      ChatEncoder enc =
          new ChatEncoder(
              tok, TemplateRegistry.builtin().get("chatml"), LabelMode.ALL_ASSISTANT, 256);
      EncodedChat e =
          enc.encode(
              new ChatRecord(null, List.of(Message.user("1+1?"), Message.assistant("2")), "x:1"));
      int n = e.length();
      assertEquals(260, e.inputIds()[n - 2]);
      assertEquals(260, e.labels()[n - 2]);
      assertEquals(ByteTokenizerFiles.BYTE_BASE + '2', e.labels()[n - 3]);
      assertEquals(ChatEncoder.IGNORE, e.labels()[n - 1], "the newline after <|im_end|>");
      assertEquals(2, e.trainableTokens());
    }
    assertTrue(Files.exists(dir.resolve("tokenizer_config.json")));
  }
}
