package moetune.engine.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import moetune.engine.backend.Communicator;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.dist.LocalCommunicator;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.io.MixtralCheckpoint;
import moetune.engine.io.SafetensorsReader;
import moetune.engine.model.ExpertShard;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.ModelOptions;
import moetune.engine.tensor.HostTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Expert parallel with the experts split (each rank stores, trains and steps E/N experts: {@link
 * ExpertShard}) against expert parallel with every expert on every rank, through the real trainer,
 * Mixtral and ShardedAdamW on in-process CPU ranks; checkpoints in the one-device format, resumed
 * on other rank counts.
 */
class ExpertShardTrainTest {
  static final int STEPS = 4;

  static TrainOptions options(double clip) {
    return options(clip, DataParallelTrainerTest.options(0).auxLossCoef());
  }

  static TrainOptions options(double clip, double aux) {
    return DataParallelTrainerTest.options(0).toBuilder().clipNorm(clip).auxLossCoef(aux).build();
  }

  record Result(List<Double> loss, List<Double> aux, Map<String, HostTensor> weights, long own) {}

  /**
   * world ranks (0: one process, no group), the experts split over them when split, expert parallel
   * when world > 1; every hub tensor of the final model on rank 0.
   */
  static List<Result> run(
      int world, boolean split, TrainOptions o, Path out, Path resume, int stopAt) {
    return LocalCommunicator.run(
        Math.max(1, world),
        comm -> {
          Communicator c = world == 0 ? null : comm;
          MixtralConfig cfg = TinyMixtral.config(0.02);
          ExpertShard shard =
              split && c != null ? new ExpertShard(c.rank(), c.size()) : ExpertShard.ALL;
          try (CpuBackend cpu = new CpuBackend(1);
              MixtralTrainable t =
                  new MixtralTrainable(
                      MixtralModel.create(
                          cfg,
                          FreshModel.weights(cfg, resume == null ? 5 : 77),
                          cpu,
                          MixtralTrainable.trainingOptions(ModelOptions.defaults(), o),
                          shard),
                      cfg,
                      null,
                      List.of(),
                      o,
                      c)) {
            if (c != null) {
              t.model().setExpertParallel(c);
            }
            Trainer tr = new Trainer(t, DataParallelTrainerTest.TRAIN, null, o, out);
            tr.setDataParallel(c);
            if (resume != null) {
              tr.resumeFrom(Trainer.findCheckpoint(resume));
            }
            MixtralTrainerTest.Losses l = new MixtralTrainerTest.Losses();
            tr.addListener(l);
            if (stopAt > 0 && comm.rank() == 0) {
              tr.addListener(
                  new TrainingListener() {
                    @Override
                    public void onStep(StepMetrics m) {
                      if (m.step() == stopAt) tr.requestStop();
                    }
                  });
            }
            tr.run();
            MixtralModel m = t.model();
            Map<String, HostTensor> experts = m.gatherExperts(comm.rank() == 0); // collective
            Map<String, HostTensor> all = new LinkedHashMap<>();
            for (String name : comm.rank() == 0 ? m.parameters().hubNames() : List.<String>of()) {
              all.put(name, experts.containsKey(name) ? experts.get(name) : m.parameter(name));
            }
            long own = m.parameters().count() - m.parameters().replicatedCount();
            return new Result(l.loss, l.aux, all, own);
          }
        });
  }

  static float maxDiff(Map<String, HostTensor> a, Map<String, HostTensor> b) {
    assertEquals(a.keySet(), b.keySet(), "the same tensors");
    float max = 0;
    for (String n : a.keySet()) {
      float[] x = a.get(n).toFloatArray(), y = b.get(n).toFloatArray();
      for (int i = 0; i < x.length; i++) max = Math.max(max, Math.abs(x[i] - y[i]));
    }
    return max;
  }

  /**
   * Without clipping, the split run is bit for bit the run with every expert on every rank: the
   * same expert products on the same rows, the expert gradients the same (the replicated run sums
   * its own and the others' zeros), the same replicated ZeRO sums, the same elementwise AdamW.
   */
  @ParameterizedTest
  @ValueSource(ints = {2, 4})
  void splitExpertsTrainBitForBitLikeReplicatedOnes(int world) {
    List<Result> whole = run(world, false, options(0), null, null, 0);
    List<Result> split = run(world, true, options(0), null, null, 0);
    assertEquals(0, whole.get(0).own(), "replicated: nothing rank-own");
    // tiny: 2 layers of 4 experts of (2F, D) + (D, F) with F = 24, D = 16: E/N of them per rank
    long perExpert = 3L * 24 * 16;
    for (int r = 0; r < world; r++) {
      assertEquals(2 * (4 / world) * perExpert, split.get(r).own(), "rank " + r + "'s experts");
    }
    assertEquals(whole.get(0).loss(), split.get(0).loss(), "losses, bit for bit");
    assertEquals(whole.get(0).aux(), split.get(0).aux(), "aux losses, bit for bit");
    assertEquals(0f, maxDiff(whole.get(0).weights(), split.get(0).weights()), "weights");
    assertTrue(split.get(0).loss().get(STEPS - 1) < split.get(0).loss().get(0), "the loss falls");
  }

  /** With clipping the squared norm adds the rank's experts separately: rounding only. */
  @Test
  void splitExpertsWithClippingMatchToRounding() {
    Result whole = run(2, false, options(1e-3), null, null, 0).get(0);
    Result split = run(2, true, options(1e-3), null, null, 0).get(0);
    for (int s = 0; s < STEPS; s++) {
      assertEquals(whole.loss().get(s), split.loss().get(s), 1e-6 * whole.loss().get(s));
    }
    float max = maxDiff(whole.weights(), split.weights());
    System.out.printf("split experts, clipped: weights differ by up to %.3g%n", max);
    assertTrue(max < 1e-6f, "weights differ by up to " + max);
  }

  /**
   * A split 2-rank run stopped at step 2 writes the one-device checkpoint (every expert, every
   * moment, by hub name); it resumes split on 2 ranks bit for bit, split on 4, and on one process.
   * Without the aux loss in the objective: expert parallel's aux loss is over the group's rows
   * together, so 4 ranks (or one process, micro-batch by micro-batch) differ from 2 by design; the
   * cross-entropy and its gradients do not, to float32 rounding.
   */
  @Test
  void checkpointsHaveTheOneDeviceFormatAndResumeOnOtherRankCounts(@TempDir Path tmp)
      throws Exception {
    TrainOptions o = options(1.0, 0.0);
    Result full = run(2, true, o, tmp.resolve("full"), null, 0).get(0);
    run(2, true, o, tmp.resolve("part"), null, 2);
    run(2, false, o, tmp.resolve("whole"), null, 2);
    Path split = Trainer.findCheckpoint(tmp.resolve("part"));
    Path whole = Trainer.findCheckpoint(tmp.resolve("whole"));
    try (MixtralCheckpoint a = MixtralCheckpoint.load(split);
        MixtralCheckpoint b = MixtralCheckpoint.load(whole)) {
      assertEquals(b.names(), a.names(), "the same weights, by hub name");
      for (String n : a.names()) {
        assertArrayEquals(b.tensor(n).toFloatArray(), a.tensor(n).toFloatArray(), n);
      }
    }
    try (SafetensorsReader a = SafetensorsReader.open(split.resolve("optimizer.safetensors"));
        SafetensorsReader b = SafetensorsReader.open(whole.resolve("optimizer.safetensors"))) {
      assertEquals(b.names(), a.names(), "the same moments, by name");
      assertTrue(a.names().contains("exp_avg.model.layers.1.block_sparse_moe.experts.3.w2.weight"));
      for (String n : a.names()) {
        float[] x = a.read(n).toFloatArray(), y = b.read(n).toFloatArray();
        for (int i = 0; i < x.length; i++) {
          assertEquals(y[i], x[i], 1e-6f * Math.max(1f, Math.abs(y[i])), n);
        }
      }
    }
    Result same = run(2, true, o, tmp.resolve("same"), tmp.resolve("part"), 0).get(0);
    assertEquals(full.loss().subList(2, STEPS), same.loss(), "resumed split on 2: losses");
    assertEquals(0f, maxDiff(full.weights(), same.weights()), "resumed split on 2: weights");
    for (int world : new int[] {0, 4}) {
      Result r = run(world, true, o, tmp.resolve("w" + world), tmp.resolve("part"), 0).get(0);
      assertEquals(STEPS - 2, r.loss().size());
      for (int s = 0; s < STEPS - 2; s++) {
        assertEquals(
            full.loss().get(2 + s), r.loss().get(s), 1e-5 * full.loss().get(2 + s), "w" + world);
      }
      float max = maxDiff(full.weights(), r.weights());
      System.out.printf("resumed on %d: weights differ by up to %.3g%n", Math.max(1, world), max);
      assertTrue(max < 1e-6f, "resumed on " + Math.max(1, world) + ": weights differ by " + max);
    }
  }

  /** The plan printed at the start of a run counts this rank's experts and its ZeRO shard. */
  @Test
  void theMemoryPlanIsPerRank() {
    MixtralConfig cfg = TinyMixtral.config(0.02);
    try (CpuBackend cpu = new CpuBackend(1);
        MixtralModel whole =
            MixtralModel.create(cfg, FreshModel.weights(cfg, 5), cpu, ModelOptions.defaults());
        MixtralModel split =
            MixtralModel.create(
                cfg,
                FreshModel.weights(cfg, 5),
                cpu,
                ModelOptions.defaults(),
                new ExpertShard(1, 2))) {
      long experts = 2L * 4 * 3 * 24 * 16; // 2 layers of 4 experts of 3 (24 x 16) matrices
      MemoryPlan one = MemoryPlan.of(whole);
      MemoryPlan dp = MemoryPlan.of(whole, 2);
      MemoryPlan ep = MemoryPlan.of(split, 2);
      assertEquals(one.trainable() * 16, one.totalBytes(), "one device: 16 B per parameter");
      assertEquals(one.trainable() * 8 + (one.trainable() + 1) / 2 * 8, dp.totalBytes(), "ZeRO-1");
      assertEquals(one.trainable() - experts / 2, ep.trainable(), "half the experts");
      assertEquals(experts / 2, ep.trainable() - ep.replicated());
      long rep = one.trainable() - experts;
      assertEquals(
          ep.trainable() * 8 + ((rep + 1) / 2 + experts / 2) * 8,
          ep.totalBytes(),
          "weights and grads of what the rank holds, moments of its shard and experts");
      assertTrue(
          ep.describe().startsWith("memory plan per rank: ")
              && ep.describe().contains(" of them this rank's experts"),
          ep.describe());
      assertTrue(one.describe().startsWith("memory plan: "), one.describe());
    }
  }

  @Test
  void aSplitModelNeedsItsGroup() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                LocalCommunicator.run(
                    2,
                    comm -> {
                      MixtralConfig cfg = TinyMixtral.config(0.02);
                      try (CpuBackend cpu = new CpuBackend(1);
                          MixtralModel m =
                              MixtralModel.create(
                                  cfg,
                                  FreshModel.weights(cfg, 5),
                                  cpu,
                                  ModelOptions.defaults(),
                                  new ExpertShard(1 - comm.rank(), 2))) {
                        m.setExpertParallel(comm);
                        return 0;
                      }
                    }));
    assertTrue(e.getMessage().startsWith("this model holds the experts of rank "), e.getMessage());
    IllegalArgumentException three =
        assertThrows(IllegalArgumentException.class, () -> new ExpertShard(0, 3).perRank(4));
    assertEquals(
        "--expert-parallel 3 must divide the model's 4 experts; give a divisor of 4",
        three.getMessage());
  }
}
