package moetune.engine.backend.cuda;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.JCudaDriver;

/**
 * The CUDA devices with their memory, for a device picker. Every driver call goes through {@link
 * Driver#check} like the backend's, so JCuda's global exceptions flag stays off as the backend
 * relies on. Free memory needs a context: each device's primary context is retained for the query
 * and released after (the backend later retains the same one).
 */
public final class CudaDevices {
  private CudaDevices() {}

  /** One device as the driver reports it. */
  public record Device(int index, String name, long totalBytes, long freeBytes) {}

  /**
   * The devices, in ordinal order; call only when {@link CudaProbe#unavailableReason} said CUDA is
   * usable.
   *
   * @throws CudaException when a driver call fails
   */
  public static List<Device> list() {
    Driver.check(JCudaDriver.cuInit(0), "cuInit", "listing devices");
    int[] count = new int[1];
    Driver.check(JCudaDriver.cuDeviceGetCount(count), "cuDeviceGetCount", "listing devices");
    List<Device> out = new ArrayList<>();
    for (int i = 0; i < count[0]; i++) {
      String where = "device " + i;
      CUdevice dev = new CUdevice();
      Driver.check(JCudaDriver.cuDeviceGet(dev, i), "cuDeviceGet", where);
      byte[] name = new byte[256];
      Driver.check(JCudaDriver.cuDeviceGetName(name, name.length, dev), "cuDeviceGetName", where);
      CUcontext ctx = new CUcontext();
      Driver.check(
          JCudaDriver.cuDevicePrimaryCtxRetain(ctx, dev), "cuDevicePrimaryCtxRetain", where);
      try {
        Driver.check(JCudaDriver.cuCtxPushCurrent(ctx), "cuCtxPushCurrent", where);
        long[] free = new long[1];
        long[] total = new long[1];
        try {
          Driver.check(JCudaDriver.cuMemGetInfo(free, total), "cuMemGetInfo", where);
        } finally {
          Driver.check(JCudaDriver.cuCtxPopCurrent(new CUcontext()), "cuCtxPopCurrent", where);
        }
        out.add(new Device(i, cString(name), total[0], free[0]));
      } finally {
        Driver.check(
            JCudaDriver.cuDevicePrimaryCtxRelease(dev), "cuDevicePrimaryCtxRelease", where);
      }
    }
    return out;
  }

  private static String cString(byte[] b) {
    int n = 0;
    while (n < b.length && b[n] != 0) {
      n++;
    }
    return new String(b, 0, n, StandardCharsets.UTF_8);
  }
}
