package moetune.engine.backend;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;
import moetune.engine.testing.TestSeeds;
import org.junit.jupiter.api.Test;

/**
 * The fused, chunked LM head + cross-entropy on the CPU oracle against the unfused path the model
 * ran before (matmul into whole (N, V) logits, crossEntropy with the gradient in place, then dx =
 * dlogits @ w and dw += dlogits^T @ x).
 *
 * <p>Losses and dx are bitwise equal for every chunk size: each logit and each dx element is the
 * same dot product, summed by CpuMatmul over its inner dimension from 0 in ascending order whatever
 * the number of rows, and crossEntropy works row by row. dw is bitwise equal with one chunk; with
 * several its sum over the N rows is split into one float32 partial sum per chunk, added in turn,
 * so it may differ by float32 rounding of an N-term sum: checked at 1e-6 relative to the largest
 * |dw| (each term is at most |dScale| |x|, N = 37 terms).
 */
class LmHeadChunksTest {
  private static final long SEED = TestSeeds.seed("LmHeadChunksTest", 11);
  static final int N = 37;
  static final int D = 48;
  static final int V = 301;

  private record Result(float[] losses, float[] dx, float[] dw) {}

  private static float[] randn(Random r, int n, double scale) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) (r.nextGaussian() * scale);
    }
    return v;
  }

  private final Random rnd = new Random(SEED);
  private final float[] x = randn(rnd, N * D, 1);
  private final float[] w = randn(rnd, V * D, 0.2);
  private final float[] dw0 = randn(rnd, V * D, 0.01);
  private final int[] targets = targets(rnd);

  private static int[] targets(Random r) {
    int[] t = new int[N];
    for (int i = 0; i < N; i++) {
      t[i] = i % 6 == 4 ? -100 : r.nextInt(V);
    }
    return t;
  }

  private Result unfused(Backend be, float dScale) {
    try (Tensor xt = be.upload(HostTensor.ofFloats(x, N, D));
        Tensor wt = be.upload(HostTensor.ofFloats(w, V, D));
        Tensor t = be.upload(HostTensor.ofInts(targets, N));
        Tensor logits = be.empty(DType.F32, N, V);
        Tensor losses = be.empty(DType.F32, N);
        Tensor dx = be.empty(DType.F32, N, D);
        Tensor dw = be.upload(HostTensor.ofFloats(dw0, V, D))) {
      be.matmul(xt, false, wt, true, logits, 1f, 0f);
      be.crossEntropy(logits, t, losses, logits, dScale);
      be.matmul(logits, false, wt, false, dx, 1f, 0f);
      be.matmul(logits, true, xt, false, dw, 1f, 1f);
      return new Result(
          be.download(losses).toFloatArray(),
          be.download(dx).toFloatArray(),
          be.download(dw).toFloatArray());
    }
  }

  private Result fused(Backend be, float dScale, int chunk, boolean withDx, boolean withDw) {
    try (Tensor xt = be.upload(HostTensor.ofFloats(x, N, D));
        Tensor wt = be.upload(HostTensor.ofFloats(w, V, D));
        Tensor t = be.upload(HostTensor.ofInts(targets, N));
        Tensor losses = be.empty(DType.F32, N);
        Tensor dx = be.empty(DType.F32, N, D);
        Tensor dw = be.upload(HostTensor.ofFloats(dw0, V, D))) {
      be.fill(losses, Float.NaN);
      be.fill(dx, Float.NaN);
      be.lmHeadCrossEntropy(
          xt, wt, t, losses, withDx ? dx : null, withDw ? dw : null, dScale, chunk);
      return new Result(
          be.download(losses).toFloatArray(),
          be.download(dx).toFloatArray(),
          be.download(dw).toFloatArray());
    }
  }

  @Test
  void lossesAndDxAreBitwiseTheUnfusedOnesForEveryChunkSize() {
    try (CpuBackend cpu = new CpuBackend(3)) {
      Result ref = unfused(cpu, 0.125f);
      for (int chunk : new int[] {1, 5, 8, 36, 37, 64}) {
        Result f = fused(cpu, 0.125f, chunk, true, true);
        assertArrayEquals(ref.losses(), f.losses(), "losses, chunk " + chunk);
        assertArrayEquals(ref.dx(), f.dx(), "dx, chunk " + chunk);
        if (chunk >= N) {
          assertArrayEquals(ref.dw(), f.dw(), "dw, one chunk " + chunk);
        } else {
          float max = 0;
          for (float v : ref.dw()) {
            max = Math.max(max, Math.abs(v));
          }
          for (int i = 0; i < ref.dw().length; i++) {
            assertEquals(ref.dw()[i], f.dw()[i], 1e-6 * max, "dw[" + i + "], chunk " + chunk);
          }
        }
      }
    }
  }

  @Test
  void withoutGradientsOnlyTheLossesAreWritten() {
    try (CpuBackend cpu = new CpuBackend(2)) {
      Result ref = unfused(cpu, 1f);
      Result f = fused(cpu, 0f, 7, false, false);
      assertArrayEquals(ref.losses(), f.losses());
      for (float v : f.dx()) {
        assertTrue(Float.isNaN(v), "dx untouched");
      }
      assertArrayEquals(dw0, f.dw(), "dw untouched");
      // dx alone: the weight-gradient product is skipped (a frozen head)
      Result g = fused(cpu, 0.125f, 7, true, false);
      assertArrayEquals(unfused(cpu, 0.125f).dx(), g.dx());
      assertArrayEquals(dw0, g.dw());
    }
  }

  @Test
  void chunkRowsFitTheTargetBuffer() {
    // 1.5B model: 32000 bf16 logits per row -> 1024 rows = 62.5 MiB
    assertEquals(1024, LmHeadChunks.rows(32000, DType.BF16));
    assertEquals(512, LmHeadChunks.rows(32000, DType.F32));
    assertEquals(1, LmHeadChunks.rows(1L << 30, DType.F32));
    assertEquals(55680, LmHeadChunks.rows(301, DType.F32)); // 55738 rounded down to 64s
  }

  @Test
  void badShapesNameTheOpAndTheTensor() {
    try (CpuBackend cpu = new CpuBackend(1);
        Tensor xt = cpu.empty(DType.F32, N, D);
        Tensor wt = cpu.empty(DType.F32, V, D + 1);
        Tensor t = cpu.empty(DType.I32, N);
        Tensor l = cpu.empty(DType.F32, N)) {
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class,
              () -> cpu.lmHeadCrossEntropy(xt, wt, t, l, null, null, 0f, 8));
      assertTrue(e.getMessage().startsWith("lmHeadCrossEntropy: w F32[301, 49]"), e.getMessage());
    }
  }
}
