package moetune.engine.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A failure or a kill in the middle of writing a checkpoint leaves the previous one loadable. */
class CheckpointStoreTest {

  static CheckpointStore.Writer writes(String payload) {
    return dir -> {
      Files.writeString(dir.resolve("weights.bin"), payload);
      Files.writeString(dir.resolve(CheckpointStore.COMPLETE_MARKER), "{}");
    };
  }

  @Test
  void failingWriterLeavesPreviousCheckpointLatestAndNoTempBehind(@TempDir Path root)
      throws IOException {
    var store = new CheckpointStore(root);
    store.save(10, writes("ten"), 0);
    IOException e =
        assertThrows(
            IOException.class,
            () ->
                store.save(
                    20,
                    dir -> {
                      Files.writeString(dir.resolve("weights.bin"), "half of twen");
                      throw new IOException("disk full (injected)");
                    },
                    0));
    assertEquals("disk full (injected)", e.getMessage());
    Path latest = store.latest().orElseThrow();
    assertEquals("step-00000010", latest.getFileName().toString());
    assertEquals("ten", Files.readString(latest.resolve("weights.bin")));
    try (var s = Files.list(root)) {
      assertEquals(
          List.of("latest", "step-00000010"),
          s.map(p -> p.getFileName().toString()).sorted().toList());
    }
  }

  @Test
  void halfDeletedCheckpointsAreRemovedByTheNextSave(@TempDir Path root) throws IOException {
    var store = new CheckpointStore(root);
    store.save(10, writes("ten"), 2);
    store.save(20, writes("twenty"), 2);
    // What a kill in the middle of deleting step 10 in place leaves: no marker, some files.
    Files.delete(root.resolve("step-00000010").resolve(CheckpointStore.COMPLETE_MARKER));
    // ... and one of ours killed between the rename and the delete.
    Files.createDirectories(root.resolve(".deleting-step-00000005-1"));
    Files.writeString(root.resolve(".deleting-step-00000005-1/weights.bin"), "five");
    store.save(30, writes("thirty"), 2);
    try (var s = Files.list(root)) {
      assertEquals(
          List.of("latest", "step-00000020", "step-00000030"),
          s.map(p -> p.getFileName().toString()).sorted().toList());
    }
    store.save(40, writes("forty"), 2);
    try (var s = Files.list(root)) {
      assertEquals(
          List.of("latest", "step-00000030", "step-00000040"),
          s.map(p -> p.getFileName().toString()).sorted().toList(),
          "pruning leaves no hidden leftover");
    }
  }

  @Test
  void writerThatForgetsTheMarkerIsRejected(@TempDir Path root) throws IOException {
    var store = new CheckpointStore(root);
    assertThrows(
        IllegalStateException.class,
        () -> store.save(1, dir -> Files.writeString(dir.resolve("a"), "x"), 0));
    assertTrue(store.latest().isEmpty());
  }

  @Test
  void lostPointerFallsBackToNewestCompleteDirectory(@TempDir Path root) throws IOException {
    var store = new CheckpointStore(root);
    store.save(1, writes("one"), 0);
    store.save(2, writes("two"), 0);
    Files.createDirectory(root.resolve("step-00000003")); // incomplete: no marker
    Files.delete(root.resolve("latest"));
    assertEquals("step-00000002", store.latest().orElseThrow().getFileName().toString());
  }

  @Test
  void sameStepTwiceIsANoOp(@TempDir Path root) throws IOException {
    var store = new CheckpointStore(root);
    store.save(5, writes("five"), 0);
    store.save(
        5,
        dir -> {
          throw new AssertionError("must not rewrite the latest step");
        },
        0);
    assertEquals("five", Files.readString(store.latest().orElseThrow().resolve("weights.bin")));
  }

  /**
   * A real process killed with SIGKILL in the middle of writing a checkpoint. The child writes step
   * 1, then starts step 2, writes half a file, prints WRITING and blocks; we kill it there.
   */
  @Test
  void sigkillDuringWriteLeavesPreviousCheckpoint(@TempDir Path root) throws Exception {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    Process p =
        new ProcessBuilder(
                java,
                "-cp",
                System.getProperty("java.class.path"),
                KillChild.class.getName(),
                root.toString())
            .redirectErrorStream(true)
            .start();
    try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream()))) {
      String line;
      while ((line = r.readLine()) != null && !line.equals("WRITING")) {
        // wait for the child to be in the middle of the second checkpoint
      }
      assertEquals("WRITING", line, "child exited before writing");
      p.destroyForcibly(); // SIGKILL
      assertTrue(p.waitFor(30, TimeUnit.SECONDS));
    }
    assertEquals(137, p.exitValue(), "killed by SIGKILL");
    var store = new CheckpointStore(root);
    Path latest = store.latest().orElseThrow();
    assertEquals("step-00000001", latest.getFileName().toString());
    assertEquals("one", Files.readString(latest.resolve("weights.bin")));
    try (var s = Files.list(root)) {
      assertTrue(
          s.anyMatch(q -> q.getFileName().toString().startsWith(".tmp-step-00000002")),
          "the half-written temp directory is what the kill left");
    }
    store.save(3, writes("three"), 0);
    try (var s = Files.list(root)) {
      assertFalse(
          s.anyMatch(q -> q.getFileName().toString().startsWith(".tmp-")), "next save cleans up");
    }
  }

  /** The child process of the SIGKILL test. */
  public static final class KillChild {
    public static void main(String[] args) throws Exception {
      var store = new CheckpointStore(Path.of(args[0]));
      store.save(1, writes("one"), 0);
      store.save(
          2,
          dir -> {
            Files.writeString(dir.resolve("weights.bin"), "tw");
            System.out.println("WRITING");
            System.out.flush();
            try {
              Thread.sleep(60_000);
            } catch (InterruptedException e) {
              throw new IOException(e);
            }
          },
          0);
    }
  }
}
