package moetune.app.gui.export;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import moetune.app.gui.GuiLog;
import moetune.app.gui.SyncTaskExecutor;
import moetune.app.gui.Workspace;
import moetune.engine.io.SafetensorsIndex;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Export screen's ViewModel with the real exporter and generator on tiny-mixtral. */
class ExportViewModelTest {

  static final Path TINY = Path.of(System.getProperty("moetune.fixtures"), "tiny-mixtral");

  private final GuiLog log = new GuiLog();
  private final Workspace ws = new Workspace();
  private final ExportViewModel vm =
      new ExportViewModel(new EngineExportService(), new SyncTaskExecutor(), log, ws);

  @Test
  void fieldsAreValidatedAsTyped(@TempDir Path tmp) throws Exception {
    assertFalse(vm.canExport().get());
    vm.checkpoint().set(tmp.resolve("none").toString());
    assertTrue(vm.checkpointError().get().endsWith("not a directory."));
    vm.checkpoint().set(TINY.toString());
    assertEquals("", vm.checkpointError().get());
    Path file = Files.writeString(tmp.resolve("f"), "x");
    vm.target().set(file.toString());
    assertTrue(vm.targetError().get().contains("is a file"));
    vm.target().set(tmp.resolve("out").toString());
    vm.shardSize().set("five");
    assertTrue(vm.shardError().get().startsWith("shard size: "), vm.shardError().get());
    vm.shardSize().set("1MB");
    assertTrue(vm.canExport().get());
  }

  @Test
  void exportsShardedAndGeneratesWithTheExport(@TempDir Path tmp) throws Exception {
    ws.runDir().set(tmp.toString());
    assertEquals(tmp.resolve("export").toString(), vm.target().get());
    vm.checkpoint().set(TINY.toString());
    vm.dtype().set("bf16");
    vm.shardSize().set("1MB");
    vm.export();
    assertEquals(
        tmp.resolve("export").toAbsolutePath().toString(), vm.result().get(), vm.status().get());
    assertEquals(1.0, vm.progress().get());
    // in bf16 embed_tokens and lm_head are 2.048 MB each, over the 1 MB limit, so each gets a
    // shard of its own and the other 56 KB of tensors share a third
    SafetensorsIndex index =
        SafetensorsIndex.load(tmp.resolve("export").resolve(SafetensorsIndex.FILE_NAME));
    assertEquals(3, index.weightMap().values().stream().distinct().count());
    assertEquals(vm.result().get(), ws.exportedDir().get());

    vm.useExported().set(true);
    vm.prompt().set("What is 2 + 3?");
    vm.maxNewTokens().set("5");
    vm.generate();
    assertFalse(vm.generating().get());
    assertTrue(vm.generateStatus().get().startsWith("Generated "), vm.generateStatus().get());
  }
}
