package moetune.engine.backend.cuda;

import java.io.IOException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.stream.Stream;

/**
 * Loads JCuda's native driver library from a private directory.
 *
 * <p>Why: JCuda's {@code LibUtils} first tries {@code System.loadLibrary} (the user's {@code
 * java.library.path}), then extracts {@code libJCudaDriver-<version>-linux-x86_64.so} from its jar
 * to {@code java.io.tmpdir} under that fixed name and loads whatever file already has that name. In
 * a shared {@code /tmp} another user can plant a library there and it would run inside our process.
 * JCuda reads {@code java.io.tmpdir} when it extracts (not once at startup), so while the driver
 * class initialises we point that property at a fresh directory only we can enter ({@code
 * rwx------}, unique name), then point it back and delete the extracted copy (the loaded library
 * stays mapped). Every path into JCuda's driver class goes through {@link #load} first.
 */
public final class JCudaNatives {
  private static final String DRIVER_CLASS = "jcuda.driver.JCudaDriver";
  private static boolean loaded;

  private JCudaNatives() {}

  /**
   * Initialises JCuda's driver class with its native library extracted privately; idempotent.
   *
   * @throws LinkageError when the library cannot be loaded (no CUDA driver on this machine)
   */
  public static synchronized void load() {
    if (loaded) {
      return;
    }
    loaded = true; // one attempt: a failed class initialisation cannot be retried anyway
    Path dir = privateDirectory();
    String tmp = System.getProperty("java.io.tmpdir");
    System.setProperty("java.io.tmpdir", dir.toString());
    try {
      Class.forName(DRIVER_CLASS, true, JCudaNatives.class.getClassLoader());
    } catch (ClassNotFoundException e) {
      throw new NoClassDefFoundError(DRIVER_CLASS + " is not on the class path");
    } finally {
      System.setProperty("java.io.tmpdir", tmp);
      deleteQuietly(dir);
    }
  }

  /** A new directory in java.io.tmpdir that only this user can list, enter or write. */
  static Path privateDirectory() {
    try {
      boolean posix = FileSystems.getDefault().supportedFileAttributeViews().contains("posix");
      return posix
          ? Files.createTempDirectory(
              "moetune-natives-",
              PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")))
          : Files.createTempDirectory("moetune-natives-");
    } catch (IOException e) {
      throw new CudaException(
          "cannot create a private directory for JCuda's native library in "
              + System.getProperty("java.io.tmpdir")
              + " ("
              + e.getMessage()
              + "); set -Djava.io.tmpdir to a writable directory through MOETUNE_JAVA_OPTS");
    }
  }

  private static void deleteQuietly(Path dir) {
    try (Stream<Path> files = Files.list(dir)) {
      for (Path f : files.toList()) {
        if (!Files.deleteIfExists(f)) {
          f.toFile().deleteOnExit();
        }
      }
      Files.deleteIfExists(dir);
    } catch (IOException e) {
      // Windows keeps a loaded DLL locked; the directory is private, so a leftover is harmless.
      dir.toFile().deleteOnExit();
    }
  }
}
