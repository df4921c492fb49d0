package moetune.engine.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import moetune.engine.backend.Communicator;
import moetune.engine.backend.cuda.CudaBackend;
import moetune.engine.backend.cuda.CudaException;
import moetune.engine.backend.cuda.CudaProbe;
import moetune.engine.backend.cuda.Nccl;
import moetune.engine.backend.cuda.NcclCommunicator;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.model.Loss;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.ModelOptions;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The loss comparisons on two GPUs through NCCL (a thread per GPU, the id in memory), in
 * float32: data parallel (2 ranks, the same global batch) against one GPU through the real trainer,
 * and expert parallel against one GPU given both ranks' rows as one batch. NCCL's sums run in its
 * own order, so the agreement is float32 rounding, not bits: the tolerances are those of the CPU
 * twins (DataParallelTrainerTest, ExpertParallelTest), 10x looser for the GPU's own reduction
 * orders. Skips visibly without two CUDA devices or libnccl.so.2. Not yet run: no machine with two
 * GPUs was lent when it was written (docs/multi-gpu.md).
 */
@Tag("gpu")
@Tag("multi-gpu")
class MultiGpuTrainingGpuTest {
  static final int N = 2;

  interface RankTask<T> {
    T run(CudaBackend be, Communicator comm) throws Exception;
  }

  static byte[] idOrSkip() {
    for (int d = 0; d < N; d++) {
      String why = CudaProbe.unavailableReason(d);
      Assumptions.assumeTrue(why == null, () -> "multi-GPU test skipped: " + why);
    }
    try {
      return Nccl.get().uniqueId();
    } catch (CudaException | IllegalStateException e) {
      Assumptions.abort("multi-GPU test skipped: " + e.getMessage());
      return null;
    }
  }

  static <T> List<T> onTwoGpus(RankTask<T> task) throws Exception {
    byte[] id = idOrSkip();
    ExecutorService pool = Executors.newFixedThreadPool(N);
    try {
      List<Future<T>> fs = new ArrayList<>();
      for (int r = 0; r < N; r++) {
        int rank = r;
        fs.add(
            pool.submit(
                () -> {
                  try (CudaBackend be = new CudaBackend(rank, false);
                      Communicator c = new NcclCommunicator(be, N, rank, id)) {
                    return task.run(be, c);
                  }
                }));
      }
      List<T> out = new ArrayList<>();
      for (Future<T> f : fs) out.add(f.get());
      return out;
    } finally {
      pool.shutdownNow();
    }
  }

  static MixtralTrainable trainable(CudaBackend be, TrainOptions o, Communicator c) {
    MixtralConfig cfg = TinyMixtral.config(0.02);
    MixtralModel m =
        TinyMixtral.model(be, cfg, 5, MixtralTrainable.trainingOptions(ModelOptions.defaults(), o));
    return new MixtralTrainable(m, cfg, null, List.of(), o, c);
  }

  static List<Double> train(CudaBackend be, Communicator c) {
    TrainOptions o = DataParallelTrainerTest.options(0);
    try (MixtralTrainable t = trainable(be, o, c)) {
      Trainer tr = new Trainer(t, DataParallelTrainerTest.TRAIN, null, o, null);
      tr.setDataParallel(c);
      MixtralTrainerTest.Losses l = new MixtralTrainerTest.Losses();
      tr.addListener(l);
      tr.run();
      return l.loss;
    }
  }

  @Test
  void dataParallelOnTwoGpusMatchesOne() throws Exception {
    idOrSkip();
    List<Double> one;
    try (CudaBackend be = new CudaBackend(0, false)) {
      one = train(be, null);
    }
    List<List<Double>> two = onTwoGpus(MultiGpuTrainingGpuTest::train);
    System.out.println("data parallel, 1 GPU: " + one + "; 2 GPUs: " + two.get(0));
    assertEquals(two.get(0), two.get(1), "both ranks report the group's losses");
    for (int s = 0; s < one.size(); s++) {
      assertEquals(one.get(s), two.get(0).get(s), 1e-4 * one.get(s), "step " + (s + 1));
    }
  }

  @Test
  void expertParallelOnTwoGpusMatchesOneWithTheWholeBatch() throws Exception {
    idOrSkip();
    int rows = 4;
    float[] want;
    Loss whole;
    try (CudaBackend be = new CudaBackend(0, false);
        MixtralModel m = ExpertParallelTest.model(be)) {
      whole = m.forward(ExpertParallelTest.batch(rows, 1, 0));
      m.backward(1f);
      want = be.download(m.parameters().gradFlat()).toFloatArray();
    }
    int total = whole.targetTokens();
    List<Object[]> got =
        onTwoGpus(
            (be, comm) -> {
              try (MixtralModel m = ExpertParallelTest.model(be)) {
                m.setExpertParallel(comm);
                Loss l = m.forward(ExpertParallelTest.batch(rows, N, comm.rank()));
                m.backward((float) l.targetTokens() / total);
                comm.allReduceSum(m.parameters().gradFlat());
                return new Object[] {l, be.download(m.parameters().gradFlat()).toFloatArray()};
              }
            });
    double ce = 0;
    for (Object[] r : got) {
      Loss l = (Loss) r[0];
      ce += (double) l.ce() * l.targetTokens() / total;
      assertEquals(whole.aux(), l.aux(), 1e-5 * whole.aux(), "the group's aux loss");
    }
    assertEquals(whole.ce(), ce, 1e-5 * whole.ce(), "token-weighted cross-entropy");
    float[] g = (float[]) got.get(0)[1];
    float scale = 0, max = 0;
    for (float w : want) scale = Math.max(scale, Math.abs(w));
    for (int i = 0; i < want.length; i++) max = Math.max(max, Math.abs(want[i] - g[i]));
    System.out.printf(
        "expert parallel on 2 GPUs: gradients differ by up to %.3g of %.3g%n", max, scale);
    assertTrue(max <= 1e-4f * scale, "gradients differ by up to " + max + " of " + scale);
  }
}
