package moetune.engine.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.dist.LocalCommunicator;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.model.Batch;
import moetune.engine.model.Loss;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.Parameters;
import moetune.sequences.PackedSequence;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Expert parallel (experts split over in-process CPU ranks, rows exchanged by all-to-all) against
 * one process given the ranks' rows as one batch: the cross-entropy (token-weighted over ranks),
 * the aux loss (over the whole batch, as transformers computes it) and every parameter's gradient
 * (summed over ranks, as data parallel sums them).
 *
 * <p>Tolerance: the expert products are the same arithmetic on the same rows, but the ranks' dense
 * gradients are summed per rank, then across ranks (float32, another order than one batch's), and
 * the attention and norms see batches of one row instead of all; measured differences are printed.
 */
class ExpertParallelTest {
  static final int T = 20;

  record Result(float ce, int tokens, float aux, float[] grad, float[] ownGrad) {}

  static MixtralModel model(moetune.engine.backend.Backend be) {
    MixtralConfig c = TinyMixtral.config(0.05);
    return TinyMixtral.model(be, c, 5);
  }

  /** The first `rows` sequences, rank r of `ranks` taking rows r, r + ranks, ... */
  static Batch batch(int rows, int ranks, int r) {
    SequenceSource data = TinyMixtral.data(rows, T, 3);
    List<PackedSequence> mine = new ArrayList<>();
    for (int i = r; i < rows; i += ranks) mine.add(data.get(i));
    return Batch.of(mine);
  }

  @ParameterizedTest
  @ValueSource(ints = {2, 4})
  void lossesAndGradientsMatchOneProcessWithTheWholeBatch(int ranks) {
    int rows = 2 * ranks;
    Result one;
    try (CpuBackend cpu = new CpuBackend(1);
        MixtralModel m = model(cpu)) {
      Loss l = m.forward(batch(rows, 1, 0));
      m.backward(1f);
      one = new Result(l.ce(), l.targetTokens(), l.aux(), grad(cpu, m), null);
    }
    int total = one.tokens();
    List<Result> ep =
        LocalCommunicator.run(
            ranks,
            comm -> {
              try (CpuBackend cpu = new CpuBackend(1);
                  MixtralModel m = model(cpu)) {
                m.setExpertParallel(comm);
                Batch b = batch(rows, ranks, comm.rank());
                Loss l = m.forward(b);
                m.backward((float) l.targetTokens() / total);
                float[] own = grad(cpu, m);
                comm.allReduceSum(m.parameters().gradFlat()); // data parallel's sum
                return new Result(l.ce(), l.targetTokens(), l.aux(), grad(cpu, m), own);
              }
            });
    double ce = 0;
    for (Result r : ep) {
      ce += (double) r.ce() * r.tokens() / total;
      assertEquals(one.aux(), r.aux(), 1e-6 * one.aux(), "the group's aux loss on every rank");
    }
    assertEquals(one.ce(), ce, 1e-6 * one.ce(), "token-weighted cross-entropy");
    float[] want = one.grad();
    float scale = 0, max = 0;
    for (float g : want) scale = Math.max(scale, Math.abs(g));
    for (int i = 0; i < want.length; i++) {
      max = Math.max(max, Math.abs(want[i] - ep.get(0).grad()[i]));
    }
    System.out.printf(
        "expert parallel on %d ranks: gradients differ by up to %.3g (largest %.3g)%n",
        ranks, max, scale);
    assertTrue(max <= 1e-5f * scale, "gradients differ by up to " + max + " of " + scale);
    // each rank's own gradient touches only its experts: the split is real
    try (CpuBackend cpu = new CpuBackend(1);
        MixtralModel m = model(cpu)) {
      Parameters p = m.parameters();
      for (Parameters.Slice s : p.trainableSlices()) {
        if (!s.name().contains(".experts.")) {
          continue;
        }
        long per = s.numel() / 4; // 4 experts
        for (int r = 0; r < ranks; r++) {
          int owned = 4 / ranks;
          for (int e = 0; e < 4; e++) {
            boolean mine = e / owned == r;
            double sumAbs = 0;
            for (long i = 0; i < per; i++) {
              sumAbs += Math.abs(ep.get(r).ownGrad()[(int) (s.offset() + e * per + i)]);
            }
            assertEquals(
                mine, sumAbs > 0, s.name() + " expert " + e + " on rank " + r + ": " + sumAbs);
          }
        }
      }
    }
  }

  @ParameterizedTest
  @ValueSource(ints = {3})
  void expertsNotDivisibleByTheRanksIsOneLine(int ranks) {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                LocalCommunicator.run(
                    ranks,
                    comm -> {
                      try (CpuBackend cpu = new CpuBackend(1);
                          MixtralModel m = model(cpu)) {
                        m.setExpertParallel(comm);
                        return null;
                      }
                    }));
    assertEquals(
        "--expert-parallel 3 must divide the model's 4 experts; give a divisor of 4",
        e.getMessage());
  }

  static float[] grad(CpuBackend cpu, MixtralModel m) {
    return cpu.download(m.parameters().gradFlat()).toFloatArray();
  }
}
