package moetune.engine.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The one search for cuBLAS, cuDNN and NCCL (no GPU needed), shown on cuDNN's and cuBLAS's. */
class NativeLibrarySearchTest {
  @Test
  void cudnnSearchOrderHomeThenLdPathThenToolkitThenWheels(@TempDir Path tmp) throws Exception {
    Path home = Files.createDirectories(tmp.resolve("cudnn/lib"));
    Path ld = Files.createDirectories(tmp.resolve("ld"));
    Path toolkit = Files.createDirectories(tmp.resolve("roots/cuda-13.0/lib64"));
    Path wheel = Files.createDirectories(tmp.resolve("site-packages/nvidia/cudnn/lib"));
    for (Path d : List.of(home, ld, toolkit, wheel)) {
      Files.writeString(d.resolve("libcudnn.so.9"), "");
    }
    List<Path> roots = List.of(tmp.resolve("roots"));
    List<Path> wheels = List.of(tmp.resolve("site-packages"));
    NativeLibrarySearch s = Cudnn.SEARCH;
    assertEquals(
        home.resolve("libcudnn.so.9"),
        s.find(
            Map.of("CUDNN_HOME", tmp.resolve("cudnn").toString(), "LD_LIBRARY_PATH", ld.toString()),
            roots,
            List.of(),
            wheels));
    assertEquals(
        ld.resolve("libcudnn.so.9"),
        s.find(Map.of("LD_LIBRARY_PATH", ld.toString()), roots, List.of(), wheels));
    assertEquals(toolkit.resolve("libcudnn.so.9"), s.find(Map.of(), roots, List.of(), wheels));
    assertEquals(wheel.resolve("libcudnn.so.9"), s.find(Map.of(), List.of(), List.of(), wheels));
  }

  @Test
  void cublasPrefersTheNewerSonameAnywhereOverTheOlderFirst(@TempDir Path tmp) throws Exception {
    Path a = Files.createDirectories(tmp.resolve("a"));
    Path b = Files.createDirectories(tmp.resolve("b"));
    Files.writeString(a.resolve("libcublas.so.12"), "");
    Files.writeString(b.resolve("libcublas.so.13"), "");
    assertEquals(
        b.resolve("libcublas.so.13"),
        Cublas.SEARCH.find(
            Map.of("LD_LIBRARY_PATH", a + ":" + b), List.of(), List.of(), List.of()));
  }

  @Test
  void absentLibraryIsOneLineWithTheFix(@TempDir Path tmp) {
    CudaException e =
        assertThrows(
            CudaException.class,
            () -> Cudnn.SEARCH.find(Map.of(), List.of(), List.of(), List.of(tmp)));
    assertTrue(e.getMessage().startsWith("no libcudnn.so.9 found (looked in CUDNN_HOME, "));
    assertTrue(e.getMessage().contains("nvidia/cudnn/lib wheels"), e.getMessage());
    assertTrue(e.getMessage().endsWith("MOETUNE_CUDNN=/path/to/libcudnn.so.9"), e.getMessage());
    assertEquals(1, e.getMessage().lines().count());
  }

  @Test
  void overrideThatIsNotAFileIsNamed(@TempDir Path tmp) {
    CudaException e =
        assertThrows(
            CudaException.class,
            () ->
                Cudnn.SEARCH.find(
                    Map.of("MOETUNE_CUDNN", tmp.resolve("x.so").toString()),
                    List.of(),
                    List.of(),
                    List.of()));
    assertEquals(
        "MOETUNE_CUDNN=" + tmp.resolve("x.so") + " is not a file; point it at libcudnn.so.9",
        e.getMessage());
  }

  /**
   * cuDNN: a system copy older than the verified 9.19 (9.14 crashed in its heuristics) is passed
   * over for PyTorch's wheel; the version comes from file names or the wheel's dist-info.
   */
  @Test
  void cudnnTakesTheFirstCopyNewEnough(@TempDir Path tmp) throws Exception {
    Path sys = Files.createDirectories(tmp.resolve("sys"));
    Files.writeString(sys.resolve("libcudnn.so.9.14.0"), "");
    Files.createSymbolicLink(sys.resolve("libcudnn.so.9"), Path.of("libcudnn.so.9.14.0"));
    Path site = tmp.resolve("venv/site-packages");
    Path wheel = Files.createDirectories(site.resolve("nvidia/cudnn/lib"));
    Files.writeString(wheel.resolve("libcudnn.so.9"), "");
    Files.createDirectories(site.resolve("nvidia_cudnn_cu13-9.19.0.56.dist-info"));
    assertEquals(91400, Cudnn.versionOf(sys.resolve("libcudnn.so.9")));
    assertEquals(91900, Cudnn.versionOf(wheel.resolve("libcudnn.so.9")));
    assertEquals(
        wheel.resolve("libcudnn.so.9"),
        Cudnn.choose(Map.of(), List.of(), List.of(sys), List.of(tmp.resolve("venv"))));
    CudaException e =
        assertThrows(
            CudaException.class,
            () -> Cudnn.choose(Map.of(), List.of(), List.of(sys), List.of(tmp.resolve("none"))));
    assertTrue(e.getMessage().startsWith("cuDNN 91900 or newer is needed"), e.getMessage());
    assertTrue(e.getMessage().contains(sys.resolve("libcudnn.so.9") + " (91400)"), e.getMessage());
    // the override is taken as given (its version is checked once loaded)
    assertEquals(
        sys.resolve("libcudnn.so.9"),
        Cudnn.choose(
            Map.of("MOETUNE_CUDNN", sys.resolve("libcudnn.so.9").toString()),
            List.of(),
            List.of(),
            List.of()));
  }
}
