package moetune.engine.model;

import java.util.SplittableRandom;
import moetune.engine.backend.AttnSpec;
import moetune.engine.backend.Backend;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * Mixtral's grouped-query self-attention with rotary embeddings: q, k, v projections, RoPE on q and
 * k, attention (causal, optional sliding window and document boundaries, see {@link AttnSpec}),
 * output projection. No biases, as in Mixtral.
 *
 * <p>Shape letters: N = B*T tokens, D hidden, H query heads, Hkv key/value heads, hd head dim.
 * Weights (HF layout, working copy): wq (H*hd, D), wk and wv (Hkv*hd, D), wo (D, H*hd); gradients
 * F32 of the same shapes, accumulated (+=), skipped for frozen weights. Each projection may carry a
 * LoRA adapter ({@link LoraLinear}).
 */
final class Attention {
  private final Backend be;
  private final LoraLinear q, k, v, o; // each with its LoRA adapter when targeted
  private final int heads;
  private final int kvHeads;
  private final int headDim;
  private final float theta;

  Attention(Parameters p, int layer, MixtralConfig c) {
    this.be = p.masterFlat().backend();
    this.q = new LoraLinear(p, MixtralNames.attention(layer, "q_proj"));
    this.k = new LoraLinear(p, MixtralNames.attention(layer, "k_proj"));
    this.v = new LoraLinear(p, MixtralNames.attention(layer, "v_proj"));
    this.o = new LoraLinear(p, MixtralNames.attention(layer, "o_proj"));
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
    final LoraLinear.Saved[] lora; // q, k, v, o adapters' state (null entries without adapter)

    Saved(
        Tensor xn,
        Tensor q,
        Tensor k,
        Tensor v,
        Tensor o,
        Tensor lse,
        Tensor positions,
        AttnSpec spec,
        LoraLinear.Saved[] lora) {
      this.xn = xn;
      this.q = q;
      this.k = k;
      this.v = v;
      this.o = o;
      this.lse = lse;
      this.positions = positions;
      this.spec = spec;
      this.lora = lora;
    }

    @Override
    public void close() {
      q.close();
      k.close();
      v.close();
      o.close();
      lse.close();
      closeAll(lora);
    }
  }

  /**
   * q, k, v of xn (N, D), RoPE applied to q and k at positions I32 (N). lora[0..2] receive the
   * adapters' saved state; rng (training) drives their dropout.
   */
  private Tensor[] project(
      Tensor xn, Tensor positions, SplittableRandom rng, LoraLinear.Saved[] lora) {
    long n = xn.rows();
    DType dt = xn.dtype();
    Tensor qt = be.empty(dt, n, heads, headDim);
    Tensor kt = be.empty(dt, n, kvHeads, headDim);
    Tensor vt = be.empty(dt, n, kvHeads, headDim);
    lora[0] = q.forward(xn, qt.reshape(n, (long) heads * headDim), rng);
    lora[1] = k.forward(xn, kt.reshape(n, (long) kvHeads * headDim), rng);
    lora[2] = v.forward(xn, vt.reshape(n, (long) kvHeads * headDim), rng);
    be.ropeForward(qt, positions, theta);
    be.ropeForward(kt, positions, theta);
    return new Tensor[] {qt, kt, vt};
  }

  /**
   * Training forward: out (N, D) overwrite; returns what the backward needs. rng is non-null in
   * training (LoRA dropout).
   */
  Saved forward(Tensor xn, Tensor positions, AttnSpec spec, Tensor out, SplittableRandom rng) {
    long n = xn.rows();
    LoraLinear.Saved[] lora = new LoraLinear.Saved[4];
    Tensor[] qkv = project(xn, positions, rng, lora);
    Tensor ot = be.empty(xn.dtype(), n, heads, headDim);
    Tensor lse = be.empty(DType.F32, n, heads);
    be.attentionForward(qkv[0], qkv[1], qkv[2], spec, ot, lse);
    lora[3] = o.forward(ot.reshape(n, (long) heads * headDim), out, rng);
    return new Saved(xn, qkv[0], qkv[1], qkv[2], ot, lse, positions, spec, lora);
  }

  private static void closeAll(LoraLinear.Saved[] saved) {
    for (LoraLinear.Saved s : saved) {
      if (s != null) {
        s.close();
      }
    }
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
    o.backward(s.lora[3], dOut, s.o.reshape(n, qCols), dO.reshape(n, qCols), 0f);
    Tensor dq = be.empty(dt, n, heads, headDim);
    Tensor dk = be.empty(dt, n, kvHeads, headDim);
    Tensor dv = be.empty(dt, n, kvHeads, headDim);
    be.attentionBackward(dO, s.q, s.k, s.v, s.o, s.lse, s.spec, dq, dk, dv);
    dO.close();
    be.ropeBackward(dq, s.positions, theta);
    be.ropeBackward(dk, s.positions, theta);
    Tensor dXn = be.empty(dt, n, q.weight().dim(1));
    q.backward(s.lora[0], dq.reshape(n, qCols), s.xn, dXn, 0f);
    k.backward(s.lora[1], dk.reshape(n, kvCols), s.xn, dXn, 1f);
    v.backward(s.lora[2], dv.reshape(n, kvCols), s.xn, dXn, 1f);
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
    LoraLinear.Saved[] lora = new LoraLinear.Saved[4];
    Tensor[] qkv = project(xn, positions, null, lora);
    Tensor ot = be.empty(xn.dtype(), n, heads, headDim);
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
          ot.view(rowOff * heads * headDim, tq, heads, headDim),
          lse.view(rowOff * heads, tq, heads));
    }
    lora[3] = o.forward(ot.reshape(n, (long) heads * headDim), out, null);
    closeAll(lora);
    for (Tensor t : qkv) {
      t.close();
    }
    ot.close();
    lse.close();
  }
}
