package moetune.engine.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The in-process communicator against sums and concatenations written out by hand. */
class LocalCommunicatorTest {

  /** Rank r's value i: distinct per (rank, i), exact in float32. */
  static float val(int r, int i) {
    return 1000f * r + i + 0.25f;
  }

  static float[] values(int r, int n) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) x[i] = val(r, i);
    return x;
  }

  @ParameterizedTest
  @ValueSource(ints = {1, 2, 3, 5})
  void allReduceReduceScatterAllGather(int n) {
    int len = 7; // per-rank chunk, not a power of two
    List<float[][]> results =
        LocalCommunicator.run(
            n,
            comm -> {
              try (CpuBackend be = new CpuBackend(1)) {
                int r = comm.rank();
                Tensor x = be.upload(HostTensor.ofFloats(values(r, len * n), len * n));
                Tensor rs = be.zeros(DType.F32, len);
                comm.reduceScatterSum(x, rs);
                Tensor ag = be.zeros(DType.F32, len * n);
                comm.allGather(be.upload(HostTensor.ofFloats(values(r, len), len)), ag);
                comm.allReduceSum(x);
                double[] h = {r, 1};
                comm.allReduceSum(h);
                return new float[][] {
                  be.download(x).toFloatArray(),
                  be.download(rs).toFloatArray(),
                  be.download(ag).toFloatArray(),
                  {(float) h[0], (float) h[1]}
                };
              }
            });
    for (int r = 0; r < n; r++) {
      float[][] got = results.get(r);
      float[] sum = new float[len * n];
      float[] cat = new float[len * n];
      for (int q = 0; q < n; q++) {
        for (int i = 0; i < len * n; i++) sum[i] += val(q, i);
        for (int i = 0; i < len; i++) cat[q * len + i] = val(q, i);
      }
      float[] mine = new float[len];
      System.arraycopy(sum, r * len, mine, 0, len);
      assertArrayEquals(sum, got[0], "allReduce on rank " + r);
      assertArrayEquals(mine, got[1], "reduceScatter on rank " + r);
      assertArrayEquals(cat, got[2], "allGather on rank " + r);
      assertArrayEquals(new float[] {n * (n - 1) / 2f, n}, got[3], "host allReduce");
    }
  }

  @Test
  void inPlaceAllGatherAndReduceScatter() {
    int n = 3, len = 4;
    List<float[]> results =
        LocalCommunicator.run(
            n,
            comm -> {
              try (CpuBackend be = new CpuBackend(1)) {
                int r = comm.rank();
                Tensor x = be.upload(HostTensor.ofFloats(values(r, len * n), len * n));
                comm.reduceScatterSum(x, x.view(r * len, len)); // out is this rank's chunk of in
                comm.allGather(x.view(r * len, len), x); // and back, in place
                return be.download(x).toFloatArray();
              }
            });
    float[] expect = new float[len * n];
    for (int q = 0; q < n; q++) {
      for (int i = 0; i < len * n; i++) expect[i] += val(q, i);
    }
    for (float[] got : results) {
      assertArrayEquals(expect, got);
    }
  }

  /** Rank r sends (r + j) % 3 elements to rank j, some of them zero. */
  @Test
  void allToAllWithUnevenAndEmptyCounts() {
    int n = 3;
    List<float[]> results =
        LocalCommunicator.run(
            n,
            comm -> {
              try (CpuBackend be = new CpuBackend(1)) {
                int r = comm.rank();
                long[] send = new long[n], recv = new long[n];
                int total = 0;
                for (int j = 0; j < n; j++) {
                  send[j] = (r + j) % 3;
                  recv[j] = (j + r) % 3;
                  total += (int) send[j];
                }
                float[] s = new float[total];
                int at = 0;
                for (int j = 0; j < n; j++) {
                  for (int i = 0; i < send[j]; i++) s[at++] = 100 * r + 10 * j + i;
                }
                Tensor st = be.upload(HostTensor.ofFloats(s, Math.max(1, total)));
                int rt = (int) (recv[0] + recv[1] + recv[2]);
                Tensor rtT = be.zeros(DType.F32, rt + 2); // larger than needed: tail untouched
                be.fill(rtT, -1f);
                comm.allToAll(st, send, rtT, recv);
                return be.download(rtT).toFloatArray();
              }
            });
    for (int r = 0; r < n; r++) {
      float[] got = results.get(r);
      int at = 0;
      for (int j = 0; j < n; j++) {
        for (int i = 0; i < (j + r) % 3; i++) {
          assertEquals(100 * j + 10 * r + i, got[at++], "rank " + r + " from rank " + j);
        }
      }
      assertEquals(-1f, got[at], "past the received elements");
      assertEquals(-1f, got[at + 1], "past the received elements");
    }
  }

  @Test
  void mismatchedCountsAreNamed() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                LocalCommunicator.run(
                    2,
                    comm -> {
                      try (CpuBackend be = new CpuBackend(1)) {
                        Tensor s = be.zeros(DType.F32, 4);
                        Tensor d = be.zeros(DType.F32, 4);
                        // rank 1 expects 2 from rank 0, which sends 1
                        long[] recv = comm.rank() == 1 ? new long[] {2, 1} : new long[] {1, 1};
                        comm.allToAll(s, new long[] {1, 1}, d, recv);
                        return null;
                      }
                    }));
    assertTrue(e.getMessage().contains("expects 2 elements from rank 0"), e.getMessage());
  }

  /** A rank that fails before a collective must not leave the others waiting forever. */
  @Test
  void aFailingRankAbortsTheOthers() {
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class,
            () ->
                LocalCommunicator.run(
                    3,
                    comm -> {
                      if (comm.rank() == 2) {
                        throw new IllegalStateException("rank 2 broke");
                      }
                      comm.barrier();
                      comm.barrier();
                      return null;
                    }));
    assertEquals("rank 2 broke", e.getMessage());
  }
}
