package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.CudaContext.require;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JCudaDriver;
import moetune.engine.backend.AdamWCoefficients;
import moetune.engine.backend.AttnSpec;
import moetune.engine.backend.Backend;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * The GPU backend: JCuda's driver API for the context, one stream, module loading and launches; a
 * caching allocator; cuBLAS (through FFM) for dense products; moetune's own kernels for the rest.
 * Every op is queued on the one stream (but for variant 61's lab setting, whose expert weight
 * gradients run on a second stream beside their dX: {@link #forkSide}); only {@link #download} and
 * {@link #synchronize} wait. Float tensors may be F32, BF16 or F16 in any mix; kernels accumulate
 * in float32.
 *
 * <p>This class holds the device, the stream and memory, and dispatches: each op family lives in
 * its own class named like its CPU twin and its kernel file ({@code CudaRmsNorm}, {@code
 * CpuRmsNorm}, {@code rmsnorm.cu}), given a {@link CudaContext} rather than this backend.
 */
public final class CudaBackend implements Backend {
  private static final ThreadLocal<CudaBackend> BOUND = new ThreadLocal<>();
  private static final long CUBLAS_WORKSPACE = 32L << 20;

  private final int ordinal;
  private final CUdevice device = new CUdevice();
  private final CUcontext context = new CUcontext();
  private final CUstream stream = new CUstream();
  private CUstream side; // variant 61's second stream (forkSide), made on first use
  private CUevent forked, joined;
  private final String deviceName;
  private final long totalMemory;
  private final int multiprocessors;
  private final int computeCapability;
  private final DeviceAllocator allocator = new DeviceAllocator();
  private final KernelModule kernels;
  private final Cublas cublas;
  private final DeviceAllocator.Block cublasWorkspace;
  private final CudaContext ctx; // what the op classes get instead of this backend
  private final CudaElementwise elementwise;
  private final CudaRandom random;
  private final CudaMatmul matmul;
  private final CudaEmbedding embedding;
  private final CudaRmsNorm rmsnorm;
  private final CudaRope rope;
  private final CudaSwiglu swiglu;
  private final CudaRouter router;
  private final CudaAdamW adamw;
  private final CudaAttention attention;
  private final CudaScatterMoe moe;
  private final CudaLosses losses;
  private boolean closed;
  private Backend facade = this; // what this backend's tensors report (see reportTensorsAs)

  /**
   * Opens device {@code ordinal}. tf32: let cuBLAS use TF32 tensor cores for float32 products
   * (false gives exact float32, the parity mode).
   */
  public CudaBackend(int ordinal, boolean tf32) {
    this.ordinal = ordinal;
    JCudaNatives.load();
    Driver.check(JCudaDriver.cuInit(0), "cuInit", "opening cuda:" + ordinal);
    int[] count = new int[1];
    Driver.check(
        JCudaDriver.cuDeviceGetCount(count), "cuDeviceGetCount", "opening cuda:" + ordinal);
    if (ordinal < 0 || ordinal >= count[0]) {
      throw new IllegalArgumentException(
          "cuda:" + ordinal + " does not exist: this machine has " + count[0] + " CUDA device(s)");
    }
    Driver.check(JCudaDriver.cuDeviceGet(device, ordinal), "cuDeviceGet", "cuda:" + ordinal);
    // The primary context: cuBLAS (runtime API) uses the same one, so pointers and the stream
    // agree.
    Driver.check(
        JCudaDriver.cuDevicePrimaryCtxRetain(context, device),
        "cuDevicePrimaryCtxRetain",
        "cuda:" + ordinal);
    bind();
    byte[] name = new byte[256];
    Driver.check(
        JCudaDriver.cuDeviceGetName(name, name.length, device),
        "cuDeviceGetName",
        "cuda:" + ordinal);
    int len = 0;
    while (len < name.length && name[len] != 0) len++;
    deviceName = new String(name, 0, len, java.nio.charset.StandardCharsets.US_ASCII);
    long[] mem = new long[1];
    Driver.check(JCudaDriver.cuDeviceTotalMem(mem, device), "cuDeviceTotalMem", "cuda:" + ordinal);
    totalMemory = mem[0];
    int[] sms = new int[1];
    Driver.check(
        JCudaDriver.cuDeviceGetAttribute(
            sms, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device),
        "cuDeviceGetAttribute",
        "multiprocessor count");
    multiprocessors = sms[0];
    int[] major = new int[1], minor = new int[1];
    Driver.check(
        JCudaDriver.cuDeviceGetAttribute(
            major, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device),
        "cuDeviceGetAttribute",
        "compute capability");
    Driver.check(
        JCudaDriver.cuDeviceGetAttribute(
            minor, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device),
        "cuDeviceGetAttribute",
        "compute capability");
    computeCapability = major[0] * 10 + minor[0];
    Driver.check(
        JCudaDriver.cuStreamCreate(stream, CUstream_flags.CU_STREAM_NON_BLOCKING),
        "cuStreamCreate",
        "cuda:" + ordinal);
    kernels = new KernelModule(stream);
    cublasWorkspace = allocator.allocate(CUBLAS_WORKSPACE, "cuBLAS workspace");
    cublas = new Cublas(Driver.address(stream), cublasWorkspace.address(), CUBLAS_WORKSPACE, !tf32);
    allocator.resetPeak(); // tensors' bytes are reported net of this workspace
    ctx = new CudaContext(this, stream, kernels, cublas, multiprocessors, computeCapability);
    elementwise = new CudaElementwise(ctx);
    random = new CudaRandom(ctx);
    matmul = new CudaMatmul(ctx, elementwise);
    embedding = new CudaEmbedding(ctx);
    rmsnorm = new CudaRmsNorm(ctx);
    rope = new CudaRope(ctx);
    swiglu = new CudaSwiglu(ctx);
    router = new CudaRouter(ctx);
    adamw = new CudaAdamW(ctx);
    attention = new CudaAttention(ctx);
    moe = new CudaScatterMoe(ctx);
    losses = new CudaLosses(ctx, elementwise);
  }

  // ---------------------------------------------------------------- plumbing for the op classes

  /** Makes this backend's context current on the calling thread. */
  void bind() {
    if (closed) {
      throw new IllegalStateException(name() + " is closed");
    }
    if (BOUND.get() != this) {
      Driver.check(JCudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent", name());
      BOUND.set(this);
    }
  }

  /** The context the op classes are given (tests drive CudnnAttention with it). */
  CudaContext context() {
    return ctx;
  }

  /** The attention ops (tests switch their path and read their counters). */
  CudaAttention attention() {
    return attention;
  }

  DeviceAllocator allocator() {
    return allocator;
  }

  /** The MoE ops (tests and benchmarks switch their kernel family). */
  CudaScatterMoe moe() {
    return moe;
  }

  /**
   * The system property naming, comma-separated, the ops that run their previous kernels instead of
   * the current ones ({@code rope}, {@code crossEntropy}): KernelBandwidthBench sets it for its
   * "before" rows so that old and new are timed in one run. Same numbers either way.
   */
  public static final String BEFORE_PROPERTY = "moetune.kernels.before";

  /**
   * Runs body with {@link #BEFORE_PROPERTY} set to ops (the previous kernels of those ops), then
   * restores the property as it was.
   */
  public static <T> T withPreviousKernels(String ops, java.util.function.Supplier<T> body) {
    String old = System.getProperty(BEFORE_PROPERTY);
    System.setProperty(BEFORE_PROPERTY, ops);
    try {
      return body.get();
    } finally {
      if (old == null) {
        System.clearProperty(BEFORE_PROPERTY);
      } else {
        System.setProperty(BEFORE_PROPERTY, old);
      }
    }
  }

  static boolean before(String op) {
    String v = System.getProperty(BEFORE_PROPERTY);
    return v != null && java.util.Arrays.asList(v.split(",")).contains(op);
  }

  /** The tensor as one of ours, or an IllegalArgumentException naming the op and argument. */
  CudaTensor ct(Tensor t, String op, String arg) {
    if (t == null) {
      throw new IllegalArgumentException(op + ": " + arg + " is null");
    }
    if (!(t instanceof CudaTensor c) || c.owner() != this) {
      throw new IllegalArgumentException(op + ": " + arg + " " + t + " does not live on " + name());
    }
    return c;
  }

  /** The raw cudaStream_t every op of this backend is queued on. */
  long streamAddress() {
    return Driver.address(stream);
  }

  /** The device's streaming multiprocessor count. */
  int multiprocessors() {
    return multiprocessors;
  }

  /** The stream every op of this backend is queued on (NCCL's side stream orders against it). */
  CUstream stream() {
    return stream;
  }

  /**
   * Variant 61: a second stream whose work starts after everything queued so far on the backend's
   * stream; until {@link #joinSide} no freed block is handed out again (it may still be in use on
   * the other stream). Made on first use.
   */
  CUstream forkSide() {
    bind();
    if (side == null) {
      CUstream s = new CUstream();
      Driver.check(
          JCudaDriver.cuStreamCreate(s, CUstream_flags.CU_STREAM_NON_BLOCKING),
          "cuStreamCreate",
          "the second stream of " + name());
      forked = event("fork");
      joined = event("join");
      side = s;
    }
    Driver.check(JCudaDriver.cuEventRecord(forked, stream), "cuEventRecord", "fork " + name());
    Driver.check(
        JCudaDriver.cuStreamWaitEvent(side, forked, 0), "cuStreamWaitEvent", "fork " + name());
    allocator.holdFrees();
    return side;
  }

  /**
   * Ends {@link #forkSide}: work queued on the backend's stream from here on waits for everything
   * queued on the second stream, and the blocks freed meanwhile return to the cache.
   */
  void joinSide() {
    Driver.check(JCudaDriver.cuEventRecord(joined, side), "cuEventRecord", "join " + name());
    Driver.check(
        JCudaDriver.cuStreamWaitEvent(stream, joined, 0), "cuStreamWaitEvent", "join " + name());
    allocator.releaseHeld();
  }

  private static CUevent event(String what) {
    CUevent e = new CUevent();
    Driver.check(
        JCudaDriver.cuEventCreate(e, CUevent_flags.CU_EVENT_DISABLE_TIMING),
        "cuEventCreate",
        what + " event of the second stream");
    return e;
  }

  // ---------------------------------------------------------------- identity

  @Override
  public String name() {
    return "cuda:" + ordinal;
  }

  @Override
  public String describe() {
    return String.format(
        "cuda:%d %s, %.1f GiB, %d SMs, cuBLAS %s; %s",
        ordinal,
        deviceName,
        totalMemory / (double) (1L << 30),
        multiprocessors,
        cublas.library(),
        attention.attentionPath().describe());
  }

  @Override
  public boolean supports(DType dtype) {
    return dtype != DType.I64;
  }

  // ---------------------------------------------------------------- memory

  @Override
  public Tensor empty(DType dtype, long... shape) {
    require(
        supports(dtype),
        "empty: " + dtype + " tensors are not supported on the GPU; use I32 indices");
    bind();
    long bytes = HostTensor.numel(shape) * dtype.bytes();
    return new CudaTensor(
        this,
        dtype,
        shape,
        allocator.allocate(bytes, "empty " + dtype + java.util.Arrays.toString(shape)),
        0,
        true);
  }

  @Override
  public Tensor upload(HostTensor host, DType dtype) {
    Tensor t = empty(dtype, host.shape());
    copyFromHost(host, t);
    return t;
  }

  @Override
  public void copyFromHost(HostTensor host, Tensor dst) {
    CudaTensor d = ct(dst, "copyFromHost", "dst");
    require(
        host.numel() == d.numel(),
        "copyFromHost: host "
            + host
            + " has "
            + host.numel()
            + " elements, dst "
            + d.describe()
            + " "
            + d.numel());
    HostTensor h = host.to(d.dtype());
    if (d.numel() == 0) {
      return;
    }
    ByteBuffer src = h.bytes();
    ByteBuffer direct = ByteBuffer.allocateDirect(src.remaining()).order(ByteOrder.LITTLE_ENDIAN);
    direct.put(src).flip();
    bind();
    // Pageable source: the driver stages it before returning, so the buffer may be dropped now.
    Driver.check(
        JCudaDriver.cuMemcpyHtoDAsync(d.pointer(), Pointer.to(direct), d.byteSize(), stream),
        "cuMemcpyHtoDAsync",
        "copyFromHost " + d.describe());
  }

  @Override
  public HostTensor download(Tensor t) {
    CudaTensor c = ct(t, "download", "t");
    bind();
    ByteBuffer direct =
        ByteBuffer.allocateDirect((int) Math.max(1, c.byteSize())).order(ByteOrder.LITTLE_ENDIAN);
    if (c.numel() > 0) {
      Driver.check(
          JCudaDriver.cuMemcpyDtoHAsync(Pointer.to(direct), c.pointer(), c.byteSize(), stream),
          "cuMemcpyDtoHAsync",
          "download " + c.describe());
    }
    Driver.check(
        JCudaDriver.cuStreamSynchronize(stream), "cuStreamSynchronize", "download " + c.describe());
    ByteBuffer heap = ByteBuffer.allocate((int) c.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
    direct.limit((int) c.byteSize());
    heap.put(direct).flip();
    return new HostTensor(c.dtype(), c.shape(), heap);
  }

  @Override
  public void copy(Tensor src, Tensor dst) {
    elementwise.copy(src, dst);
  }

  @Override
  public void fill(Tensor t, float value) {
    elementwise.fill(t, value);
  }

  @Override
  public void randomNormal(Tensor t, long seed, float std) {
    random.randomNormal(t, seed, std);
  }

  /**
   * Milliseconds that the work queued by {@code work} takes on the stream, measured with CUDA
   * events recorded around it (for benchmarks; waits for the second event).
   */
  public double timeMs(Runnable work) {
    bind();
    jcuda.driver.CUevent start = new jcuda.driver.CUevent(), end = new jcuda.driver.CUevent();
    Driver.check(JCudaDriver.cuEventCreate(start, 0), "cuEventCreate", "timeMs");
    Driver.check(JCudaDriver.cuEventCreate(end, 0), "cuEventCreate", "timeMs");
    try {
      Driver.check(JCudaDriver.cuEventRecord(start, stream), "cuEventRecord", "timeMs");
      work.run();
      Driver.check(JCudaDriver.cuEventRecord(end, stream), "cuEventRecord", "timeMs");
      Driver.check(JCudaDriver.cuEventSynchronize(end), "cuEventSynchronize", "timeMs");
      float[] ms = new float[1];
      Driver.check(JCudaDriver.cuEventElapsedTime(ms, start, end), "cuEventElapsedTime", "timeMs");
      return ms[0];
    } finally {
      JCudaDriver.cuEventDestroy(start);
      JCudaDriver.cuEventDestroy(end);
    }
  }

  /** The attention kernels in use: "own" (tensor-core where they apply) or "scalar". */
  public String attentionPath() {
    return attention.attentionPath().name().toLowerCase(java.util.Locale.ROOT);
  }

  /**
   * One line for a run's log: which attention kernels every layer of a model with this activation
   * dtype and head dim runs on, and why.
   */
  public String attentionPlan(DType activations, int headDim) {
    return attention.attentionPlan(activations, headDim);
  }

  /**
   * One line for a run's log: the device memory cuDNN's attention plans hold for B rows of T tokens
   * of this model's shape (built now, and reused by the run), or null when attention does not run
   * on cuDNN.
   */
  public String attentionScratch(
      int batch, int seqLen, int heads, int kvHeads, int headDim, DType activations) {
    bind();
    return attention.attentionScratch(batch, seqLen, heads, kvHeads, headDim, activations);
  }

  /**
   * How many attention calls (forward and backward, counted apart) ran on the tensor-core kernels
   * so far; the others ran on the scalar ones. Tests use it to see which path a model took.
   */
  public long ownAttentionCalls() {
    return attention.ownAttentionCalls();
  }

  /** How many attention calls (forward and backward, counted apart) ran on cuDNN so far. */
  public long cudnnAttentionCalls() {
    return attention.cudnnAttentionCalls();
  }

  /** The cuDNN library the cuDNN attention path loaded, or why it has none (yet). */
  public String cudnnStatus() {
    return attention.cudnnStatus();
  }

  /** Switches the attention kernels (own, cudnn or scalar, as MOETUNE_ATTENTION takes them). */
  public void attentionPath(String path) {
    attention.attentionPath(CudaAttention.AttentionPath.fromEnv(path));
  }

  @Override
  public void synchronize() {
    bind();
    Driver.check(
        JCudaDriver.cuStreamSynchronize(stream), "cuStreamSynchronize", "synchronize " + name());
  }

  @Override
  public long bytesInUse() {
    return allocator.bytesInUse() - CUBLAS_WORKSPACE;
  }

  @Override
  public long peakBytes() {
    return allocator.peakBytes() - CUBLAS_WORKSPACE;
  }

  @Override
  public void resetPeak() {
    allocator.resetPeak();
  }

  @Override
  public void reportTensorsAs(Backend facade) {
    this.facade = facade == null ? this : facade;
  }

  /** The backend this backend's tensors report (itself unless wrapped). */
  Backend facade() {
    return facade;
  }

  @Override
  public moetune.engine.backend.QueueClock newQueueClock() {
    return new CudaQueueClock(this, stream);
  }

  /** Device memory in use by every process, as the driver reports it (total minus free). */
  public long driverBytesUsed() {
    bind();
    long[] free = new long[1], total = new long[1];
    Driver.check(JCudaDriver.cuMemGetInfo(free, total), "cuMemGetInfo", name());
    return total[0] - free[0];
  }

  /** The device's memory in bytes. */
  public long totalMemory() {
    return totalMemory;
  }

  /** Bytes the allocator holds from the driver (in use plus cached). */
  public long reservedBytes() {
    return allocator.reservedBytes();
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    bind();
    Driver.check(JCudaDriver.cuStreamSynchronize(stream), "cuStreamSynchronize", "close " + name());
    if (side != null) { // every fork was joined, so the side stream is idle by now
      JCudaDriver.cuEventDestroy(forked);
      JCudaDriver.cuEventDestroy(joined);
      Driver.check(JCudaDriver.cuStreamDestroy(side), "cuStreamDestroy", name());
    }
    attention.close();
    cublas.close();
    kernels.unload();
    allocator.releaseCache();
    Driver.check(JCudaDriver.cuStreamDestroy(stream), "cuStreamDestroy", name());
    closed = true;
    BOUND.remove();
    // Releasing the primary context frees every allocation still held by live tensors.
    Driver.check(
        JCudaDriver.cuDevicePrimaryCtxRelease(device), "cuDevicePrimaryCtxRelease", name());
  }

  // ---------------------------------------------------------------- elementwise, matmul

  @Override
  public void add(Tensor a, Tensor b, Tensor out) {
    elementwise.add(a, b, out);
  }

  @Override
  public void axpy(float alpha, Tensor src, Tensor dst) {
    elementwise.axpy(alpha, src, dst);
  }

  @Override
  public void scale(Tensor x, float s) {
    elementwise.scale(x, s);
  }

  @Override
  public void matmul(
      Tensor a, boolean transA, Tensor b, boolean transB, Tensor c, float alpha, float beta) {
    matmul.matmul(a, transA, b, transB, c, alpha, beta);
  }

  // ---------------------------------------------------------------- delegated ops

  @Override
  public void embeddingForward(Tensor ids, Tensor table, Tensor out) {
    embedding.forward(ids, table, out);
  }

  @Override
  public void embeddingBackward(Tensor ids, Tensor dOut, Tensor dTable) {
    embedding.backward(ids, dOut, dTable);
  }

  @Override
  public void rmsnormForward(
      Tensor residual, Tensor delta, Tensor w, float eps, Tensor out, Tensor rstd) {
    rmsnorm.forward(residual, delta, w, eps, out, rstd);
  }

  @Override
  public void rmsnormBackward(Tensor dOut, Tensor x, Tensor w, Tensor rstd, Tensor dx, Tensor dw) {
    rmsnorm.backward(dOut, x, w, rstd, dx, dw);
  }

  @Override
  public void ropeForward(Tensor x, Tensor positions, float theta) {
    rope.apply(x, positions, theta, 1f, "ropeForward");
  }

  @Override
  public void ropeBackward(Tensor dx, Tensor positions, float theta) {
    rope.apply(dx, positions, theta, -1f, "ropeBackward");
  }

  @Override
  public void attentionForward(
      Tensor q, Tensor k, Tensor v, AttnSpec spec, Tensor out, Tensor lse) {
    attention.attentionForward(q, k, v, spec, out, lse);
  }

  @Override
  public void attentionBackward(
      Tensor dOut,
      Tensor q,
      Tensor k,
      Tensor v,
      Tensor out,
      Tensor lse,
      AttnSpec spec,
      Tensor dq,
      Tensor dk,
      Tensor dv) {
    attention.attentionBackward(dOut, q, k, v, out, lse, spec, dq, dk, dv);
  }

  @Override
  public void routerTopK(Tensor logits, int k, Tensor probs, Tensor topWeights, Tensor topIdx) {
    router.topK(logits, k, probs, topWeights, topIdx);
  }

  @Override
  public void routerBackward(
      Tensor dTopWeights, Tensor dProbs, Tensor probs, Tensor topIdx, Tensor dLogits) {
    router.backward(dTopWeights, dProbs, probs, topIdx, dLogits);
  }

  @Override
  public void flattenSortCount(
      Tensor topIdx,
      int numExperts,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      Tensor expertOffsets) {
    router.flattenSortCount(
        topIdx, numExperts, sortedExpertIdxs, sortedScatteredIdxs, expertOffsets);
  }

  @Override
  public void scatter2scatter(
      Tensor x,
      Tensor w,
      Tensor bias,
      boolean transW,
      int fanOut,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      boolean groupedIn,
      boolean groupedOut,
      Tensor y) {
    moe.scatter2scatter(
        x,
        w,
        bias,
        transW,
        fanOut,
        sortedExpertIdxs,
        sortedScatteredIdxs,
        groupedIn,
        groupedOut,
        y);
  }

  @Override
  public void scatter2scatterSwiglu(
      Tensor x,
      Tensor w,
      int fanOut,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      boolean groupedIn,
      Tensor h,
      Tensor a) {
    if (!moe.scatter2scatterSwiglu(
        x, w, fanOut, sortedExpertIdxs, sortedScatteredIdxs, groupedIn, h, a)) {
      Backend.super.scatter2scatterSwiglu(
          x, w, fanOut, sortedExpertIdxs, sortedScatteredIdxs, groupedIn, h, a);
    }
  }

  @Override
  public void scatter2scatterSwigluBackward(
      Tensor dY,
      Tensor w,
      int fanOut,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      boolean groupedIn,
      Tensor h,
      Tensor a,
      Tensor gates,
      Tensor dGates,
      Tensor dH) {
    if (!moe.scatter2scatterSwigluBackward(
        dY, w, fanOut, sortedExpertIdxs, sortedScatteredIdxs, groupedIn, h, a, gates, dGates, dH)) {
      Backend.super.scatter2scatterSwigluBackward(
          dY, w, fanOut, sortedExpertIdxs, sortedScatteredIdxs, groupedIn, h, a, gates, dGates, dH);
    }
  }

  @Override
  public void gateRowsBackward(
      Tensor rows, Tensor x, int xFan, Tensor gateIdx, Tensor gates, Tensor dGates) {
    CudaGateRows.backward(ctx, rows, x, xFan, gateIdx, gates, dGates);
  }

  @Override
  public void group(Tensor x, Tensor sortedScatteredIdxs, int fanOut, Tensor gates, Tensor out) {
    moe.group(x, sortedScatteredIdxs, fanOut, gates, out);
  }

  @Override
  public void groupXtY(Tensor x, Tensor dy, Tensor expertOffsets, Tensor dW, Tensor db) {
    moe.groupXtY(x, dy, expertOffsets, dW, db, true);
  }

  @Override
  public void groupXtY(
      Tensor x, Tensor dy, Tensor expertOffsets, Tensor dW, Tensor db, boolean accumulate) {
    moe.groupXtY(x, dy, expertOffsets, dW, db, accumulate);
  }

  @Override
  public void combine(Tensor expanded, Tensor gates, int k, Tensor y) {
    moe.combine(expanded, gates, k, y);
  }

  @Override
  public void combineGatesBackward(Tensor dY, Tensor expanded, int k, Tensor dGates) {
    moe.combineGatesBackward(dY, expanded, k, dGates);
  }

  @Override
  public boolean dwBesideDx() {
    return moe.besideOn();
  }

  @Override
  public void runDwBesideDx(boolean swiglu, Runnable dw, Runnable dx) {
    moe.beside(swiglu, dw, dx);
  }

  @Override
  public void groupGatesBackward(
      Tensor dY,
      Tensor sortedScatteredIdxs,
      int k,
      Tensor gates,
      Tensor expanded,
      Tensor dGates,
      Tensor out) {
    if (moe.lab().groupGatesFused()) {
      moe.groupGatesBackward(dY, sortedScatteredIdxs, k, gates, expanded, dGates, out);
    } else {
      Backend.super.groupGatesBackward(dY, sortedScatteredIdxs, k, gates, expanded, dGates, out);
    }
  }

  @Override
  public void swigluForward(Tensor h, Tensor a) {
    swiglu.forward(h, a);
  }

  @Override
  public void swigluBackward(Tensor dA, Tensor h, Tensor dH) {
    swiglu.backward(dA, h, dH);
  }

  @Override
  public void swigluFactors(Tensor h, Tensor a) {
    swiglu.factors(h, a);
  }

  @Override
  public void swigluBackwardFactors(Tensor dA, Tensor p, Tensor dH) {
    swiglu.backwardFactors(dA, p, dH);
  }

  @Override
  public boolean swigluSavesFactors() {
    return moe.savesFactors();
  }

  @Override
  public void scatter2scatterSwigluFactors(
      Tensor x,
      Tensor w,
      int fanOut,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      boolean groupedIn,
      Tensor p,
      Tensor a) {
    if (!moe.scatter2scatterSwigluFactors(
        x, w, fanOut, sortedExpertIdxs, sortedScatteredIdxs, groupedIn, p, a)) {
      Backend.super.scatter2scatterSwigluFactors(
          x, w, fanOut, sortedExpertIdxs, sortedScatteredIdxs, groupedIn, p, a);
    }
  }

  @Override
  public void scatter2scatterSwigluFactorsBackward(
      Tensor dYGrouped,
      Tensor w,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      Tensor p,
      Tensor dH) {
    if (!moe.scatter2scatterSwigluFactorsBackward(
        dYGrouped, w, sortedExpertIdxs, sortedScatteredIdxs, p, dH)) {
      Backend.super.scatter2scatterSwigluFactorsBackward(
          dYGrouped, w, sortedExpertIdxs, sortedScatteredIdxs, p, dH);
    }
  }

  @Override
  public void crossEntropy(
      Tensor logits, Tensor targets, Tensor losses, Tensor dLogits, float dScale) {
    this.losses.crossEntropy(logits, targets, losses, dLogits, dScale);
  }

  @Override
  public void loadBalancingLoss(
      Tensor probs, Tensor topIdx, Tensor rowMask, Tensor lossOut, Tensor dProbs, float dScale) {
    losses.loadBalancingLoss(probs, topIdx, rowMask, lossOut, dProbs, dScale);
  }

  @Override
  public void expertLoadStats(Tensor probs, Tensor topIdx, Tensor rowMask, Tensor acc) {
    losses.expertLoadStats(probs, topIdx, rowMask, acc);
  }

  @Override
  public void routerZLoss(
      Tensor logits, Tensor rowMask, Tensor lossOut, Tensor dLogits, float dScale) {
    losses.routerZLoss(logits, rowMask, lossOut, dLogits, dScale);
  }

  @Override
  public void sum(Tensor x, float scale, Tensor out) {
    losses.sum(x, scale, out);
  }

  @Override
  public void sumSquares(Tensor x, Tensor acc) {
    adamw.sumSquares(x, acc);
  }

  @Override
  public void clipByNorm(Tensor grad, Tensor sumSq, float maxNorm) {
    adamw.clipByNorm(grad, sumSq, maxNorm);
  }

  @Override
  public void adamwStep(
      Tensor param, Tensor grad, Tensor m, Tensor v, AdamWCoefficients c, Tensor lowPrecision) {
    adamw.adamwStep(param, grad, m, v, c, lowPrecision);
  }
}
