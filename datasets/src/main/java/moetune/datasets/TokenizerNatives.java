package moetune.datasets;

import java.io.IOException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Comparator;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Where DJL extracts its tokenizer library ({@code libtokenizers.so}), made safe.
 *
 * <p>DJL extracts into {@code <cache>/tokenizers/<version>-<flavor>-<platform>/} and loads a file
 * already there without checking it. The cache is {@code ENGINE_CACHE_DIR} or {@code DJL_CACHE_DIR}
 * when the user sets them, else {@code ~/.djl.ai}, but {@code <java.io.tmpdir>/.djl.ai} when the
 * home directory is not writable: a fixed name in a shared directory, where another user can plant
 * a library. So when the user has not chosen a cache and the default one is in the temp directory,
 * or is writable by others, or is not ours, moetune points {@code ENGINE_CACHE_DIR} at a fresh
 * directory only this user can enter (removed when the JVM exits).
 */
final class TokenizerNatives {
  private static final Set<PosixFilePermission> OTHERS_WRITE =
      Set.of(PosixFilePermission.GROUP_WRITE, PosixFilePermission.OTHERS_WRITE);

  private TokenizerNatives() {}

  /** Sets ENGINE_CACHE_DIR to a private directory where DJL's default cache is not safe. */
  static void secureCacheDir() {
    if (userChoice("ENGINE_CACHE_DIR") || userChoice("DJL_CACHE_DIR")) {
      return;
    }
    Path cache = defaultCache();
    if (!isSafe(cache, Path.of(System.getProperty("java.io.tmpdir")))) {
      Path dir = privateDirectory();
      System.setProperty("ENGINE_CACHE_DIR", dir.toString());
      Runtime.getRuntime()
          .addShutdownHook(new Thread(() -> deleteTree(dir), "moetune-natives-cleanup"));
    }
  }

  private static boolean userChoice(String key) {
    String env = System.getenv(key);
    String prop = System.getProperty(key);
    return (env != null && !env.isEmpty()) || (prop != null && !prop.isEmpty());
  }

  /** DJL's default cache directory, as DJL's Utils.getCacheDir picks it. */
  static Path defaultCache() {
    Path home = Path.of(System.getProperty("user.home"));
    return Files.isWritable(home)
        ? home.resolve(".djl.ai")
        : Path.of(System.getProperty("java.io.tmpdir")).resolve(".djl.ai");
  }

  /**
   * Whether a cache directory can only be written by this user: not under tmpdir, and it (or, while
   * it does not exist, its nearest existing parent) is ours and not writable by group or others.
   */
  static boolean isSafe(Path cache, Path tmpdir) {
    Path abs = cache.toAbsolutePath().normalize();
    Path tmp = tmpdir.toAbsolutePath().normalize();
    if (abs.startsWith(tmp)) {
      return false;
    }
    if (!FileSystems.getDefault().supportedFileAttributeViews().contains("posix")) {
      return true; // Windows: the profile directory is private by its ACL
    }
    Path p = abs;
    while (p != null && !Files.exists(p)) {
      p = p.getParent();
    }
    if (p == null) {
      return false;
    }
    try {
      boolean ours = Files.getOwner(p).getName().equals(System.getProperty("user.name"));
      boolean shared = Files.getPosixFilePermissions(p).stream().anyMatch(OTHERS_WRITE::contains);
      return ours && !shared;
    } catch (IOException | UnsupportedOperationException e) {
      return false;
    }
  }

  static Path privateDirectory() {
    try {
      return FileSystems.getDefault().supportedFileAttributeViews().contains("posix")
          ? Files.createTempDirectory(
              "moetune-natives-",
              PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")))
          : Files.createTempDirectory("moetune-natives-");
    } catch (IOException e) {
      throw new DatasetException(
          "cannot create a private directory for the tokenizer's native library in "
              + System.getProperty("java.io.tmpdir")
              + " ("
              + e.getMessage()
              + "); set ENGINE_CACHE_DIR to a directory only you can write");
    }
  }

  private static void deleteTree(Path dir) {
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      // a leftover private directory is harmless
    }
  }
}
