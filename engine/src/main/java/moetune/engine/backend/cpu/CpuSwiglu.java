package moetune.engine.backend.cpu;

import static moetune.engine.backend.cpu.CpuElementwise.CHUNK;

import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.Tensor;

/**
 * swigluForward and swigluBackward: Mixtral's expert activation silu(gate) * up over the fused (M,
 * 2F) gate/up product. The GPU twin is {@code CudaSwiglu} (swiglu.cu); shapes are checked by {@link
 * OpShapes}.
 */
final class CpuSwiglu {
  private final Parallel par;

  CpuSwiglu(Parallel par) {
    this.par = par;
  }

  /** a = silu(h[:, :F]) * h[:, F:]; h (M, 2F), a (M, F) overwrite. */
  void forward(Tensor ht, Tensor at) {
    forward(ht, at, false);
  }

  /**
   * In place: h (M, 2F) = [gate | up] becomes [p | q] = [up s (1 + gate (1 - s)) | gate s], s =
   * sigmoid(gate) (the factors swigluBackward multiplies dA by), after a (M, F) = silu(gate) * up
   * overwrite.
   */
  void factors(Tensor ht, Tensor at) {
    forward(ht, at, true);
  }

  private void forward(Tensor ht, Tensor at, boolean factors) {
    String op = factors ? "swigluFactors" : "swigluForward";
    CpuTensor a = Args.f32(op, "a", at);
    CpuTensor h = Args.f32(op, "h", ht);
    int[] mf = OpShapes.swigluForward(h, a);
    int m = mf[0], f = mf[1];
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
              if (factors) {
                float sig = sigmoid(g);
                hd[hr + j] = u * (sig * (1f + g * (1f - sig)));
                hd[hr + f + j] = g * sig;
              }
            }
          }
        });
  }

  /** dH (M, 2F) overwrite from dA (M, F) and h (M, 2F); dH may alias h. */
  void backward(Tensor dat, Tensor ht, Tensor dht) {
    backward(dat, ht, dht, false);
  }

  /**
   * dH (M, 2F) = [dA p | dA q] from dA (M, F) and the factors [p | q] (M, 2F); dH may alias them.
   */
  void backwardFactors(Tensor dat, Tensor pt, Tensor dht) {
    backward(dat, pt, dht, true);
  }

  private void backward(Tensor dat, Tensor ht, Tensor dht, boolean factors) {
    String op = factors ? "swigluBackwardFactors" : "swigluBackward";
    CpuTensor da = Args.f32(op, "dA", dat);
    CpuTensor h = Args.f32(op, factors ? "p" : "h", ht);
    CpuTensor dh = Args.f32(op, "dH", dht);
    int[] mf = OpShapes.swigluBackward(da, h, dh);
    int m = mf[0], f = mf[1];
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
              if (factors) { // g, u hold p = d a / d gate and q = d a / d up
                dhd[dho + r * 2 * f + j] = d * g;
                dhd[dho + r * 2 * f + f + j] = d * u;
              } else {
                float sig = sigmoid(g);
                // d silu(g)/dg = sig * (1 + g * (1 - sig))
                dhd[dho + r * 2 * f + j] = d * u * (sig * (1f + g * (1f - sig)));
                dhd[dho + r * 2 * f + f + j] = d * (g * sig);
              }
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
