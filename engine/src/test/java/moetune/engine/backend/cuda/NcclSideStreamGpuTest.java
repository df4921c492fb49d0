package moetune.engine.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * NCCL's side stream on one GPU (a communicator of one rank: its reduce-scatter and all-gather are
 * copies, but they take the same stream and event path as on N GPUs). Skips visibly without a CUDA
 * device or libnccl.so.2.
 */
@Tag("gpu")
class NcclSideStreamGpuTest {

  private byte[] id;

  @BeforeEach
  void needsGpuAndNccl() {
    String why = CudaProbe.unavailableReason(0);
    Assumptions.assumeTrue(why == null, () -> "GPU test skipped: " + why);
    try {
      id = Nccl.get().uniqueId();
    } catch (CudaException e) {
      Assumptions.abort("NCCL test skipped: " + e.getMessage());
    }
  }

  /**
   * An async reduce-scatter queued behind about 100 ms of products on the compute stream reads
   * their result (the side stream waited for the compute stream's event), and an op queued after
   * the await runs after it (the compute stream waited for the side stream's event): without the
   * events the copy would read zeros, or overwrite the later fill.
   */
  @Test
  void asyncCollectivesAreOrderedByEventsBothWays() {
    try (CudaBackend be = new CudaBackend(0, false);
        NcclCommunicator comm = new NcclCommunicator(be, 1, 0, id)) {
      int n = 4096;
      try (Tensor a = be.empty(DType.F32, n, n);
          Tensor c = be.zeros(DType.F32, n, n);
          Tensor out = be.zeros(DType.F32, (long) n * n);
          Tensor ids = be.upload(HostTensor.ofInts(new int[] {3, 1, 4, 1, 5}, 5));
          Tensor idsOut = be.zeros(DType.I32, 5)) {
        be.randomNormal(a, 7, 1f / n);
        for (int i = 0; i < 40; i++) {
          be.matmul(a, false, a, false, c, 1f, i == 0 ? 0f : 1f); // c accumulates, ~100 ms
        }
        comm.reduceScatterSumAsync(c.view(0, (long) n * n), out);
        comm.allGatherAsync(ids, idsOut); // I32: moved, not reduced
        comm.awaitCollectives();
        float[] want = be.download(c).toFloatArray();
        assertArrayEquals(want, be.download(out).toFloatArray(), "the copy read the products");
        assertArrayEquals(new int[] {3, 1, 4, 1, 5}, be.download(idsOut).toIntArray());
        for (int i = 0; i < 40; i++) {
          be.matmul(a, false, a, false, c, 1f, 1f);
        }
        comm.reduceScatterSumAsync(c.view(0, (long) n * n), out);
        comm.awaitCollectives();
        be.fill(out, 7f); // after the await: after the copy
        float[] got = be.download(out).toFloatArray();
        for (int i = 0; i < got.length; i += 4099) {
          assertEquals(7f, got[i], "element " + i + " of the fill after the await");
        }
        assertEquals(3, comm.asyncCalls());
      }
    }
  }
}
