package moetune.engine.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import moetune.engine.hf.CheckpointException;
import moetune.files.AtomicFiles;

/**
 * Model directories and files written the one atomic way ({@link AtomicFiles}), with the model
 * writers' policy on top: an existing target must be a model directory (config.json or
 * *.safetensors) or empty, since moetune never replaces other data; the files a model save writes
 * (config.json, generation_config.json, *.safetensors, the shard index) are replaced, every other
 * file in the directory (a README, an eval-results folder) is kept; and every failure is one {@link
 * CheckpointException} line saying what was changed.
 */
public final class ModelDirectory {
  private ModelDirectory() {}

  /** Builds a directory with {@code content} and puts it at {@code target} atomically. */
  public static void replace(Path target, AtomicFiles.DirectoryContent content) {
    Path abs = target.toAbsolutePath().normalize();
    if (abs.getParent() == null) {
      throw new CheckpointException(
          abs, null, "cannot replace a file system root; name a directory");
    }
    checkReplaceable(abs);
    try {
      AtomicFiles.replaceDirectory(abs, content, ModelDirectory::isModelFile);
    } catch (CheckpointException e) {
      throw e;
    } catch (IOException | RuntimeException e) {
      String m = String.valueOf(e.getMessage());
      throw new CheckpointException(
          abs,
          null,
          m.startsWith("could not move") ? m : "writing failed, nothing was changed: " + e,
          e);
    }
  }

  /** Writes one file atomically; a failure is one line naming it. */
  public static void writeFile(Path target, byte[] bytes) {
    try {
      AtomicFiles.writeFile(target, bytes);
    } catch (IOException e) {
      throw new CheckpointException(target.toAbsolutePath(), null, "cannot write: " + e, e);
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
}
