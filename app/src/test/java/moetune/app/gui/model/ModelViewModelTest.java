package moetune.app.gui.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import moetune.app.gui.GuiLog;
import moetune.app.gui.SyncTaskExecutor;
import moetune.app.gui.Workspace;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Model screen's ViewModel on the real tiny-mixtral fixture, without the FX toolkit. */
class ModelViewModelTest {

  static final Path TINY = Path.of(System.getProperty("moetune.fixtures"), "tiny-mixtral");

  // Counted by hand from the fixture's config: embed and lm_head 32000*32 each, final norm 32,
  // per layer 2*32 norms + q 32*32 + k,v 2*32*16 + o 32*32 + router 4*32 + 4 experts*3*32*64.
  static final long TOTAL = 2 * 32000L * 32 + 32 + 2 * (64 + 1024 + 1024 + 1024 + 128 + 24576);
  static final long ACTIVE = TOTAL - 2L * (4 - 2) * 3 * 32 * 64;

  private final GuiLog log = new GuiLog();
  private final Workspace ws = new Workspace();
  private final ModelViewModel vm =
      new ModelViewModel(new EngineModelInspector(), new SyncTaskExecutor(), log, ws);

  @Test
  void readsTheCheckpointsTensorTable() {
    vm.path().set(TINY.toString());
    vm.load();
    ModelFacts f = vm.facts().get();
    assertEquals(TOTAL, f.totalParams());
    assertEquals(ACTIVE, f.activeParams());
    assertEquals(2, f.layers());
    assertEquals(4, f.experts());
    assertEquals(2, f.topK());
    assertEquals(32000, f.vocab());
    assertEquals(4096, f.contextLength());
    assertEquals("F32", f.dtype());
    assertEquals(TINY.toString(), ws.modelSpec().get());
    assertEquals(TINY.toString(), ws.tokenizerDir().get());
    assertFalse(vm.memoryEstimate().get().isEmpty());
  }

  @Test
  void newModelCountsMatchTheCheckpoint() {
    vm.source().set(ModelViewModel.Source.NEW_FROM_CONFIG);
    vm.path().set(TINY.resolve("config.json").toString());
    vm.load();
    assertEquals(TOTAL, vm.facts().get().totalParams());
    assertEquals("new:" + TINY.resolve("config.json"), ws.modelSpec().get());
    // the Data screen previews with the byte-level tokenizer train generates for new models
    assertTrue(Files.isRegularFile(Path.of(ws.tokenizerDir().get(), "tokenizer.json")));
  }

  @Test
  void pathIsValidatedAsTyped(@TempDir Path tmp) throws Exception {
    vm.path().set(tmp.resolve("missing").toString());
    assertTrue(vm.pathError().get().contains("not a directory"), vm.pathError().get());
    assertFalse(vm.canLoad().get());
    vm.path().set(tmp.toString());
    assertTrue(vm.pathError().get().contains("has no config.json"), vm.pathError().get());
    Files.writeString(tmp.resolve("config.json"), "{}");
    vm.path().set(tmp + "/");
    assertEquals("", vm.pathError().get());
    assertTrue(vm.canLoad().get());
  }

  @Test
  void aBrokenModelIsOneLineWithDetailInTheLog(@TempDir Path tmp) throws Exception {
    Files.writeString(tmp.resolve("config.json"), "{\"model_type\": \"llama\"}");
    vm.path().set(tmp.toString());
    vm.load();
    assertNull(vm.facts().get());
    String status = vm.status().get();
    assertTrue(status.startsWith("Could not read the model: "), status);
    assertFalse(status.contains("\n"));
    assertTrue(status.contains("config.json"), status);
    assertTrue(
        log.lines().stream()
            .anyMatch(
                l -> l.contains("\tat ") || l.contains("    at ") || l.contains("at moetune")),
        "stack trace in the log");
  }

  @Test
  void estimateFollowsBatchAndLength() {
    vm.path().set(TINY.toString());
    vm.load();
    vm.bf16().set(false);
    vm.batch().set("2");
    vm.seqLen().set("64");
    long bytes = MemoryEstimate.bytes(vm.facts().get(), 2, 64, false);
    assertTrue(
        vm.memoryEstimate().get().startsWith(MemoryEstimate.human(bytes)),
        vm.memoryEstimate().get());
    vm.batch().set("0");
    assertEquals("", vm.memoryEstimate().get());
    assertFalse(vm.estimateError().get().isEmpty());
  }

  @Test
  void noCudaDeviceIsSaid() {
    vm.refreshGpus();
    assertEquals(1, vm.gpus().size());
    assertTrue(vm.gpus().get(0).startsWith("no CUDA device"));
  }
}
