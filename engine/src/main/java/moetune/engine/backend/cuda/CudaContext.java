package moetune.engine.backend.cuda;

import jcuda.driver.CUstream;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * What the CUDA op classes ({@code CudaRmsNorm}, {@code CudaRouter}, ...) need from the device, and
 * nothing else: the stream, the kernel module's checked launches ({@link #kernel}), scratch tensors
 * from the caching allocator, the cuBLAS handle, and the device's size. The backend builds one and
 * hands it to each op class; the op classes never see {@link CudaBackend} itself, so they cannot
 * call each other through it.
 */
final class CudaContext {
  private final CudaBackend backend; // owns the tensors; used only to allocate and check them
  private final CUstream stream;
  private final KernelModule kernels;
  private final Cublas cublas;
  private final int multiprocessors;
  private final int computeCapability;
  // variant 61 (beside): while set, launches and the stream go to the second stream, and
  // persistent kernels size their grids for smBudget multiprocessors (0: all of them)
  private CUstream launchStream;
  private int smBudget;

  CudaContext(
      CudaBackend backend,
      CUstream stream,
      KernelModule kernels,
      Cublas cublas,
      int multiprocessors,
      int computeCapability) {
    this.backend = backend;
    this.stream = stream;
    this.kernels = kernels;
    this.cublas = cublas;
    this.multiprocessors = multiprocessors;
    this.computeCapability = computeCapability;
  }

  /** The device's name in messages ({@code cuda:0}). */
  String name() {
    return backend.name();
  }

  /** Makes the device's context current on the calling thread. */
  void bind() {
    backend.bind();
  }

  /** A checked launch of kernel {@code name} on the stream ({@link KernelLaunch}). */
  KernelLaunch kernel(String name) {
    backend.bind();
    return launchStream == null ? kernels.kernel(name) : kernels.kernel(name).stream(launchStream);
  }

  /**
   * The stream ops are queued on: the backend's one stream, or during the first half of {@link
   * #beside} the second one.
   */
  CUstream stream() {
    return launchStream == null ? stream : launchStream;
  }

  /** The raw cudaStream_t of {@link #stream} (cuBLAS, cuDNN and NCCL take it). */
  long streamAddress() {
    return Driver.address(stream());
  }

  /** cuBLAS, bound to the stream and its workspace. */
  Cublas cublas() {
    backend.bind();
    require(launchStream == null, "cuBLAS is bound to the backend's stream: not on the second one");
    return cublas;
  }

  /**
   * Variant 61: queues {@code first} on a second stream, its persistent kernels sized for {@code
   * firstSms} multiprocessors, then {@code second} on the backend's stream sized for the others, so
   * that the two run at once on their own parts of the device. The second stream starts after
   * everything queued before this call and the backend's stream continues after both. {@code first}
   * may queue kernels, fills and copies only (no cuBLAS, no download), and the two must not write
   * what the other reads.
   */
  void beside(int firstSms, Runnable first, Runnable second) {
    require(
        launchStream == null && firstSms > 0 && firstSms < multiprocessors,
        "beside: " + firstSms + " of " + multiprocessors + " multiprocessors, or nested");
    CUstream side = backend.forkSide();
    try {
      launchStream = side;
      smBudget = firstSms;
      try {
        first.run();
      } finally {
        launchStream = null;
      }
      smBudget = multiprocessors - firstSms;
      second.run();
    } finally {
      smBudget = 0;
      backend.joinSide();
    }
  }

  /**
   * The device's streaming multiprocessor count (persistent kernels launch a few per SM); during
   * {@link #beside} the part of them the current half runs on.
   */
  int multiprocessors() {
    return smBudget > 0 ? smBudget : multiprocessors;
  }

  /**
   * How many clusters of {@code cluster} blocks of kernel {@code name} (its cluster size compiled
   * in) can run at once with {@code block} threads and {@code smem} bytes of dynamic shared memory
   * a block: a persistent cluster kernel's grid (cuOccupancyMaxActiveClusters).
   */
  int activeClusters(String name, int cluster, int block, int smem) {
    backend.bind();
    int active = kernels.activeClusters(name, cluster, block, smem);
    return smBudget > 0 ? Math.max(1, Math.min(active, smBudget / cluster)) : active;
  }

  /** Compute capability as major * 10 + minor (90 on Hopper, where the sm_90a kernels run). */
  int computeCapability() {
    return computeCapability;
  }

  /** A scratch tensor from the caching allocator, contents undefined. */
  Tensor empty(DType dtype, long... shape) {
    return backend.empty(dtype, shape);
  }

  /** A scratch tensor of zeros. */
  Tensor zeros(DType dtype, long... shape) {
    return backend.zeros(dtype, shape);
  }

  /** Sets every element of t to value (the backend's fill). */
  void fill(Tensor t, float value) {
    backend.fill(t, value);
  }

  /** A device copy of host data in dtype (the backend's upload). */
  Tensor upload(moetune.engine.tensor.HostTensor host, DType dtype) {
    return backend.upload(host, dtype);
  }

  /** A host copy of t (the backend's download; synchronises the stream). */
  moetune.engine.tensor.HostTensor download(Tensor t) {
    require(launchStream == null, "download waits for the backend's stream: not on the second one");
    return backend.download(t);
  }

  /** A grid for a grid-stride loop over n elements with 256 threads per block. */
  long gridFor(long n) {
    return Math.max(1, Math.min((n + 255) / 256, (long) multiprocessors * 16));
  }

  /** The tensor as one of this device's, or an IllegalArgumentException naming the op and arg. */
  CudaTensor ct(Tensor t, String op, String arg) {
    return backend.ct(t, op, arg);
  }

  /** Device address of t, or 0 (a null pointer) for an absent optional tensor. */
  long ptr(Tensor t, String op, String arg) {
    return t == null ? 0L : ct(t, op, arg).address();
  }

  /** The kernels' dtype code of a float tensor (0 F32, 1 BF16, 2 F16); 0 for an absent one. */
  static int dt(Tensor t, String op, String arg) {
    if (t == null) {
      return 0;
    }
    return switch (t.dtype()) {
      case F32 -> 0;
      case BF16 -> 1;
      case F16 -> 2;
      default ->
          throw new IllegalArgumentException(
              op + ": " + arg + " must be a float tensor, got " + t.describe());
    };
  }

  static void require(boolean ok, String message) {
    if (!ok) {
      throw new IllegalArgumentException(message);
    }
  }

  static void requireDtype(Tensor t, DType d, String op, String arg) {
    require(t.dtype() == d, op + ": " + arg + " must be " + d + ", got " + t.describe());
  }

  /** Threads for a one-block-per-row kernel over d columns: a multiple of 32, at most 1024. */
  static int blockFor(long d) {
    long t = Math.min(1024, Math.max(32, (d + 3) / 4));
    return (int) ((t + 31) / 32 * 32);
  }
}
