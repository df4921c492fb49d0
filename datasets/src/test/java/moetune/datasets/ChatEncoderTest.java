package moetune.datasets;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import moetune.templates.Message;
import moetune.templates.TemplateRegistry;
import org.junit.jupiter.api.Test;

/**
 * Tokens and label masks, token by token, on the fixture's Mistral (SentencePiece BPE) tokenizer.
 */
class ChatEncoderTest {
  static final TemplateRegistry REG = TemplateRegistry.builtin();
  static final List<Message> CHAT =
      List.of(
          Message.user("What is 2+2?"),
          Message.assistant("4"),
          Message.user("And 3+3?"),
          Message.assistant("6"));

  /** Tokens joined by spaces, trained ones marked with '*'. */
  static String masked(String template, String system, LabelMode mode) {
    ChatTokenizer tok = Fixtures.mistral();
    ChatEncoder enc = new ChatEncoder(tok, REG.get(template), mode, 4096);
    ChatRecord r = new ChatRecord(system, CHAT, "t:1");
    EncodedChat e = enc.encode(r);
    TokenizedText tt = tok.encode(enc.render(r).text());
    assertArrayEquals(tt.ids(), e.inputIds(), "ids are the whole-prompt ids");
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < e.length(); i++) {
      assertTrue(e.labels()[i] == ChatEncoder.IGNORE || e.labels()[i] == e.inputIds()[i]);
      b.append(i == 0 ? "" : " ")
          .append(tt.tokens()[i])
          .append(e.labels()[i] == ChatEncoder.IGNORE ? "" : "*");
    }
    return b.toString();
  }

  @Test
  void mistralTrainsRepliesAndTheirEos() {
    // "[INST] What is 2+2? [/INST] 4</s>[INST] And 3+3? [/INST] 6</s>"
    assertEquals(
        "<s> ▁[ INST ] ▁What ▁is ▁ 2 + 2 ? ▁[ / INST ] ▁ 4* </s>* ▁[ INST ] ▁And ▁ 3 + 3"
            + " ? ▁[ / INST ] ▁ 6* </s>*",
        masked("mistral", null, LabelMode.ALL_ASSISTANT));
  }

  @Test
  void mistralLastTurnAndEverything() {
    assertEquals(
        "<s> ▁[ INST ] ▁What ▁is ▁ 2 + 2 ? ▁[ / INST ] ▁ 4 </s> ▁[ INST ] ▁And ▁ 3 + 3"
            + " ? ▁[ / INST ] ▁ 6* </s>*",
        masked("mistral", null, LabelMode.LAST_TURN));
    // Everything but the first token, which no position predicts.
    assertEquals(
        "<s> ▁[* INST* ]* ▁What* ▁is* ▁* 2* +* 2* ?* ▁[* /* INST* ]* ▁* 4* </s>* ▁[*"
            + " INST* ]* ▁And* ▁* 3* +* 3* ?* ▁[* /* INST* ]* ▁* 6* </s>*",
        masked("mistral", null, LabelMode.EVERYTHING));
  }

  @Test
  void vicunaMasksUserTextAndRoleHeaders() {
    assertEquals(
        "<s> ▁S ▁US ER : ▁What ▁is ▁ 2 + 2 ? ▁ASS IST ANT : ▁ 4* </s>* ▁US ER : ▁And"
            + " ▁ 3 + 3 ? ▁ASS IST ANT : ▁ 6* </s>*",
        masked("vicuna_v1.1", "S", LabelMode.ALL_ASSISTANT));
  }

  @Test
  void chatmlTrainsImEndButNotTheNewlineAfterIt() {
    // <|im_end|> is plain text to this tokenizer: all its pieces are trained, the "\n" is not.
    String m = masked("chatml", "Hi", LabelMode.ALL_ASSISTANT);
    assertTrue(m.contains("<0x0A> 4* <* |* im* _* end* |* >* <0x0A> < | im _ start | > user"), m);
    assertTrue(m.endsWith("<0x0A> 6* <* |* im* _* end* |* >* <0x0A>"), m);
  }

  @Test
  void aTokenStraddlingLayoutAndReplyIsTrained() {
    // "ASSISTANT: Hello" tokenizes "▁Hello" across the layout space and the reply: it is trained.
    ChatTokenizer tok = Fixtures.mistral();
    ChatEncoder enc = new ChatEncoder(tok, REG.get("vicuna_v1.1"), LabelMode.ALL_ASSISTANT, 512);
    ChatRecord r =
        new ChatRecord("S", List.of(Message.user("Hi"), Message.assistant("Hello")), "t:1");
    EncodedChat e = enc.encode(r);
    TokenizedText tt = tok.encode(enc.render(r).text());
    int hello = List.of(tt.tokens()).indexOf("▁Hello");
    assertTrue(hello > 0, String.join(" ", tt.tokens()));
    assertEquals(e.inputIds()[hello], e.labels()[hello]);
    assertEquals(ChatEncoder.IGNORE, e.labels()[hello - 1], "':' of the header is not trained");
  }

  @Test
  void longConversationsAreNeverCutAt512() {
    ChatTokenizer tok = Fixtures.mistral();
    String longReply = "word ".repeat(3000).trim();
    ChatRecord r =
        new ChatRecord(
            null, List.of(Message.user("Write a lot."), Message.assistant(longReply)), "t:1");
    EncodedChat full =
        new ChatEncoder(tok, REG.get("mistral"), LabelMode.ALL_ASSISTANT, 8192).encode(r);
    assertFalse(full.truncated());
    assertTrue(full.length() > 3000, "got " + full.length());
    // 3000 reply words + </s> are trained.
    assertEquals(3001, full.trainableTokens());
    EncodedChat cut =
        new ChatEncoder(tok, REG.get("mistral"), LabelMode.ALL_ASSISTANT, 700).encode(r);
    assertTrue(cut.truncated());
    assertEquals(700, cut.length());
    assertEquals(full.length(), cut.fullLength());
    assertArrayEquals(java.util.Arrays.copyOf(full.inputIds(), 700), cut.inputIds());
    DatasetStats s = DatasetStats.of(List.of(full, cut), 0, 700);
    assertEquals(1, s.truncated());
    assertEquals(full.length() - 700, s.truncatedTokens());
    assertEquals(0, s.truncatedWithoutTrainable());
    assertEquals(
        "1 conversation truncated at 700 tokens (" + (full.length() - 700) + " tokens cut)",
        s.lossNote());
  }

  @Test
  void truncationThatRemovesEveryReplyIsNamedInTheError(
      @org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws java.io.IOException {
    // a long question: at 16 tokens the cut leaves no reply token to train
    java.nio.file.Path f = tmp.resolve("long.jsonl");
    String q = "why ".repeat(40);
    java.nio.file.Files.writeString(
        f,
        ("{\"messages\": [{\"role\": \"user\", \"content\": \""
                + q
                + "\"}, {\"role\":"
                + " \"assistant\", \"content\": \"because\"}]}\n")
            .repeat(3));
    DataConfig c =
        new DataConfig(
            f, DatasetFormat.AUTO, false, "mistral", null, LabelMode.ALL_ASSISTANT, 16, true, 0, 1);
    DatasetException e =
        org.junit.jupiter.api.Assertions.assertThrows(
            DatasetException.class, () -> DataPipeline.prepare(c, Fixtures.mistral()));
    assertEquals(
        f
            + ": no conversation has a trainable token with template 'mistral' and labels"
            + " ALL_ASSISTANT; 3 of 3 lost their replies to truncation at max-length 16 tokens:"
            + " raise --max-length",
        e.getMessage());
  }

  @Test
  void hugeMessagesAreTruncatedFastAndExactly() {
    ChatTokenizer tok = Fixtures.mistral();
    // 200k chars: over 4 x (512 + 64) x maxTokenChars, so the prefix path runs.
    String reply = "The quick brown fox \u00e9\ud83d\ude00 jumps. ".repeat(5000);
    assertTrue(reply.length() > 4L * (512 + ChatEncoder.MARGIN) * tok.maxTokenChars());
    ChatRecord r =
        new ChatRecord(null, List.of(Message.user("Go."), Message.assistant(reply)), "t:1");
    ChatEncoder enc = new ChatEncoder(tok, REG.get("mistral"), LabelMode.ALL_ASSISTANT, 512);
    EncodedChat e = enc.encode(r);
    TokenizedText whole = tok.encode(enc.render(r).text());
    assertEquals(512, e.length());
    assertTrue(e.truncated());
    assertArrayEquals(java.util.Arrays.copyOf(whole.ids(), 512), e.inputIds());
    // A 10 MB message: only a verified prefix is tokenized.
    long t0 = System.nanoTime();
    EncodedChat big =
        enc.encode(
            new ChatRecord(
                null, List.of(Message.user("x".repeat(10 << 20)), Message.assistant("ok")), "t:2"));
    assertEquals(512, big.length());
    assertTrue(big.truncated());
    assertEquals(0, big.trainableTokens(), "the reply lies beyond the cut");
    assertTrue(System.nanoTime() - t0 < 20_000_000_000L, "took " + (System.nanoTime() - t0));
  }

  @Test
  void unicodeOffsetsMapToUtf16() {
    ChatTokenizer tok = Fixtures.mistral();
    String text = "a\ud83d\ude00b é";
    TokenizedText tt = tok.encode(text);
    // Every token's range must be a valid UTF-16 range of the text; 'b' starts after the surrogate
    // pair.
    int b = List.of(tt.tokens()).indexOf("b");
    assertEquals(3, tt.starts()[b]);
    assertEquals(4, tt.ends()[b]);
    assertEquals(-1, tt.starts()[0], "BOS added by the post-processor covers no text");
  }

  @Test
  void fixtureReferenceIds() {
    TokenizedText tt =
        Fixtures.mistral().encode("[INST] What is your favourite condiment? [/INST]");
    assertArrayEquals(
        new int[] {
          1, 733, 16289, 28793, 1824, 349, 574, 16020, 2076, 2487, 28804, 733, 28748, 16289, 28793
        },
        tt.ids());
    assertEquals(32000, Fixtures.mistral().vocabSize());
    assertEquals(1, Fixtures.mistral().bosId());
    assertEquals(2, Fixtures.mistral().eosId());
    assertEquals(2, Fixtures.mistral().padId());
  }
}
