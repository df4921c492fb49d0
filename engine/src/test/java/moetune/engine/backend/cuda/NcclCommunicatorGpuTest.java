package moetune.engine.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import moetune.engine.backend.Communicator;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * NCCL collectives on two GPUs of one process (a thread per GPU, the unique id handed over in
 * memory), against sums written out by hand: the same cases as LocalCommunicatorTest. Values are
 * small integers plus a quarter, exact in float32 in any summation order, so the check is exact.
 * Skips visibly without two CUDA devices or without libnccl.so.2.
 */
@Tag("gpu")
@Tag("multi-gpu")
class NcclCommunicatorGpuTest {
  static final int N = 2;

  static float val(int r, int i) {
    return 100f * r + i + 0.25f;
  }

  @Test
  void collectivesOnTwoGpus() throws Exception {
    for (int d = 0; d < N; d++) {
      String why = CudaProbe.unavailableReason(d);
      Assumptions.assumeTrue(why == null, () -> "multi-GPU test skipped: " + why);
    }
    byte[] id;
    try {
      id = Nccl.get().uniqueId();
    } catch (CudaException e) {
      Assumptions.abort("multi-GPU test skipped: " + e.getMessage());
      return;
    }
    int len = 5;
    ExecutorService pool = Executors.newFixedThreadPool(N);
    try {
      List<Future<float[][]>> fs = new ArrayList<>();
      for (int r = 0; r < N; r++) {
        int rank = r;
        fs.add(
            pool.submit(
                () -> {
                  try (CudaBackend be = new CudaBackend(rank, false);
                      Communicator c = new NcclCommunicator(be, N, rank, id)) {
                    float[] x = new float[len * N];
                    for (int i = 0; i < x.length; i++) x[i] = val(rank, i);
                    Tensor t = be.upload(HostTensor.ofFloats(x, x.length));
                    Tensor rs = be.zeros(DType.F32, len);
                    c.reduceScatterSum(t, rs);
                    Tensor ag = be.zeros(DType.F32, len * N);
                    c.allGather(t.view(0, len), ag);
                    // rank r sends r+1 elements to each rank
                    long[] send = new long[N], recv = new long[N];
                    for (int j = 0; j < N; j++) {
                      send[j] = rank + 1;
                      recv[j] = j + 1;
                    }
                    Tensor a2a = be.zeros(DType.F32, 1 + 2);
                    c.allToAll(t, send, a2a, recv);
                    c.allReduceSum(t);
                    double[] h = {rank, 0.5};
                    c.allReduceSum(h);
                    return new float[][] {
                      be.download(t).toFloatArray(),
                      be.download(rs).toFloatArray(),
                      be.download(ag).toFloatArray(),
                      be.download(a2a).toFloatArray(),
                      {(float) h[0], (float) h[1]}
                    };
                  }
                }));
      }
      for (int r = 0; r < N; r++) {
        float[][] got = fs.get(r).get();
        float[] sum = new float[len * N], cat = new float[len * N];
        for (int q = 0; q < N; q++) {
          for (int i = 0; i < len * N; i++) sum[i] += val(q, i);
          for (int i = 0; i < len; i++) cat[q * len + i] = val(q, i);
        }
        float[] mine = new float[len];
        System.arraycopy(sum, r * len, mine, 0, len);
        assertArrayEquals(sum, got[0], "allReduce on rank " + r);
        assertArrayEquals(mine, got[1], "reduceScatter on rank " + r);
        assertArrayEquals(cat, got[2], "allGather on rank " + r);
        // from rank 0: 1 element (its element r*1); from rank 1: 2 elements at offset 2r
        float[] a2a = {val(0, r), val(1, 2 * r), val(1, 2 * r + 1)};
        assertArrayEquals(a2a, got[3], "allToAll on rank " + r);
        assertEquals(1f, got[4][0]);
        assertEquals(1f, got[4][1]);
      }
    } finally {
      pool.shutdownNow();
    }
  }
}
