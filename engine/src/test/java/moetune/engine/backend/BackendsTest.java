package moetune.engine.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import moetune.engine.backend.cuda.CudaProbe;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** Device choice: explicit, never a silent fallback. */
class BackendsTest {

  @Test
  void cpuOpensTheCpuBackend() {
    try (Backend b = Backends.open("cpu", s -> {})) {
      assertEquals("cpu", b.name());
    }
  }

  @Test
  void unknownDevicesAreOneClearError() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Backends.open("gpu", s -> {}));
    assertEquals("device 'gpu': use one of cpu, cuda, cuda:N, auto", e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> Backends.open("cuda:x", s -> {}));
    assertTrue(e.getMessage().startsWith("device 'cuda:x': expected cuda:N"), e.getMessage());
  }

  @Test
  void autoSaysWhatItChose() {
    List<String> log = new ArrayList<>();
    try (Backend b = Backends.open("auto", log::add)) {
      assertEquals(1, log.size(), "one line: " + log);
      assertTrue(
          log.get(0)
              .startsWith(
                  "device auto: chose " + (b.name().equals("cpu") ? "cpu because " : "cuda:0 ")),
          log.get(0));
    }
  }

  @Test
  void cudaWithoutAUsableDeviceSaysWhy() {
    String why = CudaProbe.unavailableReason(0);
    Assumptions.assumeTrue(why != null, "this machine has a usable CUDA device");
    IllegalStateException e =
        assertThrows(IllegalStateException.class, () -> Backends.open("cuda", s -> {}));
    assertEquals(
        "device 'cuda' is not usable: " + why + "; use --device cpu to run on the CPU",
        e.getMessage());
  }
}
