package moetune.engine.backend.cpu;

import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/** add, axpy, scale, fill, copy and SwiGLU: one output element per input element. */
final class CpuElementwise {
  /** Elements per parallel chunk: large enough that the fork costs nothing. */
  static final int CHUNK = 1 << 15;

  private final Parallel par;

  CpuElementwise(Parallel par) {
    this.par = par;
  }

  /** out = a + b (overwrite; out may alias a or b). */
  void add(Tensor at, Tensor bt, Tensor outt) {
    CpuTensor a = Args.f32("add", "a", at);
    CpuTensor b = Args.f32("add", "b", bt, a.numel());
    CpuTensor out = Args.f32("add", "out", outt, a.numel());
    float[] x = a.floats();
    float[] y = b.floats();
    float[] o = out.floats();
    int xo = a.offset();
    int yo = b.offset();
    int oo = out.offset();
    par.forChunks(
        a.size(),
        CHUNK,
        (s, e) -> {
          for (int i = s; i < e; i++) {
            o[oo + i] = x[xo + i] + y[yo + i];
          }
        });
  }

  /** dst += alpha * src. */
  void axpy(float alpha, Tensor srct, Tensor dstt) {
    CpuTensor src = Args.f32("axpy", "src", srct);
    CpuTensor dst = Args.f32("axpy", "dst", dstt, src.numel());
    float[] x = src.floats();
    float[] y = dst.floats();
    int xo = src.offset();
    int yo = dst.offset();
    par.forChunks(
        src.size(),
        CHUNK,
        (s, e) -> {
          for (int i = s; i < e; i++) {
            y[yo + i] += alpha * x[xo + i];
          }
        });
  }

  /** x *= s in place. */
  void scale(Tensor xt, float s) {
    CpuTensor x = Args.f32("scale", "x", xt);
    float[] d = x.floats();
    int off = x.offset();
    par.forChunks(
        x.size(),
        CHUNK,
        (lo, hi) -> {
          for (int i = lo; i < hi; i++) {
            d[off + i] *= s;
          }
        });
  }

  /** Every element set to value (an I32 tensor takes (int) value, which must be integral). */
  void fill(Tensor tt, float value) {
    CpuTensor t = Args.cpu("fill", "t", tt);
    int off = t.offset();
    if (t.dtype() == DType.F32) {
      float[] d = t.floats();
      par.forChunks(t.size(), CHUNK, (s, e) -> java.util.Arrays.fill(d, off + s, off + e, value));
    } else {
      int v = (int) value;
      if (v != value) {
        throw new IllegalArgumentException(
            "fill: I32 tensor " + t.describe() + " cannot hold " + value);
      }
      int[] d = t.ints();
      par.forChunks(t.size(), CHUNK, (s, e) -> java.util.Arrays.fill(d, off + s, off + e, v));
    }
  }

  /** t = std * N(0, 1), element i from (seed, i) alone: see {@link Backend#randomNormal}. */
  void randomNormal(Tensor tt, long seed, float std) {
    CpuTensor t = Args.cpu("randomNormal", "t", tt);
    if (t.dtype() != DType.F32) {
      throw new IllegalArgumentException(
          "randomNormal: t " + t.describe() + " must be F32 on the CPU");
    }
    int off = t.offset();
    float[] d = t.floats();
    par.forChunks(
        t.size(),
        CHUNK,
        (s, e) -> {
          for (int i = s; i < e; i++) {
            d[off + i] = std * standardNormal(seed, i);
          }
        });
  }

  /** The standard normal of counter i under seed, as random_normal_kernel computes it. */
  static float standardNormal(long seed, long i) {
    long z = seed + (i + 1) * 0x9E3779B97F4A7C15L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    z = z ^ (z >>> 31);
    float u1 = (float) ((z >>> 40) + 1) * 5.9604645e-08f; // 2^-24
    float u2 = (float) ((z >>> 16) & 0xFFFFFFL) * 5.9604645e-08f;
    float r = (float) Math.sqrt(-2.0f * (float) Math.log(u1));
    return r * (float) Math.cos(6.2831855f * u2);
  }

  /** dst = src, F32 to F32, I32 to I32, or I32 to F32 (exact for |v| < 2^24). */
  void copy(Tensor srct, Tensor dstt) {
    CpuTensor src = Args.cpu("copy", "src", srct);
    CpuTensor dst = Args.cpu("copy", "dst", dstt);
    Args.numel("copy", "dst", dst, src.numel());
    int so = src.offset();
    int d0 = dst.offset();
    int n = src.size();
    if (src.dtype() == dst.dtype()) {
      // System.arraycopy handles overlapping ranges of one array as memmove does.
      if (src.dtype() == DType.F32) {
        System.arraycopy(src.floats(), so, dst.floats(), d0, n);
      } else {
        System.arraycopy(src.ints(), so, dst.ints(), d0, n);
      }
    } else if (src.dtype() == DType.I32) {
      int[] s = src.ints();
      float[] d = dst.floats();
      par.forChunks(
          n,
          CHUNK,
          (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
              d[d0 + i] = s[so + i];
            }
          });
    } else {
      throw new IllegalArgumentException(
          "copy: cannot convert " + src.describe() + " to " + dst.describe() + " (float to int)");
    }
  }

  /** a = silu(h[:, :F]) * h[:, F:]; h (M, 2F), a (M, F) overwrite. */
  void swigluForward(Tensor ht, Tensor at) {
    CpuTensor a = Args.f32("swigluForward", "a", at);
    int f = Math.toIntExact(a.cols());
    int m = Args.rows("swigluForward", "a", a, f);
    CpuTensor h = Args.f32("swigluForward", "h", ht, 2L * m * f);
    float[] hd = h.floats();
    float[] ad = a.floats();
    int ho = h.offset();
    int ao = a.offset();
    par.forChunks(
        m,
        Math.max(1, CHUNK / (2 * f)),
        (r0, r1) -> {
          for (int r = r0; r < r1; r++) {
            int hr = ho + r * 2 * f;
            int ar = ao + r * f;
            for (int j = 0; j < f; j++) {
              float g = hd[hr + j];
              float u = hd[hr + f + j];
              ad[ar + j] = silu(g) * u;
            }
          }
        });
  }

  /** dH (M, 2F) overwrite from dA (M, F) and h (M, 2F); dH may alias h. */
  void swigluBackward(Tensor dat, Tensor ht, Tensor dht) {
    CpuTensor da = Args.f32("swigluBackward", "dA", dat);
    int f = Math.toIntExact(da.cols());
    int m = Args.rows("swigluBackward", "dA", da, f);
    CpuTensor h = Args.f32("swigluBackward", "h", ht, 2L * m * f);
    CpuTensor dh = Args.f32("swigluBackward", "dH", dht, 2L * m * f);
    float[] dad = da.floats();
    float[] hd = h.floats();
    float[] dhd = dh.floats();
    int dao = da.offset();
    int ho = h.offset();
    int dho = dh.offset();
    par.forChunks(
        m,
        Math.max(1, CHUNK / (2 * f)),
        (r0, r1) -> {
          for (int r = r0; r < r1; r++) {
            for (int j = 0; j < f; j++) {
              float g = hd[ho + r * 2 * f + j];
              float u = hd[ho + r * 2 * f + f + j];
              float d = dad[dao + r * f + j];
              float sig = sigmoid(g);
              // d silu(g)/dg = sig * (1 + g * (1 - sig))
              dhd[dho + r * 2 * f + j] = d * u * (sig * (1f + g * (1f - sig)));
              dhd[dho + r * 2 * f + f + j] = d * (g * sig);
            }
          }
        });
  }

  /** torch's silu in float32: x / (1 + exp(-x)). */
  static float silu(float x) {
    return x / (1f + (float) Math.exp(-x));
  }

  static float sigmoid(float x) {
    return 1f / (1f + (float) Math.exp(-x));
  }
}
