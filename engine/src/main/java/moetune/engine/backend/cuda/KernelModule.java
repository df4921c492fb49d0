package moetune.engine.backend.cuda;

import java.util.HashMap;
import java.util.Map;
import jcuda.Pointer;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;
import moetune.kernels.KernelImage;

/**
 * The kernels fatbin loaded into the context, its functions looked up once by name, and the
 * launcher every op uses. Kernel arguments are passed as Java values: {@link Long} (a device
 * address or a 64-bit integer), {@link Integer}, {@link Float}, or an {@code int[]} for a struct of
 * 4-byte fields passed by value.
 */
final class KernelModule {
  private final CUmodule module = new CUmodule();
  private final Map<String, CUfunction> functions = new HashMap<>();
  private final Map<String, Integer> smemLimit = new HashMap<>();
  private final CUstream stream;
  // MOETUNE_CUDA_SYNC=1: wait after every launch, so an asynchronous fault names its kernel.
  private final boolean syncEach = "1".equals(System.getenv("MOETUNE_CUDA_SYNC"));

  KernelModule(CUstream stream) {
    this.stream = stream;
    byte[] image = KernelImage.fatbin();
    Driver.check(
        JCudaDriver.cuModuleLoadData(module, image),
        "cuModuleLoadData",
        "moetune.fatbin (" + image.length + " bytes)");
  }

  private CUfunction function(String name) {
    CUfunction f = functions.get(name);
    if (f == null) {
      f = new CUfunction();
      Driver.check(JCudaDriver.cuModuleGetFunction(f, module, name), "cuModuleGetFunction", name);
      functions.put(name, f);
    }
    return f;
  }

  /**
   * Queues kernel {@code name} on the stream. {@code shapes} describes the op's operands for the
   * error message should the launch fail.
   */
  void launch(
      String name, String shapes, long gx, long gy, long gz, int block, int smem, Object... args) {
    if (gx <= 0 || gy <= 0 || gz <= 0) {
      return; // an empty problem: nothing to launch
    }
    if (gx > Integer.MAX_VALUE || gy > 65535 || gz > 65535) {
      throw new CudaException(
          "kernel "
              + name
              + ": grid ("
              + gx
              + ", "
              + gy
              + ", "
              + gz
              + ") is too large for "
              + shapes);
    }
    CUfunction f = function(name);
    if (smem > 48 * 1024 && smemLimit.getOrDefault(name, 48 * 1024) < smem) {
      Driver.check(
          JCudaDriver.cuFuncSetAttribute(
              f, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem),
          "cuFuncSetAttribute",
          "kernel " + name + " " + shapes + " (" + smem + " bytes of shared memory)");
      smemLimit.put(name, smem);
    }
    Pointer[] ps = new Pointer[args.length];
    for (int i = 0; i < args.length; i++) {
      ps[i] =
          switch (args[i]) {
            case Long l -> Pointer.to(new long[] {l});
            case Integer n -> Pointer.to(new int[] {n});
            case Float x -> Pointer.to(new float[] {x});
            case int[] struct -> Pointer.to(struct);
            default ->
                throw new IllegalArgumentException(
                    "kernel " + name + ": unsupported argument " + args[i]);
          };
    }
    String ctx =
        "kernel "
            + name
            + " "
            + shapes
            + " grid ("
            + gx
            + ", "
            + gy
            + ", "
            + gz
            + ") block "
            + block;
    Driver.check(
        JCudaDriver.cuLaunchKernel(
            f, (int) gx, (int) gy, (int) gz, block, 1, 1, smem, stream, Pointer.to(ps), null),
        "cuLaunchKernel",
        ctx);
    if (syncEach) {
      Driver.check(JCudaDriver.cuStreamSynchronize(stream), "cuStreamSynchronize", "after " + ctx);
    }
  }

  void unload() {
    Driver.check(JCudaDriver.cuModuleUnload(module), "cuModuleUnload", "moetune.fatbin");
  }
}
