package moetune.engine.model;

import java.util.SplittableRandom;
import moetune.engine.backend.Backend;
import moetune.engine.hf.MixtralNames;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * A bias-free linear layer y = x W^T (HF's nn.Linear layout, W (O, I)) with an optional LoRA
 * adapter as PEFT's {@code lora.Linear} computes it:
 *
 * <pre>
 *   t = dropout(x) A^T          // (N, r)
 *   y = x W^T + scaling * t B^T // (N, O)
 * </pre>
 *
 * A (r, I), B (O, r). The base weight's gradient is null when it is frozen, and then its product
 * dy^T x is skipped; dx always flows. Gradients accumulate (+=) into F32 buffers.
 *
 * <p>Dropout (training only) multiplies x by a mask of 0 and 1/(1-p) drawn on the host, as the
 * router jitter is: it is off by default and this keeps the {@link Backend} free of a random op.
 */
final class LoraLinear {
  private final Backend be;
  private final Tensor w; // (O, I)
  private final Tensor gw; // F32 (O, I) +=, or null when frozen
  private final Tensor a; // (r, I) or null without an adapter
  private final Tensor b; // (O, r)
  private final Tensor ga; // F32 (r, I) +=
  private final Tensor gb; // F32 (O, r) +=
  private final float scaling;
  private final float dropout;

  /** The layer whose weight is {@code base + ".weight"}, with its adapter when p has one. */
  LoraLinear(Parameters p, String base) {
    this.w = p.weight(MixtralNames.weight(base));
    this.gw = p.grad(MixtralNames.weight(base));
    this.be = w.backend();
    String an = MixtralNames.lora(base, "A");
    if (p.has(an)) {
      this.a = p.weight(an);
      this.b = p.weight(MixtralNames.lora(base, "B"));
      this.ga = p.grad(an);
      this.gb = p.grad(MixtralNames.lora(base, "B"));
      this.scaling = p.lora().scaling();
      this.dropout = (float) p.lora().dropout();
    } else {
      this.a = null;
      this.b = null;
      this.ga = null;
      this.gb = null;
      this.scaling = 0f;
      this.dropout = 0f;
    }
  }

  /** The base weight (O, I). */
  Tensor weight() {
    return w;
  }

  /** What the backward needs beyond x: the adapter's t and the dropout mask. */
  static final class Saved implements AutoCloseable {
    final Tensor t; // (N, r)
    final Tensor xd; // (N, I) dropout(x), or null when it is x itself
    final float[] mask; // (N*I) dropout factors, or null

    Saved(Tensor t, Tensor xd, float[] mask) {
      this.t = t;
      this.xd = xd;
      this.mask = mask;
    }

    @Override
    public void close() {
      t.close();
      if (xd != null) {
        xd.close();
      }
    }
  }

  /**
   * y (N, O) overwrite from x (N, I). rng is non-null in training, where dropout applies. Returns
   * the adapter's saved state, or null without an adapter.
   */
  Saved forward(Tensor x, Tensor y, SplittableRandom rng) {
    be.matmul(x, false, w, true, y, 1f, 0f);
    if (a == null) {
      return null;
    }
    Tensor xd = null;
    float[] mask = null;
    if (rng != null && dropout > 0) {
      mask = new float[Math.toIntExact(x.numel())];
      float keep = 1f / (1f - dropout);
      for (int i = 0; i < mask.length; i++) {
        mask[i] = rng.nextDouble() < dropout ? 0f : keep;
      }
      xd = multiplyOnHost(x, mask);
    }
    Tensor t = be.empty(x.dtype(), x.rows(), a.dim(0));
    be.matmul(xd == null ? x : xd, false, a, true, t, 1f, 0f);
    be.matmul(t, false, b, true, y, scaling, 1f);
    return new Saved(t, xd, mask);
  }

  /**
   * Backward: dy (N, O), x (N, I) the forward's input, s its saved state (null without an adapter).
   * dx (N, I) is overwritten (beta 0) or accumulated into (beta 1); null skips it.
   */
  void backward(Saved s, Tensor dy, Tensor x, Tensor dx, float beta) {
    if (dx != null) {
      be.matmul(dy, false, w, false, dx, 1f, beta);
    }
    if (gw != null) {
      be.matmul(dy, true, x, false, gw, 1f, 1f);
    }
    if (a == null) {
      return;
    }
    be.matmul(dy, true, s.t, false, gb, scaling, 1f); // dB += s dy^T t
    try (Tensor dt = be.empty(dy.dtype(), dy.rows(), a.dim(0))) {
      be.matmul(dy, false, b, false, dt, scaling, 0f); // dt = s dy B  (N, r)
      be.matmul(dt, true, s.xd == null ? x : s.xd, false, ga, 1f, 1f); // dA += dt^T dropout(x)
      if (dx == null) {
        return;
      }
      if (s.mask == null) {
        be.matmul(dt, false, a, false, dx, 1f, 1f);
      } else {
        try (Tensor dxd = be.empty(dx.dtype(), dx.shape())) {
          be.matmul(dt, false, a, false, dxd, 1f, 0f);
          try (Tensor masked = multiplyOnHost(dxd, s.mask)) {
            be.add(dx, masked, dx);
          }
        }
      }
    }
  }

  /** A new tensor x * factors, elementwise, computed on the host. */
  private Tensor multiplyOnHost(Tensor x, float[] factors) {
    float[] v = be.download(x).toFloatArray();
    for (int i = 0; i < v.length; i++) {
      v[i] *= factors[i];
    }
    return be.upload(HostTensor.ofFloats(v, x.shape()), x.dtype());
  }
}
