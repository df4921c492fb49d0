package moetune.engine.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import moetune.sequences.PackedSequence;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The loop on a stand-in model: loss falls, resume is exact, stop checkpoints, pruning. */
class TrainerLoopTest {
  static final int V = 11;

  /** Documents following a fixed bigram rule with some noise, packed one per sequence. */
  static SequenceSource data(int count, int len, long seed) {
    List<PackedSequence> out = new ArrayList<>();
    long x = seed;
    for (int d = 0; d < count; d++) {
      int[] ids = new int[len];
      x = DataOrder.mix(x + 1);
      ids[0] = (int) Long.remainderUnsigned(x, V);
      for (int t = 1; t < len; t++) {
        x = DataOrder.mix(x + 1);
        ids[t] =
            Long.remainderUnsigned(x, 5) == 0
                ? (int) Long.remainderUnsigned(x >>> 8, V)
                : (ids[t - 1] * 3 + 1) % V;
      }
      out.add(PackedSequence.ofDocument(ids));
    }
    return SequenceSource.of(out);
  }

  static TrainOptions options(long maxSteps, long checkpointEvery) {
    return TrainOptions.builder(
            new AdamWOptions(0.05, 0.9, 0.95, 1e-8, 0.0, AdamWOptions.Decay.ALL))
        .microBatch(3)
        .gradAccum(2)
        .epochs(1)
        .maxSteps(maxSteps)
        .schedule(LrSchedule.Kind.COSINE)
        .warmupSteps(3)
        .minLrRatio(0.1)
        .clipNorm(1.0)
        .auxLossCoef(0.0)
        .routerZLossCoef(0.0)
        .freeze(FreezeSpec.NONE)
        .evalEvery(5)
        .checkpointEvery(checkpointEvery)
        .keepLast(2)
        .seed(7)
        .shuffle(true)
        .build();
  }

  /** Records every step's loss and the evals. */
  static final class Recorder implements TrainingListener {
    final List<Double> losses = new ArrayList<>();
    final List<EvalMetrics> evals = new ArrayList<>();
    final List<CheckpointEvent> checkpoints = new ArrayList<>();

    @Override
    public void onStep(StepMetrics m) {
      losses.add(m.loss());
    }

    @Override
    public void onEval(EvalMetrics m) {
      evals.add(m);
    }

    @Override
    public void onCheckpoint(CheckpointEvent e) {
      checkpoints.add(e);
    }
  }

  @Test
  void lossFallsAndEvalIsReported(@TempDir Path tmp) {
    var model = new BigramModel(V, 1);
    var trainer =
        new Trainer(model, data(40, 16, 1), data(6, 16, 2), options(30, 0), tmp.resolve("ck"));
    var rec = new Recorder();
    trainer.addListener(rec);
    RunSummary s = trainer.run();
    assertEquals(RunSummary.Outcome.FINISHED, s.outcome());
    assertEquals(30, rec.losses.size());
    assertEquals(
        List.of(0L, 5L, 10L, 15L, 20L, 25L, 30L),
        rec.evals.stream().map(EvalMetrics::step).toList());
    assertTrue(
        s.lastEval().loss() < s.firstEval().loss() - 0.5,
        "eval loss " + s.firstEval().loss() + " -> " + s.lastEval().loss());
    assertEquals(Math.log(V), s.firstEval().loss(), 0.05, "an untrained table is near uniform");
  }

  @Test
  void resumeEqualsUninterruptedBitForBit(@TempDir Path tmp) throws Exception {
    SequenceSource train = data(25, 12, 3);
    var full = new BigramModel(V, 9);
    var fullRec = new Recorder();
    var t1 = new Trainer(full, train, null, options(20, 0), tmp.resolve("full"));
    t1.addListener(fullRec);
    t1.run();

    // First half: stop after step 8 from a listener (as Ctrl-C would), checkpointing there.
    var part = new BigramModel(V, 9);
    var partRec = new Recorder();
    var t2 = new Trainer(part, train, null, options(20, 3), tmp.resolve("part"));
    t2.addListener(partRec);
    t2.addListener(
        new TrainingListener() {
          @Override
          public void onStep(StepMetrics m) {
            if (m.step() == 8) t2.requestStop();
          }
        });
    RunSummary stopped = t2.run();
    assertEquals(RunSummary.Outcome.STOPPED, stopped.outcome());
    assertEquals(8, stopped.step());
    assertEquals(CheckpointEvent.Reason.STOP, partRec.checkpoints.getLast().reason());

    // Second half in a fresh model that starts from other weights: everything must come from disk.
    var resumed = new BigramModel(V, 12345);
    var t3 = new Trainer(resumed, train, null, options(20, 3), tmp.resolve("part"));
    t3.resumeFrom(Trainer.findCheckpoint(tmp.resolve("part")));
    assertEquals(8, t3.step());
    t3.addListener(partRec);
    t3.run();

    assertEquals(fullRec.losses, partRec.losses, "losses of the resumed run");
    assertArrayEquals(full.w, resumed.w);
    assertArrayEquals(full.m, resumed.m);
    assertArrayEquals(full.s, resumed.s);
  }

  @Test
  void periodicCheckpointsArePrunedToKeepLast(@TempDir Path tmp) throws Exception {
    var trainer = new Trainer(new BigramModel(V, 1), data(20, 8, 4), null, options(10, 3), tmp);
    trainer.run();
    List<Long> steps =
        new CheckpointStore(tmp).complete().stream().map(CheckpointStore::stepOf).toList();
    assertEquals(List.of(9L, 10L), steps, "keep-last 2 of steps 3, 6, 9 and the final 10");
    assertEquals("step-00000010", Files.readString(tmp.resolve("latest")).trim());
  }

  @Test
  void resumeRefusesADifferentDataSet(@TempDir Path tmp) throws Exception {
    new Trainer(new BigramModel(V, 1), data(20, 8, 4), null, options(4, 0), tmp).run();
    var other = new Trainer(new BigramModel(V, 1), data(21, 8, 4), null, options(4, 0), tmp);
    var e =
        org.junit.jupiter.api.Assertions.assertThrows(
            IllegalArgumentException.class, () -> other.resumeFrom(Trainer.findCheckpoint(tmp)));
    assertTrue(e.getMessage().contains("20 training sequences"), e.getMessage());
  }

  @Test
  void freezeSpecNamesHubParameters() {
    var f = new FreezeSpec(true, false, true, Set.of(1));
    assertTrue(f.isFrozen("model.layers.0.block_sparse_moe.gate.weight"));
    assertTrue(f.isFrozen("lm_head.weight"));
    assertTrue(f.isFrozen("model.layers.1.self_attn.q_proj.weight"));
    assertTrue(!f.isFrozen("model.layers.0.self_attn.q_proj.weight"));
    assertTrue(!f.isFrozen("model.layers.0.block_sparse_moe.experts.2.w1.weight"));
    assertEquals(List.of("router", "embeddings", "layer:1"), f.words());
    assertEquals(f, FreezeSpec.parse(f.words()));
    assertEquals(
        new FreezeSpec(false, true, false, Set.of(2, 3, 4, 7)),
        FreezeSpec.parse(List.of("attention", "layer:2-4", "layers:7")));
    assertTrue(f.isFrozen("model.layers.3.mlp.gate.weight"));
    assertTrue(!f.isFrozen("model.norm.weight"));
    var bad = assertThrows(IllegalArgumentException.class, () -> FreezeSpec.parse(List.of("x")));
    assertEquals(
        "'x' is not one of router, attention, embeddings, layer:N, layer:A-B", bad.getMessage());
  }
}
