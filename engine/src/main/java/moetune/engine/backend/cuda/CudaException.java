package moetune.engine.backend.cuda;

/**
 * A failed CUDA driver or cuBLAS call: names the call, the kernel or op it served, the shapes, and
 * the library's own error name and message.
 */
public final class CudaException extends RuntimeException {
  private final String call;
  private final int code;

  public CudaException(String call, int code, String errorText, String context) {
    super(
        call
            + " failed with "
            + errorText
            + " ("
            + code
            + ")"
            + (context.isEmpty() ? "" : " in " + context));
    this.call = call;
    this.code = code;
  }

  public CudaException(String message) {
    super(message);
    this.call = "";
    this.code = -1;
  }

  /** The driver or cuBLAS function that failed, e.g. "cuLaunchKernel". */
  public String call() {
    return call;
  }

  /** The CUresult or cublasStatus_t value. */
  public int code() {
    return code;
  }
}
