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

/** The NCCL library search and the ABI facts the binding relies on, without a GPU. */
class NcclTest {

  @Test
  void absentLibraryIsOneLineNamingWhereItLookedAndTheFix(@TempDir Path tmp) {
    CudaException e =
        assertThrows(
            CudaException.class,
            () -> Nccl.find(Map.of("LD_LIBRARY_PATH", tmp.toString()), List.of(), List.of(tmp)));
    assertTrue(e.getMessage().startsWith("no libnccl.so.2 found (looked in NCCL_HOME"));
    assertTrue(e.getMessage().contains("MOETUNE_NCCL=/path/to/libnccl.so.2"), e.getMessage());
    assertEquals(1, e.getMessage().lines().count());
  }

  @Test
  void overrideThatIsNotAFileIsNamed(@TempDir Path tmp) {
    CudaException e =
        assertThrows(
            CudaException.class,
            () ->
                Nccl.find(
                    Map.of("MOETUNE_NCCL", tmp.resolve("nope.so").toString()),
                    List.of(),
                    List.of()));
    assertEquals(
        "MOETUNE_NCCL=" + tmp.resolve("nope.so") + " is not a file; point it at libnccl.so.2",
        e.getMessage());
  }

  /** NCCL_HOME first, then LD_LIBRARY_PATH, then a pip wheel's nvidia/nccl/lib. */
  @Test
  void searchOrder(@TempDir Path tmp) throws Exception {
    Path home = Files.createDirectories(tmp.resolve("home/lib"));
    Path ld = Files.createDirectories(tmp.resolve("ld"));
    Path wheel = Files.createDirectories(tmp.resolve("site-packages/nvidia/nccl/lib"));
    for (Path d : List.of(home, ld, wheel)) {
      Files.writeString(d.resolve("libnccl.so.2"), "");
    }
    Map<String, String> env =
        Map.of("NCCL_HOME", tmp.resolve("home").toString(), "LD_LIBRARY_PATH", ld.toString());
    assertEquals(home.resolve("libnccl.so.2"), Nccl.find(env, List.of(), List.of(tmp)));
    assertEquals(
        ld.resolve("libnccl.so.2"),
        Nccl.find(Map.of("LD_LIBRARY_PATH", ld.toString()), List.of(), List.of(tmp)));
    assertEquals(wheel.resolve("libnccl.so.2"), Nccl.find(Map.of(), List.of(), List.of(tmp)));
  }

  /**
   * The values of NCCL's public nccl.h (src/nccl.h.in) that the binding passes: a change here is an
   * ABI break, not a refactor.
   */
  @Test
  void abiValuesOfNcclH() {
    assertEquals(128, Nccl.UNIQUE_ID_BYTES);
    assertEquals(128, Nccl.UNIQUE_ID.byteSize(), "ncclUniqueId is passed by value: 128 bytes");
    assertEquals(0, Nccl.SUM);
    assertEquals(2, Nccl.INT32);
    assertEquals(6, Nccl.FLOAT16);
    assertEquals(7, Nccl.FLOAT32);
    assertEquals(9, Nccl.BFLOAT16);
    assertEquals("ncclInvalidUsage", Nccl.resultName(5));
    assertEquals("ncclTimeout", Nccl.resultName(8));
  }
}
