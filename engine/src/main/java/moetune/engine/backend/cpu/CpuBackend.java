package moetune.engine.backend.cpu;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import moetune.engine.backend.AdamWCoefficients;
import moetune.engine.backend.AttnSpec;
import moetune.engine.backend.Backend;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * The float32 CPU backend: plain, readable, multithreaded Java, and the oracle that every GPU op is
 * tested against. Tensors are F32 ({@code float[]}) or I32 ({@code int[]}); BF16 and F16 host data
 * is converted to F32 on upload, and int64 ids to I32 (they must fit).
 *
 * <p>Each op family lives in its own class (CpuMatmul, CpuAttention, CpuScatterMoe, ...); this
 * class owns the thread pool and the memory accounting and dispatches. Work runs synchronously:
 * when a method returns, its outputs are written. Results are bit-identical for any thread count
 * (see {@link Parallel}).
 */
public final class CpuBackend implements Backend {
  private final Parallel par;
  private final CpuMemory memory = new CpuMemory();
  private Backend facade = this; // what this backend's tensors report (see reportTensorsAs)
  private final CpuElementwise elementwise;
  private final CpuMatmul matmul;
  private final CpuEmbedding embedding;
  private final CpuRmsNorm rmsnorm;
  private final CpuRope rope;
  private final CpuAttention attention;
  private final CpuRouter router;
  private final CpuScatterMoe moe;
  private final CpuLosses losses;
  private final CpuRandom random;
  private final CpuSwiglu swiglu;
  private final CpuAdamW adamw;

  /** A backend using every available core. */
  public CpuBackend() {
    this(Runtime.getRuntime().availableProcessors());
  }

  /** A backend using {@code threads} worker threads (1 runs everything on the caller). */
  public CpuBackend(int threads) {
    par = new Parallel(threads);
    elementwise = new CpuElementwise(par);
    matmul = new CpuMatmul(par);
    embedding = new CpuEmbedding(par);
    rmsnorm = new CpuRmsNorm(par);
    rope = new CpuRope(par);
    attention = new CpuAttention(par);
    router = new CpuRouter(par);
    moe = new CpuScatterMoe(par);
    losses = new CpuLosses(par);
    random = new CpuRandom(par);
    swiglu = new CpuSwiglu(par);
    adamw = new CpuAdamW(par, losses);
  }

  /** The message for a dtype the CPU cannot hold. */
  static String unsupported(DType dtype) {
    if (dtype == DType.BF16 || dtype == DType.F16) {
      return "CpuBackend: "
          + dtype.safetensorsName().toLowerCase(java.util.Locale.ROOT)
          + " compute needs --device cuda; the CPU backend is float32";
    }
    return "CpuBackend: "
        + dtype
        + " tensors are not supported; the CPU backend holds F32 and I32"
        + " (upload int64 ids with upload(host, DType.I32))";
  }

  CpuMemory memory() {
    return memory;
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
  public String name() {
    return "cpu";
  }

  @Override
  public String describe() {
    return "cpu: float32, "
        + par.threads()
        + " threads, Java heap max "
        + Runtime.getRuntime().maxMemory() / (1 << 20)
        + " MiB";
  }

  @Override
  public boolean supports(DType dtype) {
    return dtype == DType.F32 || dtype == DType.I32;
  }

  // ---------------------------------------------------------------- memory

  /**
   * A new tensor whose contents are undefined, as on the GPU: F32 elements are NaN and I32 elements
   * {@link Integer#MIN_VALUE}, so code that reads memory it never wrote (a gradient buffer taken
   * from empty() instead of zeros(), an output an op left half-written) fails visibly on the CPU
   * instead of silently reading zeros.
   */
  @Override
  public CpuTensor empty(DType dtype, long... shape) {
    CpuTensor t = allocate(dtype, shape);
    if (dtype == DType.F32) {
      java.util.Arrays.fill(t.floats(), Float.NaN);
    } else {
      java.util.Arrays.fill(t.ints(), Integer.MIN_VALUE);
    }
    return t;
  }

  /** A new tensor of zeros (Java arrays start zeroed: no fill pass). */
  @Override
  public CpuTensor zeros(DType dtype, long... shape) {
    return allocate(dtype, shape);
  }

  private CpuTensor allocate(DType dtype, long[] shape) {
    if (!supports(dtype)) {
      throw new IllegalArgumentException(unsupported(dtype));
    }
    return new CpuTensor(this, dtype, shape);
  }

  /**
   * A new tensor from host data. Float host data (F32, BF16, F16) becomes F32 exactly; I32 and I64
   * host data becomes I32 (an int64 value outside the int range fails).
   */
  @Override
  public CpuTensor upload(HostTensor host, DType dtype) {
    checkConversion("upload", host, dtype);
    CpuTensor t = allocate(dtype, host.shape());
    write(host, t);
    return t;
  }

  @Override
  public void copyFromHost(HostTensor host, Tensor dstt) {
    CpuTensor dst = Args.cpu("copyFromHost", "dst", dstt);
    checkConversion("copyFromHost", host, dst.dtype());
    Args.numel("copyFromHost", "dst", dst, host.numel());
    write(host, dst);
  }

  @Override
  public HostTensor download(Tensor tt) {
    CpuTensor t = Args.cpu("download", "t", tt);
    ByteBuffer b =
        ByteBuffer.allocate(Math.multiplyExact(t.size(), 4)).order(ByteOrder.LITTLE_ENDIAN);
    if (t.dtype() == DType.F32) {
      b.asFloatBuffer().put(t.floats(), t.offset(), t.size());
    } else {
      b.asIntBuffer().put(t.ints(), t.offset(), t.size());
    }
    return new HostTensor(t.dtype(), t.shape(), b);
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

  /** Nothing to wait for: every op has finished when it returns. */
  @Override
  public void synchronize() {}

  @Override
  public long bytesInUse() {
    return memory.inUse();
  }

  @Override
  public long peakBytes() {
    return memory.peak();
  }

  @Override
  public void resetPeak() {
    memory.resetPeak();
  }

  /** Stops the worker threads. Tensors stay readable; ops fail afterwards. */
  @Override
  public void close() {
    par.close();
  }

  private void checkConversion(String op, HostTensor host, DType dtype) {
    if (!supports(dtype)) {
      throw new IllegalArgumentException(unsupported(dtype));
    }
    if (host.dtype().isFloating() != dtype.isFloating()) {
      throw new IllegalArgumentException(
          op
              + ": cannot convert host "
              + host
              + " to "
              + dtype
              + " (float to float or int to int)");
    }
  }

  private static void write(HostTensor host, CpuTensor dst) {
    if (dst.dtype() == DType.F32) {
      float[] v = host.toFloatArray();
      System.arraycopy(v, 0, dst.floats(), dst.offset(), v.length);
    } else {
      int[] v;
      try {
        v = host.toIntArray();
      } catch (ArithmeticException e) {
        throw new IllegalArgumentException(
            "CpuBackend: " + host + " holds a value outside the int32 range; ids must fit in I32",
            e);
      }
      System.arraycopy(v, 0, dst.ints(), dst.offset(), v.length);
    }
  }

  // ---------------------------------------------------------------- elementwise

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

  // ---------------------------------------------------------------- dense products

  @Override
  public void matmul(
      Tensor a, boolean transA, Tensor b, boolean transB, Tensor c, float alpha, float beta) {
    matmul.matmul(a, transA, b, transB, c, alpha, beta);
  }

  // ---------------------------------------------------------------- embedding

  @Override
  public void embeddingForward(Tensor ids, Tensor table, Tensor out) {
    embedding.forward(ids, table, out);
  }

  @Override
  public void embeddingBackward(Tensor ids, Tensor dOut, Tensor dTable) {
    embedding.backward(ids, dOut, dTable);
  }

  // ---------------------------------------------------------------- RMSNorm

  @Override
  public void rmsnormForward(
      Tensor residual, Tensor delta, Tensor w, float eps, Tensor out, Tensor rstd) {
    rmsnorm.forward(residual, delta, w, eps, out, rstd);
  }

  @Override
  public void rmsnormBackward(Tensor dOut, Tensor x, Tensor w, Tensor rstd, Tensor dx, Tensor dw) {
    rmsnorm.backward(dOut, x, w, rstd, dx, dw);
  }

  // ---------------------------------------------------------------- rotary embedding

  @Override
  public void ropeForward(Tensor x, Tensor positions, float theta) {
    rope.apply("ropeForward", x, positions, theta, false);
  }

  @Override
  public void ropeBackward(Tensor dx, Tensor positions, float theta) {
    rope.apply("ropeBackward", dx, positions, theta, true);
  }

  // ---------------------------------------------------------------- attention

  @Override
  public void attentionForward(
      Tensor q, Tensor k, Tensor v, AttnSpec spec, Tensor out, Tensor lse) {
    attention.forward(q, k, v, spec, out, lse);
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
    attention.backward(dOut, q, k, v, out, lse, spec, dq, dk, dv);
  }

  // ---------------------------------------------------------------- router

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

  // ---------------------------------------------------------------- ScatterMoE kernels

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
  public void gateRowsBackward(
      Tensor rows, Tensor x, int xFan, Tensor gateIdx, Tensor gates, Tensor dGates) {
    CpuGateRows.backward(par, rows, x, xFan, gateIdx, gates, dGates);
  }

  @Override
  public void group(Tensor x, Tensor sortedScatteredIdxs, int fanOut, Tensor gates, Tensor out) {
    moe.group(x, sortedScatteredIdxs, fanOut, gates, out);
  }

  @Override
  public void groupXtY(Tensor x, Tensor dy, Tensor expertOffsets, Tensor dW, Tensor db) {
    moe.groupXtY(x, dy, expertOffsets, dW, db);
  }

  @Override
  public void combine(Tensor expanded, Tensor gates, int k, Tensor y) {
    moe.combine(expanded, gates, k, y);
  }

  @Override
  public void combineGatesBackward(Tensor dY, Tensor expanded, int k, Tensor dGates) {
    moe.combineGatesBackward(dY, expanded, k, dGates);
  }

  // ---------------------------------------------------------------- SwiGLU

  @Override
  public void swigluForward(Tensor h, Tensor a) {
    swiglu.forward(h, a);
  }

  @Override
  public void swigluBackward(Tensor dA, Tensor h, Tensor dH) {
    swiglu.backward(dA, h, dH);
  }

  private volatile boolean swigluFactors = true;

  /**
   * Whether the expert MLP on this backend saves SwiGLU's factors (variant 56, as the GPU's AUTO;
   * default true) or h.
   */
  public void swigluSavesFactors(boolean on) {
    swigluFactors = on;
  }

  @Override
  public boolean swigluSavesFactors() {
    return swigluFactors;
  }

  private volatile boolean dwBesideDx;

  /**
   * Whether the expert products' backward asks for each weight gradient and its dX in one call
   * ({@link #swigluFactorsBackwardBesideDw}, {@link #scatter2scatterBesideDw}, which this backend
   * runs as the two calls in turn; default false, as on a GPU without variant 61), so that tests
   * reach those paths on the CPU.
   */
  public void dwBesideDx(boolean on) {
    dwBesideDx = on;
  }

  @Override
  public boolean dwBesideDx() {
    return dwBesideDx;
  }

  @Override
  public void swigluFactors(Tensor h, Tensor a) {
    swiglu.factors(h, a);
  }

  @Override
  public void swigluBackwardFactors(Tensor dA, Tensor p, Tensor dH) {
    swiglu.backwardFactors(dA, p, dH);
  }

  // ---------------------------------------------------------------- losses

  @Override
  public void crossEntropy(
      Tensor logits, Tensor targets, Tensor lossesOut, Tensor dLogits, float dScale) {
    losses.crossEntropy(logits, targets, lossesOut, dLogits, dScale);
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

  // ---------------------------------------------------------------- optimizer

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
