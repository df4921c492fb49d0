package moetune.engine.model;

import moetune.engine.backend.AttnSpec;
import moetune.engine.backend.Backend;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * Mixtral's grouped-query self-attention with rotary embeddings: q, k, v projections, RoPE on q and
 * k, attention (causal, optional sliding window and document boundaries, see {@link AttnSpec}),
 * output projection. No biases, as in Mixtral.
 *
 * <p>Shape letters: N = B*T tokens, D hidden, H query heads, Hkv key/value heads, hd head dim.
 * Weights (HF layout, working copy): wq (H*hd, D), wk and wv (Hkv*hd, D), wo (D, H*hd); gradients
 * F32 of the same shapes, accumulated (+=).
 */
final class Attention {
  private final Backend be;
  private final Tensor wq, wk, wv, wo;
  private final Tensor gq, gk, gv, go;
  private final int heads;
  private final int kvHeads;
  private final int headDim;
  private final float theta;

  Attention(Parameters p, String prefix, MixtralConfig c) {
    this.be = p.masterFlat().backend();
    this.wq = p.weight(prefix + "self_attn.q_proj.weight");
    this.wk = p.weight(prefix + "self_attn.k_proj.weight");
    this.wv = p.weight(prefix + "self_attn.v_proj.weight");
    this.wo = p.weight(prefix + "self_attn.o_proj.weight");
    this.gq = p.grad(prefix + "self_attn.q_proj.weight");
    this.gk = p.grad(prefix + "self_attn.k_proj.weight");
    this.gv = p.grad(prefix + "self_attn.v_proj.weight");
    this.go = p.grad(prefix + "self_attn.o_proj.weight");
    this.heads = c.numAttentionHeads;
    this.kvHeads = c.numKeyValueHeads;
    this.headDim = c.headDim();
    this.theta = (float) c.ropeTheta;
  }

  /** What the backward needs; the output is owned by the caller. */
  static final class Saved implements AutoCloseable {
    final Tensor xn; // (N, D) the normed input, owned by the layer
    final Tensor q; // (N, H, hd) after RoPE
    final Tensor k; // (N, Hkv, hd) after RoPE
    final Tensor v; // (N, Hkv, hd)
    final Tensor o; // (N, H, hd) attention output before o_proj
    final Tensor lse; // F32 (N, H)
    final Tensor positions; // I32 (N), owned by the model
    final AttnSpec spec;

    Saved(
        Tensor xn,
        Tensor q,
        Tensor k,
        Tensor v,
        Tensor o,
        Tensor lse,
        Tensor positions,
        AttnSpec spec) {
      this.xn = xn;
      this.q = q;
      this.k = k;
      this.v = v;
      this.o = o;
      this.lse = lse;
      this.positions = positions;
      this.spec = spec;
    }

    @Override
    public void close() {
      q.close();
      k.close();
      v.close();
      o.close();
      lse.close();
    }
  }

  /** q, k, v of xn (N, D), RoPE applied to q and k at positions I32 (N). */
  private Tensor[] project(Tensor xn, Tensor positions) {
    long n = xn.rows();
    DType dt = xn.dtype();
    Tensor q = be.empty(dt, n, heads, headDim);
    Tensor k = be.empty(dt, n, kvHeads, headDim);
    Tensor v = be.empty(dt, n, kvHeads, headDim);
    be.matmul(xn, false, wq, true, q.reshape(n, (long) heads * headDim), 1f, 0f);
    be.matmul(xn, false, wk, true, k.reshape(n, (long) kvHeads * headDim), 1f, 0f);
    be.matmul(xn, false, wv, true, v.reshape(n, (long) kvHeads * headDim), 1f, 0f);
    be.ropeForward(q, positions, theta);
    be.ropeForward(k, positions, theta);
    return new Tensor[] {q, k, v};
  }

  /** Training forward: out (N, D) overwrite; returns what the backward needs. */
  Saved forward(Tensor xn, Tensor positions, AttnSpec spec, Tensor out) {
    long n = xn.rows();
    Tensor[] qkv = project(xn, positions);
    Tensor o = be.empty(xn.dtype(), n, heads, headDim);
    Tensor lse = be.empty(DType.F32, n, heads);
    be.attentionForward(qkv[0], qkv[1], qkv[2], spec, o, lse);
    be.matmul(o.reshape(n, (long) heads * headDim), false, wo, true, out, 1f, 0f);
    return new Saved(xn, qkv[0], qkv[1], qkv[2], o, lse, positions, spec);
  }

  /**
   * Backward: dOut (N, D) the gradient of the output; returns dXn (N, D), the gradient of the
   * normed input (new tensor); parameter gradients +=.
   */
  Tensor backward(Saved s, Tensor dOut) {
    long n = dOut.rows();
    DType dt = dOut.dtype();
    long qCols = (long) heads * headDim;
    long kvCols = (long) kvHeads * headDim;
    Tensor dO = be.empty(dt, n, heads, headDim);
    be.matmul(dOut, false, wo, false, dO.reshape(n, qCols), 1f, 0f);
    be.matmul(dOut, true, s.o.reshape(n, qCols), false, go, 1f, 1f);
    Tensor dq = be.empty(dt, n, heads, headDim);
    Tensor dk = be.empty(dt, n, kvHeads, headDim);
    Tensor dv = be.empty(dt, n, kvHeads, headDim);
    be.attentionBackward(dO, s.q, s.k, s.v, s.o, s.lse, s.spec, dq, dk, dv);
    dO.close();
    be.ropeBackward(dq, s.positions, theta);
    be.ropeBackward(dk, s.positions, theta);
    Tensor dXn = be.empty(dt, n, wq.dim(1));
    be.matmul(dq.reshape(n, qCols), false, wq, false, dXn, 1f, 0f);
    be.matmul(dk.reshape(n, kvCols), false, wk, false, dXn, 1f, 1f);
    be.matmul(dv.reshape(n, kvCols), false, wv, false, dXn, 1f, 1f);
    be.matmul(dq.reshape(n, qCols), true, s.xn, false, gq, 1f, 1f);
    be.matmul(dk.reshape(n, kvCols), true, s.xn, false, gk, 1f, 1f);
    be.matmul(dv.reshape(n, kvCols), true, s.xn, false, gv, 1f, 1f);
    dq.close();
    dk.close();
    dv.close();
    return dXn;
  }

  /**
   * Inference forward over Tq new tokens per row with a KV cache: xn (B*Tq, D), positions I32
   * (B*Tq); the new keys and values are appended to the cache at its current length, then each row
   * attends to all its cached keys. out (B*Tq, D) overwrite. Keeps nothing.
   */
  void forwardCached(
      Tensor xn, Tensor positions, KvCache.Layer cache, int batch, int window, Tensor out) {
    long n = xn.rows();
    int tq = (int) (n / batch);
    Tensor[] qkv = project(xn, positions);
    Tensor o = be.empty(xn.dtype(), n, heads, headDim);
    Tensor lse = be.empty(DType.F32, n, heads);
    int tk = cache.length() + tq;
    for (int b = 0; b < batch; b++) {
      long rowOff = (long) b * tq;
      Tensor kRow =
          cache.append(b, true, qkv[1].view(rowOff * kvHeads * headDim, tq, kvHeads, headDim));
      Tensor vRow =
          cache.append(b, false, qkv[2].view(rowOff * kvHeads * headDim, tq, kvHeads, headDim));
      be.attentionForward(
          qkv[0].view(rowOff * heads * headDim, tq, heads, headDim),
          kRow,
          vRow,
          new AttnSpec(1, tq, tk, null, window),
          o.view(rowOff * heads * headDim, tq, heads, headDim),
          lse.view(rowOff * heads, tq, heads));
    }
    be.matmul(o.reshape(n, (long) heads * headDim), false, wo, true, out, 1f, 0f);
    for (Tensor t : qkv) {
      t.close();
    }
    o.close();
    lse.close();
  }
}
