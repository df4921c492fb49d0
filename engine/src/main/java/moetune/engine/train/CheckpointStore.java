package moetune.engine.train;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A directory of training checkpoints, {@code step-00000100/} and so on, with a {@code latest} file
 * naming the newest complete one.
 *
 * <p>Invariant: whatever moment a process dies at, {@code latest} names a complete checkpoint (or
 * does not exist yet). A checkpoint is written into {@code .tmp-step-N-<nonce>/}, every file and
 * the directory are fsynced, the directory is renamed into place, and only then is {@code latest}
 * replaced by renaming a synced {@code latest.tmp} over it. A checkpoint directory is complete iff
 * it holds {@link #COMPLETE_MARKER}, which the writer callback writes last; leftover temp
 * directories (every hidden entry of the root) are removed by the next save.
 */
public final class CheckpointStore {
  /** The file a checkpoint writer must write last; its presence marks a complete checkpoint. */
  public static final String COMPLETE_MARKER = "trainer-state.json";

  private static final Pattern STEP_DIR = Pattern.compile("step-(\\d+)");
  private static final String LATEST = "latest";

  /** Writes a checkpoint's files into an empty directory. */
  @FunctionalInterface
  public interface Writer {
    void write(Path dir) throws IOException;
  }

  private final Path root;

  public CheckpointStore(Path root) {
    this.root = root;
  }

  public Path root() {
    return root;
  }

  /** The directory name of the checkpoint for a step. */
  public static String dirName(long step) {
    return String.format("step-%08d", step);
  }

  /**
   * Writes the checkpoint for {@code step} atomically, makes it the latest, then deletes all but
   * the newest {@code keepLast} complete checkpoints (keepLast <= 0 keeps all). If the step is
   * already the latest checkpoint, nothing is written: a step's state is the same every time.
   *
   * @return the checkpoint directory
   */
  public Path save(long step, Writer writer, int keepLast) throws IOException {
    Files.createDirectories(root);
    removeTemps();
    String name = dirName(step);
    Path target = root.resolve(name);
    if (latest().map(target::equals).orElse(false)) {
      return target;
    }
    Path tmp = root.resolve(".tmp-" + name + "-" + Long.toHexString(System.nanoTime()));
    Files.createDirectory(tmp);
    try {
      writer.write(tmp);
      if (!Files.isRegularFile(tmp.resolve(COMPLETE_MARKER))) {
        throw new IllegalStateException(
            "checkpoint writer did not write " + COMPLETE_MARKER + " into " + tmp);
      }
      fsyncTree(tmp);
      if (Files.exists(target)) {
        deleteTree(target); // a stale checkpoint of the same step that is not the latest
      }
      move(tmp, target);
      fsyncDir(root);
    } catch (IOException | RuntimeException e) {
      deleteTree(tmp);
      throw e;
    }
    Path latestTmp = root.resolve(LATEST + ".tmp");
    Files.writeString(latestTmp, name + "\n", StandardCharsets.UTF_8);
    fsyncFile(latestTmp);
    move(latestTmp, root.resolve(LATEST));
    fsyncDir(root);
    prune(keepLast);
    return target;
  }

  /**
   * The newest complete checkpoint: the one {@code latest} names if it is complete, else (a pointer
   * lost or damaged by hand) the complete step directory with the highest step.
   */
  public Optional<Path> latest() throws IOException {
    Path pointer = root.resolve(LATEST);
    if (Files.isRegularFile(pointer)) {
      String name = Files.readString(pointer, StandardCharsets.UTF_8).trim();
      Path dir = root.resolve(name);
      if (STEP_DIR.matcher(name).matches() && isComplete(dir)) {
        return Optional.of(dir);
      }
    }
    List<Path> all = complete();
    return all.isEmpty() ? Optional.empty() : Optional.of(all.getLast());
  }

  /** Complete checkpoint directories, oldest step first. */
  public List<Path> complete() throws IOException {
    if (!Files.isDirectory(root)) {
      return List.of();
    }
    List<Path> out = new ArrayList<>();
    try (Stream<Path> s = Files.list(root)) {
      s.filter(p -> STEP_DIR.matcher(p.getFileName().toString()).matches())
          .filter(CheckpointStore::isComplete)
          .forEach(out::add);
    }
    out.sort((a, b) -> Long.compare(stepOf(a), stepOf(b)));
    return out;
  }

  /** The step a checkpoint directory holds, from its name. */
  public static long stepOf(Path dir) {
    Matcher m = STEP_DIR.matcher(dir.getFileName().toString());
    if (!m.matches()) {
      throw new IllegalArgumentException(dir + " is not a checkpoint directory (step-NNNNNNNN)");
    }
    return Long.parseLong(m.group(1));
  }

  public static boolean isComplete(Path dir) {
    return Files.isRegularFile(dir.resolve(COMPLETE_MARKER));
  }

  private void prune(int keepLast) throws IOException {
    Path keep = latest().orElse(null);
    removeHalfDeleted(keep);
    if (keepLast <= 0) {
      return;
    }
    List<Path> all = complete();
    for (int i = 0; i < all.size() - keepLast; i++) {
      if (!all.get(i).equals(keep)) {
        discard(all.get(i));
      }
    }
  }

  /**
   * Deletes a checkpoint so that a kill at any moment leaves nothing half-deleted in view: it is
   * first renamed to a hidden name (one atomic step), then deleted; a leftover hidden directory is
   * removed by the next save.
   */
  private void discard(Path dir) throws IOException {
    Path hidden =
        root.resolve(".deleting-" + dir.getFileName() + "-" + Long.toHexString(System.nanoTime()));
    move(dir, hidden);
    fsyncDir(root);
    deleteTree(hidden);
  }

  /**
   * Removes step directories older than the latest that are not complete: what an older version
   * left when it was killed while deleting one (it deleted in place). Checkpoints are renamed into
   * place whole, so an incomplete step directory is never one being written.
   */
  private void removeHalfDeleted(Path latest) throws IOException {
    if (latest == null) {
      return;
    }
    long newest = stepOf(latest);
    try (Stream<Path> s = Files.list(root)) {
      for (Path p : s.toList()) {
        String n = p.getFileName().toString();
        if (STEP_DIR.matcher(n).matches() && !isComplete(p) && stepOf(p) < newest) {
          discard(p);
        }
      }
    }
  }

  private void removeTemps() throws IOException {
    try (Stream<Path> s = Files.list(root)) {
      // Hidden entries are ours: our temp directories and those the model writer makes beside
      // them while swapping a directory in.
      for (Path p : s.filter(p -> p.getFileName().toString().startsWith(".")).toList()) {
        deleteTree(p);
      }
    }
  }

  private static void move(Path from, Path to) throws IOException {
    try {
      Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (AtomicMoveNotSupportedException e) {
      throw new IOException(
          "cannot rename "
              + from
              + " to "
              + to
              + " atomically; put the output directory on a "
              + "local file system",
          e);
    }
  }

  /** fsyncs every file under dir, then every directory bottom-up. */
  static void fsyncTree(Path dir) throws IOException {
    Files.walkFileTree(
        dir,
        new SimpleFileVisitor<>() {
          @Override
          public FileVisitResult visitFile(Path file, BasicFileAttributes attrs)
              throws IOException {
            fsyncFile(file);
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult postVisitDirectory(Path d, IOException exc) throws IOException {
            if (exc != null) {
              throw exc;
            }
            fsyncDir(d);
            return FileVisitResult.CONTINUE;
          }
        });
  }

  static void fsyncFile(Path file) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
      ch.force(true);
    }
  }

  /** fsync of a directory (so a rename in it is durable); a no-op where the OS refuses it. */
  static void fsyncDir(Path dir) {
    try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
      ch.force(true);
    } catch (IOException e) {
      // Some file systems do not allow opening a directory; the renames are still atomic there.
    }
  }

  static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try {
      Files.walkFileTree(
          dir,
          new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs)
                throws IOException {
              Files.deleteIfExists(file);
              return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path d, IOException exc) throws IOException {
              Files.deleteIfExists(d);
              return FileVisitResult.CONTINUE;
            }
          });
    } catch (NoSuchFileException e) {
      // already gone
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
  }
}
