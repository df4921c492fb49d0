package moetune.engine.backend.cuda;

import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;
import moetune.kernels.KernelImage;

/** Says whether a CUDA device can be used, and if not why, without throwing. */
public final class CudaProbe {
  private CudaProbe() {}

  /** null when cuda:ordinal is usable (driver, device, kernels, cuBLAS); otherwise the reason. */
  public static String unavailableReason(int ordinal) {
    if (!KernelImage.isBuilt()) {
      return "the CUDA kernels were not built (no nvcc when moetune was built)";
    }
    int[] count = new int[1];
    try {
      JCudaNatives.load();
      JCudaDriver.setExceptionsEnabled(false);
      int rc = JCudaDriver.cuInit(0);
      if (rc != CUresult.CUDA_SUCCESS) {
        return "the CUDA driver did not initialise (" + CUresult.stringFor(rc) + ")";
      }
      rc = JCudaDriver.cuDeviceGetCount(count);
      if (rc != CUresult.CUDA_SUCCESS) {
        return "cuDeviceGetCount failed (" + CUresult.stringFor(rc) + ")";
      }
    } catch (LinkageError e) {
      // JCuda's message carries every nested load attempt's stack trace: keep its first line.
      String why = String.valueOf(e.getMessage()).lines().findFirst().orElse("").strip();
      return "no CUDA driver could be loaded (" + why + ")";
    }
    if (count[0] == 0) {
      return "no CUDA device was found";
    }
    if (ordinal < 0 || ordinal >= count[0]) {
      return "cuda:"
          + ordinal
          + " does not exist (this machine has "
          + count[0]
          + " CUDA device(s))";
    }
    try {
      Cublas.find();
    } catch (CudaException e) {
      return e.getMessage();
    }
    return null;
  }
}
