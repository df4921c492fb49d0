package moetune.engine.backend;

import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * Every operation the Mixtral model, its losses and the optimizer need, forward and backward. The
 * model is written once against this interface; {@code CpuBackend} is the float32 oracle and {@code
 * CudaBackend} must match it.
 *
 * <p>Conventions, for every method unless it says otherwise:
 *
 * <ul>
 *   <li>Tensors are dense, row-major and contiguous. "(N, D)" means a tensor whose element count is
 *       N*D read as N rows of D; leading dimensions are flattened, so a (B, T, D) tensor is
 *       accepted where (N, D) with N = B*T is asked for.
 *   <li>Float tensors may be F32 or (on backends that support it) BF16; arithmetic accumulates in
 *       float32. Tensors named with "F32" must be F32. Index tensors are I32.
 *   <li>"overwrite" outputs are fully written; "+=" outputs are accumulated into (gradients
 *       accumulate across micro-batches; callers zero them when a step starts).
 *   <li>Work is queued in order; results are visible to later calls on the same backend. Only
 *       {@link #download} and {@link #synchronize} wait for the device.
 *   <li>Shape violations throw {@link IllegalArgumentException} naming the op and the shapes.
 * </ul>
 *
 * Shape letters: N tokens (B*T), D hidden, H query heads, Hkv key/value heads, hd head dim, E
 * experts, K top-k, M = N*K routed rows, F expert intermediate, V vocabulary, R router rows over
 * all layers (L*N).
 */
public interface Backend extends AutoCloseable {

  /**
   * A new clock stamping points in this backend's queue of work (profiling only). The default reads
   * the host clock, which is right for a backend whose ops have run when they return (the CPU).
   */
  default QueueClock newQueueClock() {
    return QueueClock.host();
  }

  /**
   * Makes this backend's tensors (those made before and after) answer {@code facade} from {@link
   * Tensor#backend()}, so that code which reaches the backend through a tensor goes through a
   * wrapper that forwards to this one (the step benchmark's {@link OpProfiler}); null restores this
   * backend. Ops still accept the tensors as their own.
   */
  default void reportTensorsAs(Backend facade) {
    throw new UnsupportedOperationException(name() + " cannot be wrapped");
  }

  /** "cpu", "cuda:0", ... */
  String name();

  /** One line for logs: device name, memory, threads. */
  String describe();

  /** Whether tensors of this dtype can be created and computed with. */
  boolean supports(DType dtype);

  // ---------------------------------------------------------------- memory

  /** A new tensor with undefined contents (the CUDA backend reuses freed blocks). */
  Tensor empty(DType dtype, long... shape);

  /** A new tensor of zeros. */
  default Tensor zeros(DType dtype, long... shape) {
    Tensor t = empty(dtype, shape);
    fill(t, 0f);
    return t;
  }

  /**
   * A new tensor holding {@code host} converted to {@code dtype} (float to float or int to int).
   */
  Tensor upload(HostTensor host, DType dtype);

  default Tensor upload(HostTensor host) {
    return upload(host, host.dtype());
  }

  /** Writes {@code host} (converted to dst's dtype) into an existing tensor of equal size. */
  void copyFromHost(HostTensor host, Tensor dst);

  /** Waits for queued work and copies the tensor to the host, in its own dtype. */
  HostTensor download(Tensor t);

  /** dst = src converted to dst's dtype; equal element counts. */
  void copy(Tensor src, Tensor dst);

  /** Every element of a float or I32 tensor set to value. */
  void fill(Tensor t, float value);

  /**
   * Every element of a float tensor set to std * z, z standard normal, counter-based: element i
   * depends on (seed, i) alone (splitmix64 of seed + (i + 1) * 0x9E3779B97F4A7C15, then Box-Muller
   * on its bits 40..63 plus one as u1 in (0, 1] and bits 16..39 as u2 in [0, 1), in float32), so
   * every backend fills the same numbers up to float rounding of log and cos. For random models of
   * a real shape built on the device (benchmarks); training never calls it.
   */
  void randomNormal(Tensor t, long seed, float std);

  /** Waits until all queued work is done. */
  void synchronize();

  /** Bytes of device memory currently held by live tensors. */
  long bytesInUse();

  /** Highest {@link #bytesInUse} since creation or the last {@link #resetPeak}. */
  long peakBytes();

  void resetPeak();

  @Override
  void close();

  // ---------------------------------------------------------------- elementwise

  /** out = a + b (overwrite; out may alias a or b). */
  void add(Tensor a, Tensor b, Tensor out);

  /** dst += alpha * src. */
  void axpy(float alpha, Tensor src, Tensor dst);

  /** x *= s, in place. */
  void scale(Tensor x, float s);

  // ---------------------------------------------------------------- dense products

  /**
   * C = alpha * op(A) @ op(B) + beta * C, with op(X) = X or X^T. A is (rows, cols) as stored; op(A)
   * must be (m, k), op(B) (k, n), C (m, n). beta = 0 overwrites (C may hold NaN), beta = 1
   * accumulates. A linear layer with HF weight W (out, in) is {@code matmul(x, false, W, true, y,
   * 1, 0)}; its backward is {@code matmul(dy, false, W, false, dx, 1, beta)} and {@code matmul(dy,
   * true, x, false, dW, 1, 1)}. A and B may be BF16 with C F32 on the GPU.
   */
  void matmul(
      Tensor a, boolean transA, Tensor b, boolean transB, Tensor c, float alpha, float beta);

  // ---------------------------------------------------------------- embedding

  /** out[n] = table[ids[n]]. ids I32 (N), table (V, D), out (N, D) overwrite. */
  void embeddingForward(Tensor ids, Tensor table, Tensor out);

  /** dTable[ids[n]] += dOut[n]. ids I32 (N), dOut (N, D), dTable (V, D) +=. */
  void embeddingBackward(Tensor ids, Tensor dOut, Tensor dTable);

  // ---------------------------------------------------------------- RMSNorm

  /**
   * HF MixtralRMSNorm with an optional residual add first: if delta != null, residual += delta (in
   * place); then out = w * x * rstd with x = residual, rstd = 1/sqrt(mean(x^2) + eps), computed in
   * float32. residual (N, D), delta (N, D) or null, w (D), out (N, D) overwrite, rstd F32 (N)
   * overwrite.
   */
  void rmsnormForward(Tensor residual, Tensor delta, Tensor w, float eps, Tensor out, Tensor rstd);

  /**
   * Backward of out = w * x * rstd. dOut (N, D), x (N, D) the forward's input, w (D), rstd F32 (N);
   * dx (N, D) += (so the residual stream's gradient accumulates in place), dw (D) += (may be null
   * when the weight is frozen).
   */
  void rmsnormBackward(Tensor dOut, Tensor x, Tensor w, Tensor rstd, Tensor dx, Tensor dw);

  // ---------------------------------------------------------------- rotary embedding

  /**
   * HF rotary embedding in place, rotate_half convention: for i < hd/2 with inv_freq[i] =
   * 1/theta^(2i/hd) and a = pos * inv_freq[i] (float32), x[i], x[i+hd/2] become x[i]*cos(a) -
   * x[i+hd/2]*sin(a), x[i+hd/2]*cos(a) + x[i]*sin(a). x (N, heads, hd), positions I32 (N).
   */
  void ropeForward(Tensor x, Tensor positions, float theta);

  /** The inverse rotation (the gradient of ropeForward) in place on dx (N, heads, hd). */
  void ropeBackward(Tensor dx, Tensor positions, float theta);

  // ---------------------------------------------------------------- attention

  /**
   * Grouped-query attention, softmax(q k^T / sqrt(hd) + mask) v, never materialising a (Tq, Tk)
   * matrix per head on the GPU. Query head h reads key/value head h / (H / Hkv). q (B*Tq, H, hd), k
   * and v (B*Tk, Hkv, hd), out (B*Tq, H, hd) overwrite, lse F32 (B*Tq, H) overwrite (the natural
   * log-sum-exp of each query's scaled scores, kept for the backward).
   */
  void attentionForward(Tensor q, Tensor k, Tensor v, AttnSpec spec, Tensor out, Tensor lse);

  /**
   * Backward of attentionForward. dOut (B*Tq, H, hd), out and lse from the forward; dq (B*Tq, H,
   * hd), dk and dv (B*Tk, Hkv, hd) overwrite.
   */
  void attentionBackward(
      Tensor dOut,
      Tensor q,
      Tensor k,
      Tensor v,
      Tensor out,
      Tensor lse,
      AttnSpec spec,
      Tensor dq,
      Tensor dk,
      Tensor dv);

  // ---------------------------------------------------------------- router

  /**
   * Mixtral routing: probs = softmax(logits) in float32 over all E experts, then the K largest
   * (ties to the lower expert index), renormalised to sum to 1. logits (N, E), probs F32 (N, E)
   * overwrite, topWeights F32 (N, K) overwrite (descending), topIdx I32 (N, K) overwrite.
   */
  void routerTopK(Tensor logits, int k, Tensor probs, Tensor topWeights, Tensor topIdx);

  /**
   * Backward of routerTopK plus any extra gradient on the probabilities (the aux loss's).
   * dTopWeights F32 (N, K) or null, dProbs F32 (N, E) or null (an extra d loss / d probs), probs,
   * topIdx from the forward; dLogits (N, E) overwrite.
   */
  void routerBackward(
      Tensor dTopWeights, Tensor dProbs, Tensor probs, Tensor topIdx, Tensor dLogits);

  /**
   * ScatterMoE's flatten-sort-count, on the device: flat index s = n*K + j of each (token, slot)
   * pair, stably sorted by expert topIdx[n][j]. topIdx I32 (N, K); sortedExpertIdxs I32 (M) and
   * sortedScatteredIdxs I32 (M) overwrite (expert and s of the p-th row in expert order);
   * expertOffsets I32 (E) overwrite, the end of each expert's rows (inclusive cumsum of counts).
   */
  void flattenSortCount(
      Tensor topIdx,
      int numExperts,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      Tensor expertOffsets);

  // ---------------------------------------------------------------- ScatterMoE kernels

  /**
   * The grouped product at the heart of ParallelLinear. For each routed row p in [0, M): e =
   * sortedExpertIdxs[p], s = sortedScatteredIdxs[p]; the input row is x[p] if groupedIn else x[s /
   * fanOut]; the output row is y[p] if groupedOut else y[s]; y_row = x_row @ W[e]^T (+ bias[e])
   * when transW, or x_row @ W[e] (+ bias[e]) when not. W is (E, O, I) as stored (HF's nn.Linear
   * layout): with transW it maps I to O, without it maps O to I. y (M, out) overwrite; x is (M, in)
   * when groupedIn, else (M / fanOut, in). bias (E, out) or null.
   */
  void scatter2scatter(
      Tensor x,
      Tensor w,
      Tensor bias,
      boolean transW,
      int fanOut,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      boolean groupedIn,
      boolean groupedOut,
      Tensor y);

  /**
   * The gate side of a gated ParallelLinear's backward, from its ungated input gradient. For each
   * row s in [0, M), gi = gateIdx == null ? s : gateIdx[s]: when dGates is given, dGates[gi] =
   * dot(rows[s], x[s / xFan]) (a float32 sum, overwrite); then rows[s] *= gates[gi] in place. rows
   * (M, C); x (M / xFan, C), or null when dGates is null; gateIdx I32 (M) a permutation of [0, M),
   * or null; gates F32 (M); dGates F32 (M) or null. With rows = dY_row W_e (the ungated dX of y = g
   * * (W_e x)), this gives d loss / d g and the gated dX without the forward's y_e.
   */
  void gateRowsBackward(
      Tensor rows, Tensor x, int xFan, Tensor gateIdx, Tensor gates, Tensor dGates);

  /**
   * Gathers rows into expert order: out[p] = x[s_p / fanOut] * (gates == null ? 1 : gates[s_p]),
   * s_p = sortedScatteredIdxs[p]. x (M / fanOut, D), gates F32 (M) flat or null, out (M, D)
   * overwrite.
   */
  void group(Tensor x, Tensor sortedScatteredIdxs, int fanOut, Tensor gates, Tensor out);

  /**
   * Per-expert weight gradient: for every expert e and its rows p in [offsets[e-1], offsets[e]):
   * dW[e] += dy[p]^T x[p] (shape (O, I), HF layout), db[e] += dy[p]. x (M, I) grouped, dy (M, O)
   * grouped, expertOffsets I32 (E), dW (E, O, I) +=, db (E, O) += or null.
   */
  void groupXtY(Tensor x, Tensor dy, Tensor expertOffsets, Tensor dW, Tensor db);

  /**
   * {@link #groupXtY}, or with {@code accumulate} false the same gradients written instead of
   * added: dW[e] = dy_e^T x_e (zeros for an expert without rows), db[e] = column sums of dy_e, as
   * the addition into zeroed dW and db gives them (a step's first micro-batch, which then needs no
   * read of the old values). This default zeroes dW and db, then adds.
   */
  default void groupXtY(
      Tensor x, Tensor dy, Tensor expertOffsets, Tensor dW, Tensor db, boolean accumulate) {
    if (!accumulate) {
      fill(dW, 0f);
      if (db != null) {
        fill(db, 0f);
      }
    }
    groupXtY(x, dy, expertOffsets, dW, db);
  }

  /**
   * The down product's weight gradient and dH in the factors' path ({@link
   * #scatter2scatterSwigluFactors}), two products over the same grouped rows dYGrouped (M, D), with
   * their gates, neither writing what the other reads: {@link #groupXtY}(a, dYGrouped,
   * expertOffsets, dW, null, accumulate), then {@link
   * #scatter2scatterSwigluFactorsBackward}(dYGrouped, w, sortedExpertIdxs, sortedScatteredIdxs,
   * factors, dH). A backend may run the two at once on parts of the device ({@link #dwBesideDx});
   * the results are these two calls'.
   */
  default void swigluFactorsBackwardBesideDw(
      Tensor a,
      Tensor dYGrouped,
      Tensor expertOffsets,
      Tensor dW,
      boolean accumulate,
      Tensor w,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      Tensor factors,
      Tensor dH) {
    runDwBesideDx(
        true,
        () -> groupXtY(a, dYGrouped, expertOffsets, dW, null, accumulate),
        () ->
            scatter2scatterSwigluFactorsBackward(
                dYGrouped, w, sortedExpertIdxs, sortedScatteredIdxs, factors, dH));
  }

  /**
   * A plain product's weight gradient and dX (no bias, no adapter, no gates), two products over the
   * same rows dYGrouped (M, O) in expert order, neither writing what the other reads: {@link
   * #groupXtY}(xGrouped, dYGrouped, expertOffsets, dW, null, accumulate), then {@link
   * #scatter2scatter}(dYGrouped, w, null, false, 1, sortedExpertIdxs, sortedScatteredIdxs, true,
   * groupedOut, dX). A backend may run the two at once on parts of the device ({@link
   * #dwBesideDx}); the results are these two calls'.
   */
  default void scatter2scatterBesideDw(
      Tensor xGrouped,
      Tensor dYGrouped,
      Tensor expertOffsets,
      Tensor dW,
      boolean accumulate,
      Tensor w,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      boolean groupedOut,
      Tensor dX) {
    runDwBesideDx(
        false,
        () -> groupXtY(xGrouped, dYGrouped, expertOffsets, dW, null, accumulate),
        () ->
            scatter2scatter(
                dYGrouped,
                w,
                null,
                false,
                1,
                sortedExpertIdxs,
                sortedScatteredIdxs,
                true,
                groupedOut,
                dX));
  }

  /**
   * How {@link #swigluFactorsBackwardBesideDw} (swiglu true) and {@link #scatter2scatterBesideDw}
   * run their weight gradient dw and their dX dx, each of which queues this backend's ops: this
   * default runs dw, then dx; the GPU may run dw on a part of the device beside dx (variant 61).
   */
  default void runDwBesideDx(boolean swiglu, Runnable dw, Runnable dx) {
    dw.run();
    dx.run();
  }

  /**
   * Whether {@link #swigluFactorsBackwardBesideDw} and {@link #scatter2scatterBesideDw} run their
   * two products at once (a setting of the backend); where it does not, callers make the two calls
   * themselves, so that a profile times each.
   */
  default boolean dwBesideDx() {
    return false;
  }

  /**
   * The gate-weighted combine of the K expert outputs of each token: y[n] = sum_j g[n, j] *
   * expanded[n*K + j] (g = 1 when gates is null). expanded (N*K, D) in scattered order, gates F32
   * (N, K) or null, y (N, D) overwrite.
   */
  void combine(Tensor expanded, Tensor gates, int k, Tensor y);

  /**
   * Gradient of combine with respect to the gates: dGates[n, j] = dot(dY[n], expanded[n*K+j]). dY
   * (N, D), expanded (N*K, D) scattered, dGates F32 (N, K) overwrite. (The gradient with respect to
   * expanded is {@link #group} of dY with the gates.)
   */
  void combineGatesBackward(Tensor dY, Tensor expanded, int k, Tensor dGates);

  /**
   * Both gradients of a gated combine in one call: {@link #combineGatesBackward}(dY, expanded, k,
   * dGates), then {@link #group}(dY, sortedScatteredIdxs, k, gates, out), the rows of dY in expert
   * order scaled by their gates (gates F32 (N*K) by token slot, or null for 1). The result is these
   * two ops' (the GPU may read dY once for both: equal bit for bit).
   */
  default void groupGatesBackward(
      Tensor dY,
      Tensor sortedScatteredIdxs,
      int k,
      Tensor gates,
      Tensor expanded,
      Tensor dGates,
      Tensor out) {
    combineGatesBackward(dY, expanded, k, dGates);
    group(dY, sortedScatteredIdxs, k, gates, out);
  }

  /**
   * The expert MLP's first product with its SwiGLU in one call (ScatterMoE's MLP): h =
   * scatter2scatter(x, w, null, transW = true, fanOut, sortedExpertIdxs, sortedScatteredIdxs,
   * groupedIn, groupedOut = true) and a = silu(h[:, :F]) * h[:, F:]. w (E, 2F, D) (gate rows then
   * up rows), h (M, 2F) and a (M, F) grouped, overwrite. The result is these two ops' (the GPU runs
   * the SwiGLU in the product's epilogue with the same roundings: equal bit for bit).
   */
  default void scatter2scatterSwiglu(
      Tensor x,
      Tensor w,
      int fanOut,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      boolean groupedIn,
      Tensor h,
      Tensor a) {
    scatter2scatter(
        x, w, null, true, fanOut, sortedExpertIdxs, sortedScatteredIdxs, groupedIn, true, h);
    swigluForward(h, a);
  }

  /**
   * The backward of the expert MLP's gated down product through its gates and SwiGLU in one call:
   * dA = scatter2scatter(dY, w, null, transW = false, fanOut, sortedExpertIdxs,
   * sortedScatteredIdxs, groupedIn, groupedOut = true) (the ungated rows, grouped), then {@link
   * #gateRowsBackward}(dA, a, 1, sortedScatteredIdxs, gates, dGates) and {@link
   * #swigluBackward}(dA, h, dH). dY (M / fanOut, D) in token order (or (M, D) grouped with
   * groupedIn), ungated; w (E, D, F); h (M, 2F) and a (M, F) the forward's (grouped); gates F32 (M)
   * by token slot; dGates F32 (M) by token slot overwrite; dH (M, 2F) overwrite. dH is these ops'
   * bit for bit on the GPU; dGates sums the same products in another order.
   */
  default void scatter2scatterSwigluBackward(
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
    try (Tensor dA = empty(dY.dtype(), a.shape())) {
      scatter2scatter(
          dY, w, null, false, fanOut, sortedExpertIdxs, sortedScatteredIdxs, groupedIn, true, dA);
      gateRowsBackward(dA, a, 1, sortedScatteredIdxs, gates, dGates);
      swigluBackward(dA, h, dH);
    }
  }

  /**
   * Whether the expert MLP saves SwiGLU's backward factors ({@link #scatter2scatterSwigluFactors},
   * variant 56) rather than h ({@link #scatter2scatterSwiglu}). Both give the same forward; the
   * factors' backward takes dy's rows grouped with their gates and needs no sigmoid, and keeps the
   * down product's ungated rows (M, D) for the gates' gradient.
   */
  default boolean swigluSavesFactors() {
    return false;
  }

  /**
   * The expert MLP's first product with its SwiGLU, saving the backward's factors instead of h:
   * scatter2scatter(x, w, null, transW = true, fanOut, sortedExpertIdxs, sortedScatteredIdxs,
   * groupedIn, groupedOut = true) into p (M, 2F), then {@link #swigluFactors}(p, a). p holds [d a /
   * d gate | d a / d up] and a (M, F) = silu(gate) * up, both grouped, overwrite. The GPU runs the
   * factors in the product's epilogue with the same roundings (equal bit for bit).
   */
  default void scatter2scatterSwigluFactors(
      Tensor x,
      Tensor w,
      int fanOut,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      boolean groupedIn,
      Tensor p,
      Tensor a) {
    scatter2scatter(
        x, w, null, true, fanOut, sortedExpertIdxs, sortedScatteredIdxs, groupedIn, true, p);
    swigluFactors(p, a);
  }

  /**
   * The down product's dX through SwiGLU from the saved factors: dA = scatter2scatter(dYGrouped, w,
   * null, transW = false, 1, sortedExpertIdxs, sortedScatteredIdxs, groupedIn = true, groupedOut =
   * true), then {@link #swigluBackwardFactors}(dA, p, dH). dYGrouped (M, D) in expert order with
   * the gates applied ({@link #group} with the gates), w (E, D, F), p (M, 2F) the forward's
   * factors, dH (M, 2F) overwrite. The GPU applies the factors in the product's epilogue (equal bit
   * for bit).
   */
  default void scatter2scatterSwigluFactorsBackward(
      Tensor dYGrouped,
      Tensor w,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      Tensor p,
      Tensor dH) {
    try (Tensor dA = empty(dYGrouped.dtype(), p.rows(), p.cols() / 2)) {
      scatter2scatter(
          dYGrouped, w, null, false, 1, sortedExpertIdxs, sortedScatteredIdxs, true, true, dA);
      swigluBackwardFactors(dA, p, dH);
    }
  }

  // ---------------------------------------------------------------- SwiGLU

  /** a = silu(h[:, :F]) * h[:, F:]. h (M, 2F) (gate rows then up rows), a (M, F) overwrite. */
  void swigluForward(Tensor h, Tensor a);

  /** dH (M, 2F) overwrite from dA (M, F) and the forward's h (M, 2F). */
  void swigluBackward(Tensor dA, Tensor h, Tensor dH);

  /**
   * In place, SwiGLU's forward that saves its backward's factors: h (M, 2F) = [gate | up] becomes
   * [p | q] with s = sigmoid(gate), p = d a / d gate = up s (1 + gate (1 - s)) and q = d a / d up =
   * gate s, each rounded to h's dtype; a (M, F) = silu(gate) * up overwrite (as {@link
   * #swigluForward}).
   */
  void swigluFactors(Tensor h, Tensor a);

  /**
   * dH (M, 2F) = [dA p | dA q] overwrite from dA (M, F) and the factors [p | q] (M, 2F) of {@link
   * #swigluFactors}; dH may alias them. The same gradient as {@link #swigluBackward} from h.
   */
  void swigluBackwardFactors(Tensor dA, Tensor p, Tensor dH);

  // ---------------------------------------------------------------- losses

  /**
   * Cross-entropy per row with ignore index -100, softmax in float32. logits (N, V), targets I32
   * (N) (already shifted), losses F32 (N) overwrite (0 for ignored rows). If dLogits is not null it
   * is overwritten with dScale * (softmax - onehot(target)) (zero rows for ignored targets);
   * dLogits may be the logits tensor itself.
   */
  void crossEntropy(Tensor logits, Tensor targets, Tensor losses, Tensor dLogits, float dScale);

  /**
   * The LM head fused with the cross-entropy, in chunks of at most chunkRows rows so that the (N,
   * V) logits are never held whole ({@link LmHeadChunks}; {@link LmHeadChunks#rows} picks a chunk).
   * x (N, D) the final norm's output, w (V, D) the head, targets I32 (N) (shifted, -100 ignored),
   * losses F32 (N) overwrite as {@link #crossEntropy} on x @ w^T. If dx is not null it is
   * overwritten with dlogits @ w, if dw is not null dlogits^T @ x is added to it (+=), where
   * dlogits = dScale * (softmax - onehot(target)); with both null only the losses are computed.
   * Same numbers as matmul + crossEntropy + the two products on whole tensors, except that dw sums
   * its rows chunk by chunk.
   */
  default void lmHeadCrossEntropy(
      Tensor x,
      Tensor w,
      Tensor targets,
      Tensor losses,
      Tensor dx,
      Tensor dw,
      float dScale,
      int chunkRows) {
    LmHeadChunks.run(this, x, w, targets, losses, dx, dw, dScale, chunkRows);
  }

  /**
   * transformers' load_balancing_loss_func over all layers at once. probs F32 (R, E) and topIdx I32
   * (R, K) for every layer's tokens stacked, rowMask F32 (R) (1 for real tokens, 0 for padding) or
   * null. With m_r the mask, c_e = sum_r m_r #{j: topIdx[r, j] = e}, S = sum_r m_r, P_e = sum_r m_r
   * probs[r, e] / S: loss = E * sum_e (c_e / S) * P_e, written to lossOut F32 (1) (overwrite). If
   * dProbs is not null it is overwritten with dScale * d loss / d probs = dScale * E * c_e * m_r /
   * S^2.
   */
  void loadBalancingLoss(
      Tensor probs, Tensor topIdx, Tensor rowMask, Tensor lossOut, Tensor dProbs, float dScale);

  /**
   * Router z-loss (ST-MoE): mean over rows of logsumexp(logits[r])^2 with rowMask weights (null:
   * all ones), lossOut F32 (1) overwrite; if dLogits is not null, dScale * the gradient is added to
   * it (+=). logits (R, E) F32.
   */
  void routerZLoss(Tensor logits, Tensor rowMask, Tensor lossOut, Tensor dLogits, float dScale);

  /**
   * The router's expert-load statistics, accumulated on the device so the trainer's monitor needs
   * no download inside a step. probs F32 (R, E) and topIdx I32 (R, K) stack L layers of N rows each
   * (R = L*N, L = acc's rows); rowMask F32 (R) (1 real token, 0 padding) or null. For each layer l
   * over its rows r: acc[l, e] += sum_r m_r #{j: topIdx[r, j] = e} (e < E), acc[l, E] += sum_r m_r
   * H(probs[r]) with H the entropy in nats (0 log 0 = 0), acc[l, E+1] += sum_r m_r. acc F32 (L,
   * E+2) +=.
   */
  void expertLoadStats(Tensor probs, Tensor topIdx, Tensor rowMask, Tensor acc);

  /** out F32 (1) = scale * sum of x's elements (overwrite). */
  void sum(Tensor x, float scale, Tensor out);

  // ---------------------------------------------------------------- optimizer

  /** acc F32 (1) += sum of x^2 (float32 accumulation). */
  void sumSquares(Tensor x, Tensor acc);

  /**
   * Global grad-norm clipping as torch.nn.utils.clip_grad_norm_: norm = sqrt(sumSq[0]), coef =
   * min(1, maxNorm / (norm + 1e-6)), g *= coef, on the device without reading the norm back.
   */
  void clipByNorm(Tensor grad, Tensor sumSq, float maxNorm);

  /**
   * One torch.optim.AdamW step (decoupled weight decay) on F32 master weights: p -= lr * wd * p; m
   * = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 -
   * b2^t) + eps), with the step's constants computed once on the host ({@link
   * AdamWCoefficients#of}) so both backends apply the same numbers. param, grad, m, v F32 of equal
   * size. If lowPrecision is not null (a BF16 working copy of the weights), it is overwritten with
   * the new param.
   */
  void adamwStep(
      Tensor param, Tensor grad, Tensor m, Tensor v, AdamWCoefficients c, Tensor lowPrecision);
}
