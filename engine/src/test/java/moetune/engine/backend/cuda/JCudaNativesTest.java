package moetune.engine.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import jcuda.JCudaVersion;
import jcuda.LibUtils;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A library planted under JCuda's fixed extraction name in java.io.tmpdir is never loaded: a real
 * child JVM with that tmpdir initialises the driver through {@link JCudaNatives}. The same child
 * going to JCuda directly loads the planted file, which shows the test can see the attack.
 */
class JCudaNativesTest {

  /** The child: "ours" loads through JCudaNatives, "jcuda" initialises JCuda's class directly. */
  public static final class LoadMain {
    public static void main(String[] args) throws Exception {
      try {
        if (args[0].equals("ours")) {
          JCudaNatives.load();
        } else {
          Class.forName("jcuda.driver.JCudaDriver");
        }
        System.out.println("loaded");
      } catch (Throwable e) {
        System.out.println("not loaded: " + e);
      }
      System.out.println("tmpdir after: " + System.getProperty("java.io.tmpdir"));
    }
  }

  static String plantedName() {
    return LibUtils.createLibraryFileName(
        LibUtils.createPlatformLibraryName("JCudaDriver-" + JCudaVersion.get()));
  }

  static String runChild(Path tmpdir, String mode) throws Exception {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    Path log = tmpdir.resolveSibling("child-" + mode + ".log");
    Process p =
        new ProcessBuilder(
                List.of(
                    java,
                    "-Djava.io.tmpdir=" + tmpdir,
                    "-cp",
                    System.getProperty("java.class.path"),
                    LoadMain.class.getName(),
                    mode))
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "child did not finish");
    assertEquals(0, p.exitValue(), Files.readString(log));
    return Files.readString(log);
  }

  @Test
  void aPlantedLibraryInTheTempDirectoryIsNeverLoaded(@TempDir Path tmp) throws Exception {
    byte[] planted = "not a library: planted by another user\n".getBytes(StandardCharsets.UTF_8);
    Path shared = Files.createDirectories(tmp.resolve("shared-tmp"));
    Path trap = shared.resolve(plantedName());
    Files.write(trap, planted);

    String ours = runChild(shared, "ours");
    assertFalse(ours.contains(trap.toString()), "the planted file was touched: " + ours);
    assertTrue(ours.contains("tmpdir after: " + shared), "java.io.tmpdir is restored: " + ours);
    assertArrayEquals(planted, Files.readAllBytes(trap), "the planted file is left alone");
    try (Stream<Path> left = Files.list(shared)) {
      assertEquals(List.of(trap), left.toList(), "the private extraction is removed");
    }

    String direct = runChild(shared, "jcuda");
    assertTrue(
        direct.contains(trap.toString()),
        "JCuda on its own loads the planted file (the attack this guards against): " + direct);
  }

  @Test
  void thePrivateDirectoryIsOwnerOnly() throws Exception {
    Path dir = JCudaNatives.privateDirectory();
    Path other = JCudaNatives.privateDirectory();
    try {
      if (Files.getFileStore(dir).supportsFileAttributeView("posix")) {
        assertEquals(
            "rwx------",
            java.nio.file.attribute.PosixFilePermissions.toString(
                Files.getPosixFilePermissions(dir)));
      }
      assertTrue(dir.getFileName().toString().startsWith("moetune-natives-"));
      assertFalse(dir.equals(other), "a new unique name each time");
    } finally {
      Files.deleteIfExists(dir);
      Files.deleteIfExists(other);
    }
  }
}
