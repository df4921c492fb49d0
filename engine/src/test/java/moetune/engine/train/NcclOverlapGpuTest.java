package moetune.engine.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import moetune.engine.backend.cuda.CudaBackend;
import moetune.engine.backend.cuda.CudaException;
import moetune.engine.backend.cuda.CudaProbe;
import moetune.engine.backend.cuda.Nccl;
import moetune.engine.backend.cuda.NcclCommunicator;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.Parameters;
import moetune.engine.optim.AdamW;
import moetune.engine.optim.ShardedAdamW;
import moetune.engine.tensor.HostTensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * ZeRO-1 over NCCL's side stream on one GPU (a communicator of one rank: its reduce-scatter and
 * all-gather are copies, but they take the same stream and event path as on N GPUs; the events
 * themselves: backend.cuda.NcclSideStreamGpuTest). Skips visibly without a CUDA device or
 * libnccl.so.2; the multi-GPU tests (NcclCommunicatorGpuTest, MultiGpuTrainingGpuTest) cover the
 * sums.
 */
@Tag("gpu")
class NcclOverlapGpuTest {

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
   * ZeRO-1 through NCCL with the buckets reduce-scattered on the side stream as a backward would
   * report them (last parameters first, the next gradients written while the earlier buckets are in
   * flight), and the step's all-gathers pipelined with the next buckets' AdamW: float32 weights bit
   * for bit those of AdamW on the same gradients, over 3 steps.
   */
  @Test
  void shardedAdamWOverNcclEqualsAdamWBitForBit() {
    AdamW.Settings s = new AdamW.Settings(0.9f, 0.95f, 1e-8f, 0.1f, 0f);
    float[] reference, sharded;
    long async;
    try (CudaBackend be = new CudaBackend(0, false)) {
      try (MixtralModel m = ShardedAdamWTest.model(be);
          AdamW opt = new AdamW(m.parameters(), s, AdamW.DECAY_MATRICES)) {
        for (int step = 0; step < ShardedAdamWTest.STEPS; step++) {
          writeGradientsBackwards(be, m.parameters(), step, null);
          opt.step(1e-2f);
        }
        reference = be.download(m.parameters().masterFlat()).toFloatArray();
      }
      try (NcclCommunicator comm = new NcclCommunicator(be, 1, 0, id);
          MixtralModel m = ShardedAdamWTest.model(be);
          ShardedAdamW opt = new ShardedAdamW(m.parameters(), s, AdamW.DECAY_MATRICES, comm, 97)) {
        for (int step = 0; step < ShardedAdamWTest.STEPS; step++) {
          opt.gradientsZeroed();
          writeGradientsBackwards(be, m.parameters(), step, opt);
          opt.step(1e-2f);
        }
        sharded = be.download(m.parameters().masterFlat()).toFloatArray();
        assertTrue(opt.reducedDuringBackward() > 10, "buckets reduced during the 'backward'");
        async = comm.asyncCalls();
      }
    }
    assertTrue(async > 20, "async collectives: " + async);
    assertArrayEquals(reference, sharded, "weights, bit for bit");
  }

  /** Gradients slice by slice from the last, each reported done to opt (if any) once written. */
  private static void writeGradientsBackwards(
      CudaBackend be, Parameters p, int step, ShardedAdamW opt) {
    int n = (int) p.count();
    float[] g = ShardedAdamWTest.grad(0, step, n);
    var slices = p.trainableSlices();
    for (int i = slices.size() - 1; i >= 0; i--) {
      Parameters.Slice sl = slices.get(i);
      float[] part =
          java.util.Arrays.copyOfRange(g, (int) sl.offset(), (int) (sl.offset() + sl.numel()));
      be.copyFromHost(
          HostTensor.ofFloats(part, part.length), p.gradFlat().view(sl.offset(), sl.numel()));
      if (opt != null) {
        opt.gradientsDone(sl.offset(), sl.numel());
      }
    }
  }
}
