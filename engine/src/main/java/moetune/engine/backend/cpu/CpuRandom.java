package moetune.engine.backend.cpu;

import static moetune.engine.backend.cpu.CpuElementwise.CHUNK;

import moetune.engine.backend.Backend;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/** randomNormal: a counter-based normal sampler. The GPU twin is {@code CudaRandom} (random.cu). */
final class CpuRandom {
  private final Parallel par;

  CpuRandom(Parallel par) {
    this.par = par;
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
}
