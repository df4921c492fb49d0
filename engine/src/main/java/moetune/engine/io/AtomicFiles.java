package moetune.engine.io;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * Writes that never leave a half-written file or directory behind.
 *
 * <p>A file is written to a temporary name in its own directory, forced to disk, and renamed over
 * the target. A directory is built as a temporary sibling ({@code .NAME.moetune-tmp-ID}), every
 * file in it forced to disk, and only then swapped in: the old directory is renamed aside ({@code
 * .NAME.moetune-old-ID}), the new one renamed into place, the parent directory forced, and the old
 * one deleted, after the files in it that a save does not write (a README, an eval-results folder)
 * are moved into the new one. A crash before the swap leaves the old directory untouched; a crash
 * between the two renames leaves the complete old directory under its {@code -old-} name. A failure
 * while building deletes the temporary directory and changes nothing else.
 */
public final class AtomicFiles {
  private AtomicFiles() {}

  /** Fills a fresh, empty directory. */
  @FunctionalInterface
  public interface DirectoryContent {
    void writeInto(Path tmpDir) throws IOException;
  }

  /** Test hook: runs after the old directory is moved aside and before the new one moves in. */
  static volatile Runnable betweenRenames = () -> {};

  /**
   * Builds a directory with {@code content} and puts it at {@code target}, replacing an existing
   * directory only once the new one is complete. An existing target must be a directory that holds
   * a model (config.json or *.safetensors) or nothing: moetune never replaces other data.
   */
  public static void replaceDirectory(Path target, DirectoryContent content) {
    Path abs = target.toAbsolutePath().normalize();
    Path parent = abs.getParent();
    if (parent == null) {
      throw new CheckpointException(
          abs, null, "cannot replace a file system root; name a directory");
    }
    String name = abs.getFileName().toString();
    checkReplaceable(abs);
    Path tmp = parent.resolve("." + name + ".moetune-tmp-" + UUID.randomUUID());
    try {
      Files.createDirectories(parent);
      Files.createDirectory(tmp);
    } catch (IOException e) {
      throw new CheckpointException(
          abs,
          null,
          "cannot create a directory next to it: " + e + "; check the path and permissions",
          e);
    }
    try {
      content.writeInto(tmp);
      try (Stream<Path> files = Files.list(tmp)) {
        for (Path f : (Iterable<Path>) files::iterator) {
          if (Files.isRegularFile(f)) {
            force(f);
          }
        }
      }
      forceDirectory(tmp);
    } catch (IOException | RuntimeException e) {
      deleteQuietly(tmp);
      if (e instanceof CheckpointException ce) {
        throw ce;
      }
      throw new CheckpointException(abs, null, "writing failed, nothing was changed: " + e, e);
    }
    swapIn(tmp, abs, parent, name);
  }

  private static void swapIn(Path tmp, Path abs, Path parent, String name) {
    Path old = null;
    try {
      if (Files.exists(abs)) {
        old = parent.resolve("." + name + ".moetune-old-" + UUID.randomUUID());
        Files.move(abs, old, StandardCopyOption.ATOMIC_MOVE);
      }
      betweenRenames.run();
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
      throw new CheckpointException(
          abs,
          null,
          "could not move the new directory into place ("
              + e
              + ")"
              + (old != null
                  ? "; the previous contents are kept in " + old
                  : "; nothing was changed"),
          e);
    }
    if (old != null && keepForeignFiles(old, abs)) {
      deleteQuietly(old);
    }
  }

  /**
   * Moves every entry of the replaced directory that the new one does not have and that is not a
   * model file (config.json, generation_config.json, *.safetensors, the shard index) into the new
   * directory: a README or an eval-results folder beside an earlier export survives its
   * replacement, since moetune deletes only files it writes. Returns false when something could not
   * be moved (then the old directory is left in place, so nothing is lost).
   */
  private static boolean keepForeignFiles(Path old, Path abs) {
    try (Stream<Path> entries = Files.list(old)) {
      boolean all = true;
      for (Path e : entries.toList()) {
        String n = e.getFileName().toString();
        if (isModelFile(n) || Files.exists(abs.resolve(n))) {
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

  /** The files a model save writes (and so may replace or drop). */
  static boolean isModelFile(String name) {
    return name.equals("config.json")
        || name.equals("generation_config.json")
        || name.endsWith(".safetensors")
        || name.endsWith(".safetensors.index.json");
  }

  private static void checkReplaceable(Path abs) {
    if (!Files.exists(abs)) {
      return;
    }
    if (!Files.isDirectory(abs)) {
      throw new CheckpointException(
          abs, null, "exists and is not a directory; choose a directory path for the model");
    }
    try (Stream<Path> files = Files.list(abs)) {
      boolean empty = true;
      boolean model = false;
      for (Path f : (Iterable<Path>) files::iterator) {
        empty = false;
        String n = f.getFileName().toString();
        model |= n.equals("config.json") || n.endsWith(".safetensors");
      }
      if (!empty && !model) {
        throw new CheckpointException(
            abs,
            null,
            "exists and does not hold a model (no config.json or .safetensors); moetune will not"
                + " replace it; choose a new or empty directory");
      }
    } catch (IOException e) {
      throw new CheckpointException(abs, null, "cannot list: " + e, e);
    }
  }

  /** Writes a file atomically: temp name in the same directory, force, rename over. */
  public static void writeFile(Path target, byte[] bytes) {
    Path abs = target.toAbsolutePath();
    Path tmp = abs.resolveSibling("." + abs.getFileName() + ".moetune-tmp-" + UUID.randomUUID());
    try {
      Files.write(tmp, bytes, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
      force(tmp);
      moveAtomically(tmp, abs);
      forceDirectory(abs.getParent());
    } catch (IOException e) {
      deleteQuietly(tmp);
      throw new CheckpointException(abs, null, "cannot write: " + e, e);
    }
  }

  /** Renames, replacing the target atomically. */
  static void moveAtomically(Path from, Path to) throws IOException {
    try {
      Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (AtomicMoveNotSupportedException e) {
      throw new IOException("the file system cannot rename " + from + " atomically to " + to, e);
    }
  }

  static void force(Path file) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
      ch.force(true);
    }
  }

  /** Forces a directory's entries to disk where the platform allows opening directories. */
  static void forceDirectory(Path dir) {
    try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
      ch.force(true);
    } catch (IOException e) {
      // Some platforms (Windows) cannot open a directory; the renames are still atomic there.
    }
  }

  /**
   * Deletes a file or directory tree; returns false when something could not be deleted (a leftover
   * temporary or old directory is harmless, and cleanup must not hide the real error).
   */
  static boolean deleteQuietly(Path p) {
    if (p == null || !Files.exists(p)) {
      return true;
    }
    try {
      Files.walkFileTree(
          p,
          new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path f, BasicFileAttributes a) throws IOException {
              Files.delete(f);
              return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
              Files.delete(d);
              return FileVisitResult.CONTINUE;
            }
          });
      return true;
    } catch (IOException e) {
      return false;
    }
  }
}
