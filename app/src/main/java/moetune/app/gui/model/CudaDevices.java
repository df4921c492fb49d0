package moetune.app.gui.model;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.JCudaDriver;
import moetune.engine.backend.cuda.CudaProbe;

/**
 * Lists CUDA devices with their free memory for the Model screen. Whether CUDA is usable at all is
 * the engine's {@link CudaProbe}'s answer; the listing itself uses the JCuda driver API the engine
 * is built on (the engine has no device-listing call yet). Free memory needs a context, so each
 * device's primary context is retained for the query and released after.
 */
final class CudaDevices {

  private CudaDevices() {}

  static GpuInfo.Report list() {
    String why = CudaProbe.unavailableReason(0);
    if (why != null) {
      return new GpuInfo.Report(List.of(), why);
    }
    JCudaDriver.setExceptionsEnabled(true);
    int[] count = new int[1];
    JCudaDriver.cuDeviceGetCount(count);
    List<GpuInfo> out = new ArrayList<>();
    for (int i = 0; i < count[0]; i++) {
      CUdevice dev = new CUdevice();
      JCudaDriver.cuDeviceGet(dev, i);
      byte[] name = new byte[256];
      JCudaDriver.cuDeviceGetName(name, name.length, dev);
      CUcontext ctx = new CUcontext();
      JCudaDriver.cuDevicePrimaryCtxRetain(ctx, dev);
      try {
        JCudaDriver.cuCtxPushCurrent(ctx);
        long[] free = new long[1];
        long[] total = new long[1];
        JCudaDriver.cuMemGetInfo(free, total);
        JCudaDriver.cuCtxPopCurrent(new CUcontext());
        out.add(new GpuInfo(i, cString(name), total[0], free[0]));
      } finally {
        JCudaDriver.cuDevicePrimaryCtxRelease(dev);
      }
    }
    return new GpuInfo.Report(out, out.isEmpty() ? "no CUDA device was found" : null);
  }

  private static String cString(byte[] b) {
    int n = 0;
    while (n < b.length && b[n] != 0) {
      n++;
    }
    return new String(b, 0, n, StandardCharsets.UTF_8);
  }
}
