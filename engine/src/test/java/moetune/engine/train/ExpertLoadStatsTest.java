package moetune.engine.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;

/**
 * The device-side expert-load sums ({@code Backend#expertLoadStats} read by {@link
 * RouterStats#ofSums}) give what the host-side monitor computed token by token ({@link
 * RouterStats#addToken}).
 */
class ExpertLoadStatsTest {

  @Test
  void deviceSumsMatchTheTokenByTokenMonitor() {
    int layers = 3, n = 50, e = 5, k = 2;
    SplittableRandom rnd = new SplittableRandom(5);
    float[] probs = new float[layers * n * e];
    int[] top = new int[layers * n * k];
    float[] mask = new float[layers * n];
    boolean[] real = new boolean[n];
    for (int i = 0; i < n; i++) {
      real[i] = i % 7 != 3; // padding at some positions, the same in every layer
    }
    for (int r = 0; r < layers * n; r++) {
      float sum = 0;
      for (int x = 0; x < e; x++) {
        probs[r * e + x] = x == 4 && r % 3 == 0 ? 0f : (float) rnd.nextDouble();
        sum += probs[r * e + x];
      }
      for (int x = 0; x < e; x++) {
        probs[r * e + x] /= sum;
      }
      int a = rnd.nextInt(e);
      top[r * k] = a;
      top[r * k + 1] = (a + 1 + rnd.nextInt(e - 1)) % e;
      mask[r] = real[r % n] ? 1f : 0f;
    }
    RouterStats expected = new RouterStats(layers, e);
    for (int l = 0; l < layers; l++) {
      for (int i = 0; i < n; i++) {
        if (real[i]) {
          int row = l * n + i;
          expected.addToken(l, probs, row * e, top, row * k, k);
        }
      }
    }
    try (CpuBackend cpu = new CpuBackend(1);
        Tensor p = cpu.upload(HostTensor.ofFloats(probs, layers * n, e));
        Tensor t = cpu.upload(HostTensor.ofInts(top, layers * n, k));
        Tensor m = cpu.upload(HostTensor.ofFloats(mask, layers * n));
        Tensor acc = cpu.zeros(DType.F32, layers, e + 2)) {
      // two micro-batches' worth: the sums accumulate, shares and mean entropy stay the same
      cpu.expertLoadStats(p, t, m, acc);
      cpu.expertLoadStats(p, t, m, acc);
      RouterStats got = RouterStats.ofSums(layers, e, cpu.download(acc).toFloatArray());
      expected.add(copy(expected, layers, e)); // the same two micro-batches, token by token
      ExpertLoad want = expected.toExpertLoad(1);
      ExpertLoad have = got.toExpertLoad(1);
      for (int l = 0; l < layers; l++) {
        assertArrayEquals(want.share()[l], have.share()[l], 1e-9, "layer " + l + " shares");
        assertEquals(want.entropy()[l], have.entropy()[l], 1e-6, "layer " + l + " entropy");
      }
    }
  }

  private static RouterStats copy(RouterStats s, int layers, int e) {
    RouterStats c = new RouterStats(layers, e);
    c.add(s);
    return c;
  }
}
