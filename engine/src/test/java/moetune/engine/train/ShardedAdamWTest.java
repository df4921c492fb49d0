package moetune.engine.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.Random;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.dist.LocalCommunicator;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.Parameters;
import moetune.engine.optim.AdamW;
import moetune.engine.optim.ShardedAdamW;
import moetune.engine.tensor.HostTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * ZeRO-1 AdamW on N in-process ranks against AdamW on one rank whose gradient is the sum of the
 * ranks' gradients, on the tiny Mixtral's real parameter layout (norm vectors without weight decay,
 * so decay runs cross bucket and chunk boundaries).
 */
class ShardedAdamWTest {
  static final int STEPS = 3;

  /** Rank r's gradient at step s: fixed pseudo-random values, exact in float32. */
  static float[] grad(int rank, int step, int n) {
    Random rnd = new Random(1000L * rank + step);
    float[] g = new float[n];
    for (int i = 0; i < n; i++) g[i] = (rnd.nextInt(2001) - 1000) / 512f;
    return g;
  }

  static MixtralModel model(moetune.engine.backend.Backend be) {
    return TinyMixtral.model(be, TinyMixtral.config(0.02), 5);
  }

  static AdamW.Settings settings(float clip) {
    return new AdamW.Settings(0.9f, 0.95f, 1e-8f, 0.1f, clip);
  }

  /** One rank, gradient = the ranks' gradients summed in rank order (as the twin sums them). */
  static float[][] reference(int world, float clip) {
    try (CpuBackend be = new CpuBackend(1);
        MixtralModel m = model(be)) {
      Parameters p = m.parameters();
      int n = (int) p.count();
      float[] norms = new float[STEPS];
      try (AdamW opt = new AdamW(p, settings(clip), AdamW.DECAY_MATRICES)) {
        for (int s = 0; s < STEPS; s++) {
          float[] sum = new float[n];
          for (int r = 0; r < world; r++) {
            float[] g = grad(r, s, n);
            for (int i = 0; i < n; i++) sum[i] += g[i];
          }
          be.copyFromHost(HostTensor.ofFloats(sum, n), p.gradFlat());
          opt.step(1e-2f);
          norms[s] = opt.lastGradNorm();
        }
      }
      return new float[][] {be.download(p.masterFlat()).toFloatArray(), norms};
    }
  }

  static List<float[][]> sharded(int world, long chunk, float clip) {
    return LocalCommunicator.run(
        world,
        comm -> {
          try (CpuBackend be = new CpuBackend(1);
              MixtralModel m = model(be)) {
            Parameters p = m.parameters();
            int n = (int) p.count();
            float[] norms = new float[STEPS];
            try (ShardedAdamW opt =
                new ShardedAdamW(p, settings(clip), AdamW.DECAY_MATRICES, comm, chunk)) {
              for (int s = 0; s < STEPS; s++) {
                opt.gradientsZeroed();
                be.copyFromHost(HostTensor.ofFloats(grad(comm.rank(), s, n), n), p.gradFlat());
                opt.step(1e-2f);
                norms[s] = opt.lastGradNorm();
              }
            }
            return new float[][] {be.download(p.masterFlat()).toFloatArray(), norms};
          }
        });
  }

  /**
   * Without clipping the update of every element reads only that element's summed gradient, which
   * the twin adds in the same order as the reference: bit for bit, whatever the buckets.
   */
  @ParameterizedTest
  @CsvSource({"2, 37", "3, 1000", "4, 64", "3, 4194304"})
  void withoutClippingEqualsOneRankBitForBit(int world, long chunk) {
    float[][] ref = reference(world, 0f);
    List<float[][]> got = sharded(world, chunk, 0f);
    for (int r = 0; r < world; r++) {
      assertArrayEquals(ref[0], got.get(r)[0], "weights on rank " + r);
    }
  }

  /**
   * With clipping the squared norm is summed per shard and then across ranks, another order than
   * one buffer's sum: the norm and the clip factor agree to float32 rounding (a few ulp), and the
   * weights to that relative error times the step size.
   */
  @Test
  void withClippingAgreesToRounding() {
    int world = 3;
    float[][] ref = reference(world, 1.0f);
    List<float[][]> got = sharded(world, 53, 1.0f);
    for (int r = 0; r < world; r++) {
      for (int s = 0; s < STEPS; s++) {
        assertEquals(ref[1][s], got.get(r)[1][s], 1e-5 * ref[1][s], "grad norm, step " + s);
      }
      float max = 0;
      for (int i = 0; i < ref[0].length; i++) {
        max = Math.max(max, Math.abs(ref[0][i] - got.get(r)[0][i]));
      }
      // lr 1e-2, 3 steps: a clip factor off by 1e-6 relative moves an update by << 1e-7
      assertTrue(max < 1e-6f, "weights differ by " + max + " on rank " + r);
      assertArrayEquals(got.get(0)[0], got.get(r)[0], "every rank holds the same weights");
    }
  }

  /** The gathered state is AdamW's; a shard restored from it on another world size continues. */
  @Test
  void stateSavedOnTwoRanksLoadsOnThreeAndOnOne() {
    int n;
    Map<String, HostTensor> saved;
    try (CpuBackend be = new CpuBackend(1);
        MixtralModel m = model(be)) {
      n = (int) m.parameters().count();
    }
    List<Map<String, HostTensor>> states =
        LocalCommunicator.run(
            2,
            comm -> {
              try (CpuBackend be = new CpuBackend(1);
                  MixtralModel m = model(be);
                  ShardedAdamW opt =
                      new ShardedAdamW(
                          m.parameters(), settings(0f), AdamW.DECAY_MATRICES, comm, 29)) {
                be.copyFromHost(
                    HostTensor.ofFloats(grad(comm.rank(), 0, n), n), m.parameters().gradFlat());
                opt.step(1e-2f);
                return opt.stateToHost();
              }
            });
    saved = states.get(0);
    Map<String, HostTensor> ref;
    try (CpuBackend be = new CpuBackend(1);
        MixtralModel m = model(be);
        AdamW opt = new AdamW(m.parameters(), settings(0f), AdamW.DECAY_MATRICES)) {
      float[] sum = new float[n];
      for (int r = 0; r < 2; r++) {
        float[] g = grad(r, 0, n);
        for (int i = 0; i < n; i++) sum[i] += g[i];
      }
      be.copyFromHost(HostTensor.ofFloats(sum, n), m.parameters().gradFlat());
      opt.step(1e-2f);
      ref = opt.stateToHost();
      assertEquals(ref.keySet(), saved.keySet());
      for (String k : ref.keySet()) {
        assertArrayEquals(ref.get(k).toFloatArray(), saved.get(k).toFloatArray(), k);
        assertArrayEquals(
            ref.get(k).toFloatArray(), states.get(1).get(k).toFloatArray(), k + " on rank 1");
      }
    }
    // restored on 3 ranks, every rank's gathered state is the saved one
    List<Map<String, HostTensor>> again =
        LocalCommunicator.run(
            3,
            comm -> {
              try (CpuBackend be = new CpuBackend(1);
                  MixtralModel m = model(be);
                  ShardedAdamW opt =
                      new ShardedAdamW(
                          m.parameters(), settings(0f), AdamW.DECAY_MATRICES, comm, 11)) {
                opt.loadState(saved, 1);
                assertEquals(1, opt.stepCount());
                return opt.stateToHost();
              }
            });
    for (Map<String, HostTensor> s : again) {
      for (String k : ref.keySet()) {
        assertArrayEquals(ref.get(k).toFloatArray(), s.get(k).toFloatArray(), k + " on 3 ranks");
      }
    }
  }
}
