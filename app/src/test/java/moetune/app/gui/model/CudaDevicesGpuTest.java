package moetune.app.gui.model;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import moetune.engine.backend.cuda.CudaProbe;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The Model screen's GPU list on a real device; skips visibly without one. */
@Tag("gpu")
class CudaDevicesGpuTest {

  @Test
  void listsDevicesWithFreeMemory() {
    String why = CudaProbe.unavailableReason(0);
    assumeTrue(why == null, "no usable CUDA device: " + why);
    GpuInfo.Report r = CudaDevices.list();
    assertFalse(r.found().isEmpty());
    for (GpuInfo g : r.found()) {
      assertFalse(g.name().isBlank());
      assertTrue(g.totalBytes() > (1L << 30), g.toString());
      assertTrue(g.freeBytes() > 0 && g.freeBytes() <= g.totalBytes(), g.toString());
    }
  }
}
