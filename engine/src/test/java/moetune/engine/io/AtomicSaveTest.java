package moetune.engine.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import moetune.engine.hf.CheckpointException;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A save that fails at any point leaves the previous directory intact and loadable. */
class AtomicSaveTest {
  @TempDir Path tmp;

  private final MixtralConfig config = TinyModels.config();
  private final Map<String, HostTensor> oldWeights = TinyModels.weights(config, 1);
  private final Map<String, HostTensor> newWeights = TinyModels.weights(config, 2);

  @AfterEach
  void resetHook() {
    moetune.files.AtomicFiles.betweenRenamesForTests = () -> {};
  }

  private void assertHolds(Path dir, Map<String, HostTensor> w) {
    try (MixtralCheckpoint ck = MixtralCheckpoint.load(dir)) {
      for (String n : ck.names()) {
        assertArrayEquals(w.get(n).toFloatArray(), ck.floats(n), n);
      }
    }
  }

  /** Only the model directory itself remains in its parent: no temporary or old siblings. */
  private void assertNoLeftovers(Path dir) throws Exception {
    try (Stream<Path> s = Files.list(dir.getParent())) {
      assertEquals(
          List.of(dir.getFileName().toString()), s.map(p -> p.getFileName().toString()).toList());
    }
  }

  @Test
  void failureWhileWritingWeightsKeepsTheOldDirectory() throws Exception {
    Path dir = tmp.resolve("model");
    TinyModels.save(dir, config, oldWeights, 3000); // sharded
    AtomicInteger calls = new AtomicInteger();
    CheckpointException e =
        assertThrows(
            CheckpointException.class,
            () ->
                MixtralCheckpoint.save(
                    dir,
                    config,
                    null,
                    n -> {
                      if (calls.incrementAndGet() == 20) {
                        throw new IllegalStateException("disk on fire");
                      }
                      return newWeights.get(n);
                    },
                    DType.F32,
                    3000,
                    List.of()));
    assertTrue(
        e.getMessage().contains("nothing was changed") && e.getMessage().contains("disk on fire"),
        e.getMessage());
    assertEquals(20, calls.get());
    assertHolds(dir, oldWeights);
    assertNoLeftovers(dir);
  }

  @Test
  void failureBetweenTheRenamesRestoresTheOldDirectory() throws Exception {
    Path dir = tmp.resolve("model");
    TinyModels.save(dir, config, oldWeights, 1 << 20); // single file
    moetune.files.AtomicFiles.betweenRenamesForTests =
        () -> {
          assertFalse(Files.exists(dir)); // the old directory has been moved aside
          throw new IllegalStateException("power cut");
        };
    CheckpointException e =
        assertThrows(
            CheckpointException.class, () -> TinyModels.save(dir, config, newWeights, 3000));
    assertTrue(e.getMessage().contains("power cut"), e.getMessage());
    assertHolds(dir, oldWeights);
    assertNoLeftovers(dir);
  }

  @Test
  void successfulSaveReplacesTheOldDirectoryCompletely() throws Exception {
    Path dir = tmp.resolve("model");
    TinyModels.save(dir, config, oldWeights, 3000); // sharded: shards + index
    TinyModels.save(dir, config, newWeights, 1 << 20); // single file
    assertHolds(dir, newWeights);
    assertFalse(Files.exists(dir.resolve(SafetensorsIndex.FILE_NAME))); // no stale index mixed in
    assertNoLeftovers(dir);
  }

  @Test
  void unwritableLocationChangesNothing() throws Exception {
    Path file = Files.writeString(tmp.resolve("a-file"), "x");
    CheckpointException e =
        assertThrows(
            CheckpointException.class,
            () -> TinyModels.save(file.resolve("model"), config, newWeights, 3000));
    assertTrue(e.getMessage().contains("a-file"), e.getMessage());
    assertEquals("x", Files.readString(file));
  }

  @Test
  void refusesToReplaceSomethingThatIsNotAModel() throws Exception {
    Path notes = Files.createDirectories(tmp.resolve("notes"));
    Files.writeString(notes.resolve("diary.txt"), "dear diary");
    CheckpointException e =
        assertThrows(
            CheckpointException.class, () -> TinyModels.save(notes, config, newWeights, 3000));
    assertTrue(e.getMessage().contains("does not hold a model"), e.getMessage());
    assertEquals("dear diary", Files.readString(notes.resolve("diary.txt")));
    Path plain = Files.writeString(tmp.resolve("plain"), "x");
    assertThrows(CheckpointException.class, () -> TinyModels.save(plain, config, newWeights, 3000));
    assertEquals("x", Files.readString(plain));
  }

  @Test
  void savingOverTheDirectoryItWasReadFromWorks() throws Exception {
    Path dir = tmp.resolve("model");
    TinyModels.save(dir, config, oldWeights, 3000);
    Files.writeString(dir.resolve("tokenizer.json"), "{}");
    try (MixtralCheckpoint ck = MixtralCheckpoint.load(dir)) {
      ck.save(dir, DType.BF16, 1 << 20);
    }
    try (MixtralCheckpoint ck = MixtralCheckpoint.load(dir)) {
      assertEquals("bfloat16", ck.config().dtype);
      String n = MixtralNames.expert(1, 2, "w2");
      assertArrayEquals(oldWeights.get(n).to(DType.BF16).toFloatArray(), ck.floats(n));
    }
    assertEquals("{}", Files.readString(dir.resolve("tokenizer.json")));
    assertNoLeftovers(dir);
  }

  @Test
  void wrongSuppliedShapeIsNamed() throws Exception {
    Path dir = tmp.resolve("model");
    String n = MixtralNames.expert(0, 1, "w3");
    CheckpointException e =
        assertThrows(
            CheckpointException.class,
            () ->
                MixtralCheckpoint.save(
                    dir,
                    config,
                    null,
                    x -> x.equals(n) ? HostTensor.zeros(DType.F32, 3) : newWeights.get(x),
                    DType.F32,
                    1 << 20,
                    List.of()));
    assertTrue(
        e.getMessage().contains("tensor '" + n + "'") && e.getMessage().contains("[12, 8]"),
        e.getMessage());
    assertFalse(Files.exists(dir));
  }
}
