package moetune.engine.io;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/** Locates the repository's fixtures/ folder (the surefire system property moetune.fixtures). */
final class Fixtures {
  private Fixtures() {}

  static Path tinyMixtral() {
    String root = System.getProperty("moetune.fixtures", "../fixtures");
    Path p = Path.of(root, "tiny-mixtral");
    assertTrue(Files.isDirectory(p), "fixture directory not found: " + p.toAbsolutePath());
    return p;
  }
}
