package moetune.files;

import java.io.IOException;
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
import java.util.UUID;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * The one way moetune writes files: nothing is ever left half-written, whatever moment the process
 * dies at or whatever write fails.
 *
 * <p>A file is written to a temporary name in its own directory ({@code .NAME.moetune-tmp-ID}),
 * forced to disk, renamed over the target in one atomic step, and the directory is forced so the
 * rename itself is durable. A failure deletes the temporary file and leaves the target as it was.
 * There is no fallback to a non-atomic move: a file system that cannot rename atomically is an
 * error that says so.
 *
 * <p>A directory is built as a temporary sibling, every file in it forced, and only then swapped in
 * ({@link #replaceDirectory}).
 */
public final class AtomicFiles {
  private AtomicFiles() {}

  /** Writes a file's content into the temporary path it is given. */
  @FunctionalInterface
  public interface FileContent {
    void writeTo(Path tmp) throws IOException;
  }

  /** Fills a fresh, empty directory. */
  @FunctionalInterface
  public interface DirectoryContent {
    void writeInto(Path tmpDir) throws IOException;
  }

  /** Test hook: runs after the old directory is moved aside and before the new one moves in. */
  public static volatile Runnable betweenRenamesForTests = () -> {};

  /** Writes bytes to a file atomically. */
  public static void writeFile(Path target, byte[] bytes) throws IOException {
    write(target, tmp -> Files.write(tmp, bytes, StandardOpenOption.WRITE));
  }

  /** Writes text as UTF-8 to a file atomically. */
  public static void writeString(Path target, String text) throws IOException {
    writeFile(target, text.getBytes(StandardCharsets.UTF_8));
  }

  /**
   * Writes a file atomically: {@code content} fills a temporary file in the target's directory
   * (created empty, so parents must exist or are created here), which is forced and renamed over
   * the target; then the directory is forced.
   */
  public static void write(Path target, FileContent content) throws IOException {
    Path abs = target.toAbsolutePath().normalize();
    Path dir = abs.getParent();
    Files.createDirectories(dir);
    Path tmp = dir.resolve("." + abs.getFileName() + ".moetune-tmp-" + UUID.randomUUID());
    Files.createFile(tmp);
    try {
      content.writeTo(tmp);
      force(tmp);
      moveAtomically(tmp, abs);
      forceDirectory(dir);
    } catch (IOException | RuntimeException e) {
      deleteQuietly(tmp);
      throw e;
    }
  }

  /**
   * Builds a directory with {@code content} and puts it at {@code target}, replacing an existing
   * directory only once the new one is complete: the old one is renamed aside ({@code
   * .NAME.moetune-old-ID}), the new one renamed into place, the parent forced; then every entry of
   * the old directory that the new one lacks and that {@code ownFile} does not claim (the kinds of
   * files this writer writes) is moved into the new one, so files moetune did not write survive,
   * and the old directory is deleted. A crash before the swap leaves the old directory untouched;
   * between the two renames, complete under its {@code -old-} name. A failure while building
   * deletes the temporary directory and changes nothing else.
   *
   * @throws IOException whose message says what was changed: "nothing was changed", or where the
   *     previous contents are kept
   */
  public static void replaceDirectory(
      Path target, DirectoryContent content, Predicate<String> ownFile) throws IOException {
    Path abs = target.toAbsolutePath().normalize();
    Path parent = abs.getParent();
    if (parent == null) {
      throw new IOException(abs + ": cannot replace a file system root; name a directory");
    }
    String name = abs.getFileName().toString();
    Path tmp = parent.resolve("." + name + ".moetune-tmp-" + UUID.randomUUID());
    Files.createDirectories(parent);
    Files.createDirectory(tmp);
    try {
      content.writeInto(tmp);
      forceTree(tmp);
    } catch (IOException | RuntimeException e) {
      deleteQuietly(tmp);
      throw e;
    }
    swapIn(tmp, abs, parent, name, ownFile);
  }

  private static void swapIn(
      Path tmp, Path abs, Path parent, String name, Predicate<String> ownFile) throws IOException {
    Path old = null;
    try {
      if (Files.exists(abs)) {
        old = parent.resolve("." + name + ".moetune-old-" + UUID.randomUUID());
        Files.move(abs, old, StandardCopyOption.ATOMIC_MOVE);
      }
      betweenRenamesForTests.run();
      Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE);
      forceDirectory(parent);
    } catch (IOException | RuntimeException e) {
      try {
        if (old != null && !Files.exists(abs)) {
          Files.move(old, abs, StandardCopyOption.ATOMIC_MOVE);
          old = null;
        }
      } catch (IOException restore) {
        e.addSuppressed(restore);
      }
      deleteQuietly(tmp);
      throw new IOException(
          "could not move the new directory into place ("
              + e
              + ")"
              + (old != null
                  ? "; the previous contents are kept in " + old
                  : "; nothing was changed"),
          e);
    }
    if (old != null && keepForeignFiles(old, abs, ownFile)) {
      deleteQuietly(old);
    }
  }

  /**
   * Moves the entries of the replaced directory that the new one lacks and that are not the
   * writer's own kind into the new one. Returns false when something could not be moved (then the
   * old directory is left in place, so nothing is lost).
   */
  private static boolean keepForeignFiles(Path old, Path abs, Predicate<String> ownFile) {
    try (Stream<Path> entries = Files.list(old)) {
      boolean all = true;
      for (Path e : entries.toList()) {
        String n = e.getFileName().toString();
        if (ownFile.test(n) || Files.exists(abs.resolve(n))) {
          continue;
        }
        try {
          Files.move(e, abs.resolve(n), StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException moveFailed) {
          all = false;
        }
      }
      forceDirectory(abs);
      return all;
    } catch (IOException e) {
      return false;
    }
  }

  /** Renames, replacing the target atomically; never falls back to a copy. */
  public static void moveAtomically(Path from, Path to) throws IOException {
    try {
      Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (AtomicMoveNotSupportedException e) {
      throw new IOException(
          "cannot rename "
              + from
              + " to "
              + to
              + " atomically; put the output directory on a local file system",
          e);
    }
  }

  /** Forces a file's content to disk. */
  public static void force(Path file) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
      ch.force(true);
    }
  }

  /** Forces a directory's entries to disk, where the platform allows opening directories. */
  public static void forceDirectory(Path dir) {
    try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
      ch.force(true);
    } catch (IOException e) {
      // Some platforms (Windows) cannot open a directory; the renames are still atomic there.
    }
  }

  /** Forces every file under dir, then every directory bottom-up. */
  public static void forceTree(Path dir) throws IOException {
    Files.walkFileTree(
        dir,
        new SimpleFileVisitor<>() {
          @Override
          public FileVisitResult visitFile(Path file, BasicFileAttributes attrs)
              throws IOException {
            force(file);
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult postVisitDirectory(Path d, IOException exc) throws IOException {
            if (exc != null) {
              throw exc;
            }
            forceDirectory(d);
            return FileVisitResult.CONTINUE;
          }
        });
  }

  /** Deletes a file or directory tree; a path that is already gone is fine. */
  public static void deleteTree(Path p) throws IOException {
    if (!Files.exists(p)) {
      return;
    }
    try {
      Files.walkFileTree(
          p,
          new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path f, BasicFileAttributes a) throws IOException {
              Files.deleteIfExists(f);
              return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
              Files.deleteIfExists(d);
              return FileVisitResult.CONTINUE;
            }
          });
    } catch (NoSuchFileException e) {
      // already gone
    }
  }

  /**
   * Deletes a file or directory tree; returns false when something could not be deleted (a leftover
   * temporary is harmless, and cleanup must not hide the real error).
   */
  public static boolean deleteQuietly(Path p) {
    try {
      deleteTree(p);
      return true;
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }
}
