package moetune.app.gui.model;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import moetune.engine.backend.cuda.CudaProbe;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The Model screen's GPU list on a real device, through the engine's backend code; skips visibly
 * without one.
 */
@Tag("gpu")
class CudaDevicesGpuTest {

  @Test
  void listsDevicesWithFreeMemory() {
    String why = CudaProbe.unavailableReason(0);
    assumeTrue(why == null, "no usable CUDA device: " + why);
    GpuInfo.Report r = new EngineModelInspector().gpus();
    assertFalse(r.found().isEmpty());
    for (GpuInfo g : r.found()) {
      assertFalse(g.name().isBlank());
      assertTrue(g.totalBytes() > (1L << 30), g.toString());
      assertTrue(g.freeBytes() > 0 && g.freeBytes() <= g.totalBytes(), g.toString());
    }
    // listing left JCuda's exceptions flag off, as the backend's Driver.check relies on: a bad
    // call returns its error code instead of throwing
    int rc = jcuda.driver.JCudaDriver.cuDeviceGet(new jcuda.driver.CUdevice(), 1 << 20);
    assertTrue(rc != jcuda.driver.CUresult.CUDA_SUCCESS, "cuDeviceGet(2^20) must fail: " + rc);
  }
}
