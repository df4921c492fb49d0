package moetune.engine.backend.cpu;

import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.Tensor;

/**
 * HF rotary position embedding (rotate_half convention), computed as transformers does in float32:
 * inv_freq[i] = 1 / theta^(2i/hd) (the exponent and the power in float32), angle = position *
 * inv_freq[i] rounded to float32, then cos and sin of that float32 angle.
 */
final class CpuRope {
  private static final int TOKENS_PER_TASK = 16;

  private final Parallel par;

  CpuRope(Parallel par) {
    this.par = par;
  }

  /** In place on x (N, heads, hd): forward rotation (sign +1) or its inverse (sign -1). */
  void apply(String op, Tensor xt, Tensor post, float theta, boolean inverse) {
    CpuTensor x = Args.f32(op, "x", xt);
    CpuTensor pos = Args.i32(op, "positions", post);
    int[] nhd = OpShapes.rope(op, x, pos);
    int n = nhd[0], heads = nhd[1], hd = nhd[2];
    int half = hd / 2;
    float[] invFreq = invFreq(theta, hd);
    float[] xv = x.floats();
    int xo = x.offset();
    int[] pv = pos.ints();
    int po = pos.offset();
    par.forChunks(
        n,
        TOKENS_PER_TASK,
        (t0, t1) -> {
          float[] cos = new float[half];
          float[] sin = new float[half];
          for (int t = t0; t < t1; t++) {
            float p = pv[po + t];
            for (int i = 0; i < half; i++) {
              float angle = p * invFreq[i];
              cos[i] = (float) Math.cos(angle);
              sin[i] = inverse ? -(float) Math.sin(angle) : (float) Math.sin(angle);
            }
            for (int h = 0; h < heads; h++) {
              int base = xo + (t * heads + h) * hd;
              for (int i = 0; i < half; i++) {
                float x1 = xv[base + i];
                float x2 = xv[base + half + i];
                // q * cos + rotate_half(q) * sin, rotate_half(q) = (-x2, x1)
                xv[base + i] = x1 * cos[i] - x2 * sin[i];
                xv[base + half + i] = x2 * cos[i] + x1 * sin[i];
              }
            }
          }
        });
  }

  /** transformers' default inv_freq: 1.0 / (base ** (arange(0, hd, 2).float() / hd)) in float32. */
  static float[] invFreq(float theta, int hd) {
    float[] inv = new float[hd / 2];
    for (int i = 0; i < inv.length; i++) {
      float exponent = (float) (2 * i) / (float) hd;
      float power = (float) Math.pow(theta, exponent);
      inv[i] = 1f / power;
    }
    return inv;
  }
}
