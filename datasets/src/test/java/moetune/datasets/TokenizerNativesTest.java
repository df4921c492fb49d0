package moetune.datasets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * DJL extracts its tokenizer library under a fixed name in its cache and loads whatever file is
 * there. A real child JVM whose default cache lies in a directory others can write (a shared home
 * or temp directory) loads the library from a private directory through moetune, while DJL alone
 * loads it from the shared place (so the test can see the problem).
 */
class TokenizerNativesTest {

  /** The child: "ours" goes through ChatTokenizer, "djl" through DJL directly. */
  public static final class EncodeMain {
    public static void main(String[] args) throws Exception {
      Path model = Path.of(args[1]);
      if (args[0].equals("ours")) {
        try (ChatTokenizer t = ChatTokenizer.load(model)) {
          System.out.println("tokens: " + t.encode("Hello world").ids().length);
        }
      } else {
        try (HuggingFaceTokenizer t =
            HuggingFaceTokenizer.newInstance(model.resolve("tokenizer.json"))) {
          System.out.println("tokens: " + t.encode("Hello world").getIds().length);
        }
      }
      // Where the library the process runs was loaded from.
      Files.readAllLines(Path.of("/proc/self/maps")).stream()
          .filter(l -> l.endsWith("libtokenizers.so"))
          .map(l -> "loaded: " + l.substring(l.indexOf('/')))
          .distinct()
          .forEach(System.out::println);
    }
  }

  static String child(Path tmp, Path home, Path shared, String mode) throws Exception {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    Path log = tmp.resolve(mode + ".log");
    Process p =
        new ProcessBuilder(
                List.of(
                    java,
                    "--enable-native-access=ALL-UNNAMED",
                    "-Duser.home=" + home,
                    "-Djava.io.tmpdir=" + shared,
                    "-Dai.djl.offline=true",
                    "-DRUST_FLAVOR=cpu",
                    "-cp",
                    System.getProperty("java.class.path"),
                    EncodeMain.class.getName(),
                    mode,
                    Fixtures.tinyMixtral().toAbsolutePath().toString()))
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "child did not finish");
    String out = Files.readString(log);
    assertEquals(0, p.exitValue(), out);
    return out;
  }

  @Test
  void aSharedCacheDirectoryIsReplacedByAPrivateOne(@TempDir Path tmp) throws Exception {
    Path home = Files.createDirectories(tmp.resolve("shared-home"));
    Files.setPosixFilePermissions(home, PosixFilePermissions.fromString("rwxrwxrwx"));
    Path shared = Files.createDirectories(tmp.resolve("shared-tmp"));

    String ours = child(tmp, home, shared, "ours");
    assertTrue(ours.contains("tokens: "), ours);
    assertTrue(ours.contains("loaded: " + shared.resolve("moetune-natives-")), ours);
    assertFalse(Files.exists(home.resolve(".djl.ai")), "nothing extracted in the shared home");

    String djl = child(tmp, home, shared, "djl");
    assertTrue(
        djl.contains("loaded: " + home.resolve(".djl.ai")),
        "DJL alone loads from the world-writable home (the case this guards against): " + djl);
  }

  @Test
  void onlyOwnerOnlyDirectoriesOutsideTheTempDirectoryAreSafe(@TempDir Path tmp) throws Exception {
    Path fakeTmp = Files.createDirectories(tmp.resolve("tmp"));
    Path open = Files.createDirectories(tmp.resolve("open"));
    Files.setPosixFilePermissions(open, PosixFilePermissions.fromString("rwxrwxrwx"));
    Path closed = Files.createDirectories(tmp.resolve("closed"));
    Files.setPosixFilePermissions(closed, PosixFilePermissions.fromString("rwx------"));
    assertFalse(TokenizerNatives.isSafe(fakeTmp.resolve(".djl.ai"), fakeTmp));
    assertFalse(TokenizerNatives.isSafe(open.resolve(".djl.ai"), fakeTmp));
    assertTrue(TokenizerNatives.isSafe(closed.resolve(".djl.ai"), fakeTmp));
    assertTrue(TokenizerNatives.isSafe(closed, fakeTmp));
  }
}
