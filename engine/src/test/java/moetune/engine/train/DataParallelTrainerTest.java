package moetune.engine.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import moetune.engine.backend.Communicator;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.dist.DeferringCommunicator;
import moetune.engine.dist.LocalCommunicator;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.ModelOptions;
import moetune.engine.optim.ShardedAdamW;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Data-parallel training on N in-process CPU ranks against one rank with the same global batch
 * (micro-batch 1, grad-accum 4), through the real trainer, Mixtral and ShardedAdamW.
 *
 * <p>Tolerance: a rank's gradient is the sum of its own micro-batches, then the ranks' gradients
 * are summed; one rank adds every micro-batch's contributions into one buffer as the backward
 * produces them. The two sums round differently (float32, about 1e-7 relative); so do the squared
 * gradient norms (per shard, then across ranks). Weights agree to about an ulp after 4 steps (1e-6
 * asserted), losses to 1e-5 relative. The test prints the largest weight difference.
 */
class DataParallelTrainerTest {
  static final int STEPS = 4;

  static TrainOptions options(long checkpointEvery) {
    return TrainOptions.builder(
            new AdamWOptions(1e-2, 0.9, 0.95, 1e-8, 0.1, AdamWOptions.Decay.NO_NORMS_NO_BIAS))
        .microBatch(1)
        .gradAccum(4)
        .epochs(1)
        .maxSteps(STEPS)
        .schedule(LrSchedule.Kind.COSINE)
        .warmupSteps(1)
        .minLrRatio(0.1)
        .clipNorm(1.0)
        .auxLossCoef(0.05)
        .routerZLossCoef(0.0)
        .freeze(FreezeSpec.NONE)
        .evalEvery(0)
        .checkpointEvery(checkpointEvery)
        .keepLast(0)
        .seed(11)
        .shuffle(true)
        .build();
  }

  static MixtralTrainable trainable(CpuBackend cpu, TrainOptions o, long seed, Communicator c) {
    MixtralConfig cfg = TinyMixtral.config(0.02);
    MixtralModel m =
        TinyMixtral.model(
            cpu, cfg, seed, MixtralTrainable.trainingOptions(ModelOptions.defaults(), o));
    return new MixtralTrainable(m, cfg, null, List.of(), o, c);
  }

  record Result(List<Double> loss, List<Double> aux, List<Double> norms, float[] weights) {}

  static final SequenceSource TRAIN = TinyMixtral.data(12, 20, 1);

  /** A run on `world` ranks (world 0: no communicator at all), optionally resumed from a dir. */
  static List<Result> run(int world, TrainOptions o, Path out, Path resume, int stopAt) {
    return LocalCommunicator.run(
        Math.max(1, world),
        comm -> {
          Communicator c = world == 0 ? null : comm;
          try (CpuBackend cpu = new CpuBackend(1);
              MixtralTrainable t = trainable(cpu, o, resume == null ? 5 : 77, c)) {
            Trainer tr = new Trainer(t, TRAIN, null, o, out);
            tr.setDataParallel(c);
            if (resume != null) {
              tr.resumeFrom(Trainer.findCheckpoint(resume));
            }
            MixtralTrainerTest.Losses l = new MixtralTrainerTest.Losses();
            tr.addListener(l);
            if (stopAt > 0 && comm.rank() == 0) { // a stop asked on rank 0 only
              tr.addListener(
                  new TrainingListener() {
                    @Override
                    public void onStep(StepMetrics m) {
                      if (m.step() == stopAt) tr.requestStop();
                    }
                  });
            }
            tr.run();
            return new Result(
                l.loss,
                l.aux,
                l.norms,
                cpu.download(t.model().parameters().masterFlat()).toFloatArray());
          }
        });
  }

  static void assertClose(Result ref, Result got, String what) {
    assertEquals(ref.loss().size(), got.loss().size(), what + ": steps");
    for (int s = 0; s < ref.loss().size(); s++) {
      assertEquals(ref.loss().get(s), got.loss().get(s), 1e-5 * ref.loss().get(s), what + " loss");
      assertEquals(ref.aux().get(s), got.aux().get(s), 1e-5 * ref.aux().get(s), what + " aux");
      assertEquals(
          ref.norms().get(s), got.norms().get(s), 1e-4 * ref.norms().get(s), what + " grad norm");
    }
    float max = 0;
    for (int i = 0; i < ref.weights().length; i++) {
      max = Math.max(max, Math.abs(ref.weights()[i] - got.weights()[i]));
    }
    System.out.printf("%s: weights differ by up to %.3g%n", what, max);
    // measured: up to 1.2e-7 (about an ulp of weights of 0.1-1) after 4 steps at lr 1e-2
    assertTrue(max < 1e-6f, what + ": weights differ by up to " + max);
  }

  @ParameterizedTest
  @ValueSource(ints = {2, 4})
  void nRanksMatchOneRankWithTheGlobalBatch(int world) {
    Result one = run(0, options(0), null, null, 0).get(0);
    List<Result> ranks = run(world, options(0), null, null, 0);
    assertClose(one, ranks.get(0), world + " ranks");
    for (int r = 1; r < world; r++) {
      assertArrayEquals(ranks.get(0).weights(), ranks.get(r).weights(), "rank " + r + " weights");
      assertEquals(ranks.get(0).loss(), ranks.get(r).loss(), "rank " + r + " sees the global loss");
    }
    assertTrue(one.loss().get(STEPS - 1) < one.loss().get(0), "the loss falls");
  }

  /**
   * Stopped on 2 ranks at step 2 (rank 0 asks, every rank stops at the same step), then resumed on
   * 2 ranks (bit for bit: the twin's sums are deterministic), on 1 and on 4.
   */
  @Test
  void resumesOnTheSameAndOtherWorldSizes(@TempDir Path tmp) throws Exception {
    Result full2 = run(2, options(0), tmp.resolve("full"), null, 0).get(0);
    run(2, options(0), tmp.resolve("part"), null, 2);
    try (var files = Files.list(tmp.resolve("part"))) {
      assertTrue(files.findAny().isPresent(), "rank 0 wrote the checkpoint");
    }
    Result same = run(2, options(0), tmp.resolve("same"), tmp.resolve("part"), 0).get(0);
    assertEquals(STEPS - 2, same.loss().size());
    assertEquals(full2.loss().subList(2, STEPS), same.loss(), "resumed on 2 ranks: losses");
    assertArrayEquals(full2.weights(), same.weights(), "resumed on 2 ranks: weights");
    for (int world : new int[] {0, 4}) {
      Result r = run(world, options(0), tmp.resolve("w" + world), tmp.resolve("part"), 0).get(0);
      Result tail =
          new Result(
              full2.loss().subList(2, STEPS),
              full2.aux().subList(2, STEPS),
              full2.norms().subList(2, STEPS),
              full2.weights());
      assertClose(tail, r, "resumed on " + Math.max(1, world) + " rank(s)");
    }
  }

  @Test
  void gradAccumNotAMultipleOfTheRanksIsOneLine() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> run(3, options(0), null, null, 0));
    assertEquals(
        "--grad-accum 4 is not a multiple of the 3 data-parallel ranks; each rank takes"
            + " grad-accum / ranks micro-batches of a step, so give a multiple of 3",
        e.getMessage());
  }

  /**
   * Reduce-scatter bucket by bucket during the last backward of each step (small buckets, so most
   * complete before the backward ends) gives the same bits as reducing every bucket at the
   * optimizer step: the same sums of the same gradients, only sooner. And with every async
   * collective (the buckets' reduce-scatters, the step's all-gathers) run as late as NCCL's side
   * stream may finish it ({@code DeferringCommunicator}: at the await; an output read early would
   * be stale and change the bits, an input written early is one line): the same bits again.
   */
  @Test
  void reducingBucketsDuringTheBackwardChangesNoBit() {
    TrainOptions o = options(0);
    List<float[]> results = new java.util.ArrayList<>();
    for (int variant = 0; variant < 3; variant++) {
      boolean overlap = variant > 0, defer = variant == 2;
      List<float[]> r =
          LocalCommunicator.run(
              2,
              local -> {
                DeferringCommunicator deferring = defer ? new DeferringCommunicator(local) : null;
                Communicator comm = defer ? deferring : local;
                MixtralConfig cfg = TinyMixtral.config(0.02);
                try (CpuBackend cpu = new CpuBackend(1);
                    MixtralTrainable t =
                        new MixtralTrainable(
                                TinyMixtral.model(
                                    cpu,
                                    cfg,
                                    5,
                                    MixtralTrainable.trainingOptions(ModelOptions.defaults(), o)),
                                cfg,
                                null,
                                List.of(),
                                o,
                                comm,
                                97)
                            .overlapReduction(overlap)) {
                  Trainer tr = new Trainer(t, TRAIN, null, o, null);
                  tr.setDataParallel(comm);
                  MixtralTrainerTest.Losses l = new MixtralTrainerTest.Losses();
                  tr.addListener(l);
                  tr.run();
                  ShardedAdamW sharded = (ShardedAdamW) t.optimizer();
                  long early = sharded.reducedDuringBackward();
                  // buckets holding embedding elements are final only when the backward returns
                  var embed =
                      t.model().parameters().trainableSlices().stream()
                          .filter(sl -> sl.name().equals("model.embed_tokens.weight"))
                          .findFirst()
                          .orElseThrow();
                  int buckets = 0;
                  for (var b : sharded.partition().buckets()) {
                    boolean holdsEmbed =
                        b.start() < embed.offset() + embed.numel()
                            && embed.offset() < b.start() + b.length();
                    buckets += holdsEmbed ? 0 : 1;
                  }
                  float[] w = cpu.download(t.model().parameters().masterFlat()).toFloatArray();
                  float[] out = java.util.Arrays.copyOf(w, w.length + 4 + STEPS);
                  out[w.length] = early;
                  out[w.length + 1] = buckets;
                  out[w.length + 2 + STEPS] = defer ? deferring.deferred() : 0;
                  out[w.length + 3 + STEPS] = sharded.partition().buckets().size();
                  for (int s = 0; s < STEPS; s++)
                    out[w.length + 2 + s] = (float) (double) l.loss.get(s);
                  return out;
                }
              });
      assertArrayEquals(r.get(0), r.get(1), "ranks agree");
      results.add(r.get(0));
    }
    float[] off = results.get(0), on = results.get(1), late = results.get(2);
    int n = off.length - 4 - STEPS;
    // every step: each bucket reduce-scattered once (during the backward or at the step) and
    // all-gathered once, every one of them run late
    assertEquals(
        STEPS * 2 * late[late.length - 1], late[late.length - 2], "async collectives run late");
    assertEquals(0f, off[n], "no bucket reduced early without overlap");
    System.out.printf(
        "overlap: %d buckets per step reduced during the backward%n", (int) on[n] / STEPS);
    assertTrue(on[n + 1] > 10, "many buckets: " + on[n + 1]);
    assertEquals(STEPS * on[n + 1], on[n], "every bucket without embedding elements, every step");
    for (float[] other : new float[][] {on, late}) {
      assertArrayEquals(
          java.util.Arrays.copyOf(off, n),
          java.util.Arrays.copyOf(other, n),
          "weights, bit for bit");
      assertArrayEquals(
          java.util.Arrays.copyOfRange(off, n + 2, n + 2 + STEPS),
          java.util.Arrays.copyOfRange(other, n + 2, n + 2 + STEPS),
          "losses, bit for bit");
    }
  }
}
