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
import moetune.kernels.KernelSignatures;
import moetune.kernels.KernelSignatures.Signature;

/**
 * The kernels fatbin loaded into the context and its signature table ({@link KernelSignatures},
 * read from the .cu sources nvcc compiled). When the module loads, every kernel of the table is
 * looked up in it, so a table that names a kernel the fatbin lacks fails at once, naming it; each
 * launch is then built by {@link KernelLaunch}, whose labelled arguments are checked against the
 * kernel's parameters.
 */
final class KernelModule {
  private final CUmodule module = new CUmodule();
  private final Map<String, Signature> signatures;
  private final Map<String, CUfunction> functions = new HashMap<>();
  private final Map<String, Integer> smemLimit = new HashMap<>();
  private final Map<String, Integer> clusters = new HashMap<>();
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
    signatures = KernelSignatures.load();
    for (Signature s : signatures.values()) {
      CUfunction f = new CUfunction();
      Driver.check(
          JCudaDriver.cuModuleGetFunction(f, module, s.name()),
          "cuModuleGetFunction",
          "kernel " + s.where() + " of the signature table, in moetune.fatbin");
      functions.put(s.name(), f);
    }
  }

  /** A launch of kernel {@code name} on the backend's stream, its arguments still to be added. */
  KernelLaunch kernel(String name) {
    Signature s = signatures.get(name);
    if (s == null) {
      throw new IllegalStateException(
          "kernel "
              + name
              + " is not declared in the kernel sources (MT_KERNEL in a file moetune.cu includes)");
    }
    return new KernelLaunch(this, s, stream);
  }

  /**
   * Queues kernel {@code name} (its arguments checked by {@link KernelLaunch}). {@code shapes}
   * describes the op's operands for the error message should the launch fail.
   */
  void launch(
      String name,
      String shapes,
      long gx,
      long gy,
      long gz,
      int block,
      int smem,
      CUstream stream,
      Pointer[] args) {
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
    CUfunction f = function(name, smem, shapes);
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
            f, (int) gx, (int) gy, (int) gz, block, 1, 1, smem, stream, Pointer.to(args), null),
        "cuLaunchKernel",
        ctx);
    if (syncEach) {
      Driver.check(JCudaDriver.cuStreamSynchronize(stream), "cuStreamSynchronize", "after " + ctx);
    }
  }

  /** Kernel {@code name}, allowed {@code smem} bytes of dynamic shared memory. */
  private CUfunction function(String name, int smem, String shapes) {
    CUfunction f = functions.get(name);
    if (smem > 48 * 1024 && smemLimit.getOrDefault(name, 48 * 1024) < smem) {
      Driver.check(
          JCudaDriver.cuFuncSetAttribute(
              f, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem),
          "cuFuncSetAttribute",
          "kernel " + name + " " + shapes + " (" + smem + " bytes of shared memory)");
      smemLimit.put(name, smem);
    }
    return f;
  }

  /**
   * {@link CudaContext#activeClusters}: the driver's cuOccupancyMaxActiveClusters (bound with FFM:
   * JCuda 12.6 does not have it), asked once per kernel and shared-memory size.
   */
  int activeClusters(String name, int cluster, int block, int smem) {
    if (!functions.containsKey(name)) {
      kernel(name); // fails naming the kernel
    }
    return clusters.computeIfAbsent(
        name + "/" + block + "/" + smem,
        key -> {
          CUfunction f = function(name, smem, "(occupancy)");
          int n = Occupancy.maxActiveClusters(Driver.address(f), cluster, block, smem, name);
          if (n < 1) {
            throw new CudaException(
                "kernel "
                    + name
                    + ": no cluster of "
                    + cluster
                    + " blocks of "
                    + block
                    + " threads and "
                    + smem
                    + " bytes of shared memory fits this GPU");
          }
          return n;
        });
  }

  void unload() {
    Driver.check(JCudaDriver.cuModuleUnload(module), "cuModuleUnload", "moetune.fatbin");
  }
}
