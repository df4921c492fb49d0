package moetune.engine.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import moetune.engine.backend.Communicator;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;

/**
 * The test stand-in for NCCL's side stream catches what a GPU would get wrong: an output read
 * before {@link Communicator#awaitCollectives} is stale, an input written before it is one line.
 * Without it, the bit-equality tests of the overlapped reduce-scatter could not fail on the CPU
 * (the in-process and TCP communicators finish every collective before returning).
 */
class DeferringCommunicatorTest {

  @Test
  void outputsAppearAtTheAwaitAndSynchronousCollectivesRunAfterTheQueuedOnes() {
    List<float[][]> got =
        LocalCommunicator.run(
            2,
            local -> {
              try (CpuBackend be = new CpuBackend(1)) {
                DeferringCommunicator c = new DeferringCommunicator(local);
                float r = c.rank();
                Tensor in =
                    be.upload(HostTensor.ofFloats(new float[] {1 + r, 2 + r, 3 + r, 4 + r}, 4));
                Tensor out = be.zeros(DType.F32, 2);
                c.reduceScatterSumAsync(in, out);
                float[] early = be.download(out).toFloatArray(); // not yet: the old values
                c.awaitCollectives();
                float[] late = be.download(out).toFloatArray();
                Tensor gathered = be.zeros(DType.F32, 4);
                c.allGatherAsync(out, gathered);
                double[] one = {1};
                c.allReduceSum(one); // a synchronous collective runs after the queued gather
                float[] viaSync = be.download(gathered).toFloatArray();
                c.close();
                return new float[][] {early, late, viaSync, {(float) c.deferred()}};
              }
            });
    for (int r = 0; r < 2; r++) {
      float[][] g = got.get(r);
      assertArrayEquals(new float[2], g[0], "read before the await: the old values");
      assertArrayEquals(r == 0 ? new float[] {3, 5} : new float[] {7, 9}, g[1]);
      assertArrayEquals(new float[] {3, 5, 7, 9}, g[2]);
      assertEquals(2f, g[3][0]);
    }
  }

  @Test
  void writingAnInputBeforeTheAwaitIsOneLine() {
    try (CpuBackend be = new CpuBackend(1)) {
      DeferringCommunicator c = new DeferringCommunicator(new LocalCommunicator.Group(1).rank(0));
      Tensor in = be.zeros(DType.F32, 3);
      Tensor out = be.zeros(DType.F32, 3);
      c.reduceScatterSumAsync(in, out);
      be.fill(in, 2f); // the backward writing a gradient it already reported final
      IllegalStateException e =
          org.junit.jupiter.api.Assertions.assertThrows(
              IllegalStateException.class, c::awaitCollectives);
      assertEquals(
          "reduceScatterSumAsync: its input or output was written before awaitCollectives (a"
              + " race on a GPU)",
          e.getMessage());
    }
  }
}
