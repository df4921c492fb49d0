package moetune.app.gui.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import moetune.app.gui.GuiLog;
import moetune.app.gui.SyncTaskExecutor;
import moetune.app.gui.Workspace;
import moetune.datasets.DatasetStats;
import moetune.datasets.TokenView;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Data screen's ViewModel with the real loader, template and Mistral tokenizer. */
class DataViewModelTest {

  static final Path TINY = Path.of(System.getProperty("moetune.fixtures"), "tiny-mixtral");

  private final GuiLog log = new GuiLog();
  private final Workspace ws = new Workspace();
  private final DataViewModel vm =
      new DataViewModel(new EngineDatasetService(), new SyncTaskExecutor(), log, ws);

  private Path write(Path dir, String... lines) throws Exception {
    Path f = dir.resolve("chats.jsonl");
    Files.writeString(f, String.join("\n", lines) + "\n", StandardCharsets.UTF_8);
    return f;
  }

  private static String chat(String q, String a) {
    return "{\"conversations\": [{\"from\": \"human\", \"value\": \""
        + q
        + "\"},"
        + " {\"from\": \"gpt\", \"value\": \""
        + a
        + "\"}]}";
  }

  @Test
  void onlyTheAssistantReplyIsTrainable(@TempDir Path tmp) throws Exception {
    Path f = write(tmp, chat("What is 2 + 3?", "2 + 3 = 5."), chat("Hi", "Hello there."));
    ws.tokenizerDir().set(TINY.toString());
    vm.files().set(f.toString());
    vm.format().set("sharegpt");
    vm.template().set("mistral");
    vm.labels().set("assistant");
    vm.load();
    assertEquals(2, vm.records().size(), vm.status().get());
    assertEquals(vm.records().get(0), vm.selected().get());
    String markup = DataViewModel.markup(vm.tokens());
    // mistral: "[INST] q [/INST]" then the reply and </s>; only the reply and EOS are trained
    // (the space before the reply is the template's separator, tokenized as a lone "▁")
    assertEquals("<s> [INST] What is 2 + 3? [/INST] [[2 + 3 = 5.</s>]]", markup);
    long trainable = vm.tokens().stream().filter(TokenView::trained).count();
    assertEquals(vm.records().get(0).trainableTokens(), trainable);
    DatasetStats s = vm.stats().get();
    assertEquals(2, s.records());
    assertEquals(vm.records().get(0).length() + vm.records().get(1).length(), s.tokens());
    assertEquals(2, s.histogram().stream().mapToInt(DatasetStats.Bucket::count).sum());
    assertEquals(f.toString(), ws.datasets().get());
    assertEquals("mistral", ws.template().get());
  }

  @Test
  void badRecordsAreListedWithFileAndLine(@TempDir Path tmp) throws Exception {
    Path f = write(tmp, chat("a", "b"), "{\"conversations\": 3}", chat("c", "d"));
    ws.tokenizerDir().set(TINY.toString());
    vm.files().set(f.toString());
    vm.format().set("sharegpt");
    vm.skipBad().set(true);
    vm.load();
    assertEquals(2, vm.records().size());
    assertEquals(1, vm.errors().size());
    assertTrue(vm.errors().get(0).startsWith(f + ":2"), vm.errors().get(0));
    assertEquals(1, vm.stats().get().skipped());
  }

  @Test
  void withoutSkippingABadRecordFailsInOneLine(@TempDir Path tmp) throws Exception {
    Path f = write(tmp, chat("a", "b"), "not json");
    ws.tokenizerDir().set(TINY.toString());
    vm.files().set(f.toString());
    vm.skipBad().set(false);
    vm.load();
    assertTrue(vm.records().isEmpty());
    assertTrue(vm.status().get().startsWith("Could not load the data: "), vm.status().get());
    assertTrue(vm.status().get().contains(f.getFileName().toString()), vm.status().get());
    assertFalse(vm.status().get().contains("\n"));
  }

  @Test
  void truncationIsCounted(@TempDir Path tmp) throws Exception {
    Path f = write(tmp, chat("a long question with many words in it", "a long answer too"));
    ws.tokenizerDir().set(TINY.toString());
    vm.files().set(f.toString());
    vm.maxLength().set("8");
    vm.load();
    assertEquals(8, vm.records().get(0).length());
    assertTrue(vm.records().get(0).truncated());
    assertEquals(1, vm.stats().get().truncated());
  }

  @Test
  void inputsAreValidatedAsTyped(@TempDir Path tmp) throws Exception {
    assertFalse(vm.filesError().get().isEmpty());
    vm.files().set(tmp.resolve("nope.jsonl").toString());
    assertTrue(vm.filesError().get().endsWith("no such file."), vm.filesError().get());
    Path f = write(tmp, chat("a", "b"));
    vm.files().set(f.toString());
    assertEquals("", vm.filesError().get());
    vm.maxLength().set("abc");
    assertFalse(vm.maxLengthError().get().isEmpty());
    assertFalse(vm.canLoad().get());
    vm.maxLength().set("64");
    assertTrue(vm.canLoad().get());
    vm.load();
    assertTrue(vm.status().get().contains("Model screen"), "needs a tokenizer first");
  }
}
