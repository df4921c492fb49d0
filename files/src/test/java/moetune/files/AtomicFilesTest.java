package moetune.files;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Writes either happen whole or not at all, and leave no temporary behind. */
class AtomicFilesTest {

  private static List<String> names(Path dir) throws IOException {
    try (var s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void aFailingWriteLeavesTheOldFileAndNoTemporary(@TempDir Path tmp) throws IOException {
    Path f = tmp.resolve("run-config.yaml");
    AtomicFiles.writeString(f, "old\n");
    IOException e =
        assertThrows(
            IOException.class,
            () ->
                AtomicFiles.write(
                    f,
                    t -> {
                      Files.writeString(t, "half of the n");
                      throw new IOException("No space left on device (injected)");
                    }));
    assertEquals("No space left on device (injected)", e.getMessage());
    assertEquals("old\n", Files.readString(f));
    assertEquals(List.of("run-config.yaml"), names(tmp));
    AtomicFiles.writeString(f, "new\n");
    assertEquals("new\n", Files.readString(f));
    assertEquals(List.of("run-config.yaml"), names(tmp));
  }

  @Test
  void replacingADirectoryKeepsFilesTheWriterDoesNotOwn(@TempDir Path tmp) throws IOException {
    Path d = tmp.resolve("model");
    AtomicFiles.replaceDirectory(
        d,
        t -> {
          Files.writeString(t.resolve("a.bin"), "1");
          Files.writeString(t.resolve("stale.bin"), "1");
        },
        n -> n.endsWith(".bin"));
    Files.writeString(d.resolve("README.md"), "notes");
    AtomicFiles.replaceDirectory(
        d, t -> Files.writeString(t.resolve("a.bin"), "2"), n -> n.endsWith(".bin"));
    assertEquals(List.of("README.md", "a.bin"), names(d));
    assertEquals("2", Files.readString(d.resolve("a.bin")));
    assertEquals(List.of("model"), names(tmp));
  }

  @Test
  void aFailureWhileBuildingChangesNothing(@TempDir Path tmp) throws IOException {
    Path d = tmp.resolve("model");
    AtomicFiles.replaceDirectory(d, t -> Files.writeString(t.resolve("a.bin"), "1"), n -> true);
    assertThrows(
        IllegalStateException.class,
        () ->
            AtomicFiles.replaceDirectory(
                d,
                t -> {
                  Files.writeString(t.resolve("a.bin"), "2");
                  throw new IllegalStateException("boom");
                },
                n -> true));
    assertEquals("1", Files.readString(d.resolve("a.bin")));
    assertEquals(List.of("model"), names(tmp));
    assertTrue(Files.isDirectory(d));
  }
}
