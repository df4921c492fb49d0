package moetune.engine.model;

import java.util.List;
import java.util.SplittableRandom;
import moetune.engine.backend.AttnSpec;
import moetune.engine.backend.Backend;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * One Mixtral decoder layer, pre-norm:
 *
 * <pre>
 *   xMid = xIn + Attention(RMSNorm1(xIn))
 *   xOut = xMid + SparseMoe(RMSNorm2(xMid))
 * </pre>
 *
 * N tokens, D hidden. The layer's input xIn is owned by the caller (the model keeps the residual
 * stream between layers); everything else the backward needs lives in {@link Saved}. The residual
 * stream (xIn, xMid, xOut) and its gradient have the stream's dtype (float32 by default); the
 * normed inputs, the sublayers and their gradients have the activation dtype.
 */
final class DecoderLayer {
  private final Backend be;
  private final Attention attention;
  private final SparseMoeBlock moe;
  private final Tensor norm1; // (D) input_layernorm
  private final Tensor norm2; // (D) post_attention_layernorm
  private final Tensor gNorm1; // F32 (D)
  private final Tensor gNorm2; // F32 (D)
  private final float eps;
  private final DType act; // activations; the residual stream (xIn, xMid, xOut) may be wider

  DecoderLayer(Parameters p, int index, MixtralConfig c, DType act) {
    this.act = act;
    this.be = p.masterFlat().backend();
    this.attention = new Attention(p, index, c);
    this.moe = new SparseMoeBlock(p, index, c);
    this.norm1 = p.weight(MixtralNames.inputNorm(index));
    this.norm2 = p.weight(MixtralNames.postAttentionNorm(index));
    this.gNorm1 = p.grad(MixtralNames.inputNorm(index));
    this.gNorm2 = p.grad(MixtralNames.postAttentionNorm(index));
    this.eps = (float) c.rmsNormEps;
  }

  /**
   * This layer's gradients are being set to zero; the slices whose zeroing can wait go to later
   * (see {@link SparseMoeBlock#gradsZeroed}).
   */
  void gradsZeroed(List<Parameters.DeferredZero> later) {
    moe.gradsZeroed(later);
  }

  /** Expert parallel over comm for this layer's experts (null: all experts here). */
  void expertParallel(moetune.engine.backend.Communicator comm) {
    moe.expertParallel(comm);
  }

  /**
   * What the backward needs. With {@link Recompute#ATTENTION} the attention's state ({@link #attn})
   * is null and the backward recomputes it from n1 with the same positions, spec and noise seed.
   */
  static final class Saved implements AutoCloseable {
    final Tensor xIn; // (N, D) borrowed from the caller
    final Tensor rstd1; // F32 (N)
    final Tensor n1; // (N, D)
    final Attention.Saved attn; // or null: recomputed by the backward
    final Tensor positions; // I32 (N), owned by the model
    final AttnSpec spec;
    final Tensor xMid; // (N, D)
    final Tensor rstd2; // F32 (N)
    final Tensor n2; // (N, D)
    final SparseMoeBlock.Saved moe;

    Saved(
        Tensor xIn,
        Tensor rstd1,
        Tensor n1,
        Attention.Saved attn,
        Tensor positions,
        AttnSpec spec,
        Tensor xMid,
        Tensor rstd2,
        Tensor n2,
        SparseMoeBlock.Saved moe) {
      this.xIn = xIn;
      this.rstd1 = rstd1;
      this.n1 = n1;
      this.attn = attn;
      this.positions = positions;
      this.spec = spec;
      this.xMid = xMid;
      this.rstd2 = rstd2;
      this.n2 = n2;
      this.moe = moe;
    }

    @Override
    public void close() {
      moe.close();
      n2.close();
      rstd2.close();
      xMid.close();
      if (attn != null) {
        attn.close();
      }
      n1.close();
      rstd1.close();
    }
  }

  /**
   * Training forward of xIn (N, D): returns xOut (N, D) as a new tensor in out[0] and the saved
   * state. routerLogits F32 (N, E), probs F32 (N, E) and topIdx I32 (N, K) are this layer's views
   * of the router buffers. rng (training: LoRA dropout, router jitter) must be fresh from this
   * layer's seed, so that a recomputation draws the same noise. With keepAttention false the
   * attention's inner state is freed at once and the backward recomputes it ({@link
   * Recompute#ATTENTION}). With out null (a recomputation for the backward) the layer's output is
   * not made and the experts skip their down product.
   */
  Saved forward(
      Tensor xIn,
      Tensor positions,
      AttnSpec spec,
      Tensor routerLogits,
      Tensor probs,
      Tensor topIdx,
      SplittableRandom rng,
      boolean keepAttention,
      Tensor[] out) {
    long n = xIn.rows();
    long d = xIn.cols();
    DType stream = xIn.dtype();
    Tensor rstd1 = be.empty(DType.F32, n);
    Tensor n1 = be.empty(act, n, d);
    be.rmsnormForward(xIn, null, norm1, eps, n1, rstd1);
    Tensor attnOut = be.empty(act, n, d);
    Attention.Saved a = attention.forward(n1, positions, spec, attnOut, rng);
    if (!keepAttention) {
      a.close(); // n1 is the layer's and stays
      a = null;
    }
    Tensor xMid = be.empty(stream, n, d);
    be.add(xIn, attnOut, xMid);
    attnOut.close();
    Tensor rstd2 = be.empty(DType.F32, n);
    Tensor n2 = be.empty(act, n, d);
    be.rmsnormForward(xMid, null, norm2, eps, n2, rstd2);
    SparseMoeBlock.Saved m = moe.forward(n2, routerLogits, probs, topIdx, rng, out != null);
    if (out != null) {
      Tensor xOut = be.empty(stream, n, d);
      be.add(xMid, m.output(), xOut);
      out[0] = xOut;
    }
    return new Saved(xIn, rstd1, n1, a, positions, spec, xMid, rstd2, n2, m);
  }

  /**
   * Backward in place on the residual stream's gradient: dStream (N, D) holds d loss / d xOut on
   * entry and d loss / d xIn on return. dProbs F32 (N, E) is the load-balancing loss's gradient on
   * this layer's router probabilities, dZLogits F32 (N, E) the router z-loss's gradient on its
   * router logits; either may be null. Parameter gradients +=. rng is used only when the attention
   * state was not kept: a fresh generator from the forward's seed (null when the forward had none).
   */
  void backward(Saved s, Tensor dStream, Tensor dProbs, Tensor dZLogits, SplittableRandom rng) {
    Tensor dN2;
    try (Tensor dOut = inActivationDtype(dStream)) {
      dN2 = moe.backward(s.moe, dOut, dProbs, dZLogits);
    }
    be.rmsnormBackward(dN2, s.xMid, norm2, s.rstd2, dStream, gNorm2);
    dN2.close();
    Attention.Saved a = s.attn;
    if (a == null) { // recompute: the same ops on the same n1 with the same noise as the forward
      try (Tensor attnOut = be.empty(act, s.n1.rows(), s.n1.cols())) {
        a = attention.forward(s.n1, s.positions, s.spec, attnOut, rng);
      }
    }
    Tensor dN1;
    try (Tensor dMid = inActivationDtype(dStream)) {
      dN1 = attention.backward(a, dMid);
    } finally {
      if (s.attn == null) {
        a.close();
      }
    }
    be.rmsnormBackward(dN1, s.xIn, norm1, s.rstd1, dStream, gNorm1);
    dN1.close();
  }

  /**
   * t itself when it has the activation dtype (closing the view frees nothing), else a converted
   * copy.
   */
  private Tensor inActivationDtype(Tensor t) {
    if (t.dtype() == act) {
      return t.view(0, t.shape());
    }
    Tensor c = be.empty(act, t.shape());
    be.copy(t, c);
    return c;
  }

  /** Inference forward with a KV cache: returns xOut (B*Tq, D), a new tensor; keeps nothing. */
  Tensor forwardCached(Tensor xIn, Tensor positions, KvCache.Layer cache, int batch, int window) {
    long n = xIn.rows();
    long d = xIn.cols();
    Tensor xOut = be.empty(xIn.dtype(), n, d);
    try (Tensor rstd = be.empty(DType.F32, n);
        Tensor xn = be.empty(act, n, d);
        Tensor attnOut = be.empty(act, n, d)) {
      be.rmsnormForward(xIn, null, norm1, eps, xn, rstd);
      attention.forwardCached(xn, positions, cache, batch, window, attnOut);
      be.add(xIn, attnOut, xOut); // xOut holds xMid until the MoE is added
      be.rmsnormForward(xOut, null, norm2, eps, xn, rstd);
      try (Tensor moeOut = moe.forwardInference(xn)) {
        be.add(xOut, moeOut, xOut);
      }
    }
    return xOut;
  }
}
