package moetune.engine.backend.cpu;

import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * add, axpy, scale, fill and copy: one output element per input element. The GPU twin is {@code
 * CudaElementwise} (elementwise.cu); shapes are checked by {@link OpShapes}.
 */
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
    CpuTensor b = Args.f32("add", "b", bt);
    CpuTensor out = Args.f32("add", "out", outt);
    OpShapes.add(a, b, out);
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
    CpuTensor dst = Args.f32("axpy", "dst", dstt);
    OpShapes.axpy(src, dst);
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

  /** dst = src, F32 to F32, I32 to I32, or I32 to F32 (exact for |v| < 2^24). */
  void copy(Tensor srct, Tensor dstt) {
    CpuTensor src = Args.cpu("copy", "src", srct);
    CpuTensor dst = Args.cpu("copy", "dst", dstt);
    OpShapes.copy(src, dst);
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
}
