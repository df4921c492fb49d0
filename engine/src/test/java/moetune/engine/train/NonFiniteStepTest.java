package moetune.engine.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import moetune.engine.hf.CheckpointException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A step whose loss or gradient norm is NaN: STOP ends the run with the last good checkpoint kept
 * and none written after it; SKIP leaves the weights alone and counts the step; metrics hold null,
 * never "NaN".
 */
class NonFiniteStepTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** A JSON value that is NaN or an infinity, quoted (Jackson's default) or bare. */
  private static final java.util.regex.Pattern NOT_A_NUMBER =
      java.util.regex.Pattern.compile(":\\s*\"?-?(NaN|Infinity)");

  // options(): micro-batch 3, grad-accum 2 (so step s runs forwardBackward calls 2(s-1), 2s-1),
  // keep-last 2.
  private static TrainOptions options(long maxSteps, long every, OnNonFinite policy) {
    return TrainerLoopTest.options(maxSteps, every).withOnNonFinite(policy);
  }

  private static boolean finite(float[] a) {
    for (float x : a) {
      if (!Float.isFinite(x)) {
        return false;
      }
    }
    return true;
  }

  private static List<JsonNode> lines(Path metrics) throws Exception {
    List<JsonNode> out = new ArrayList<>();
    for (String l : Files.readAllLines(metrics)) {
      out.add(JSON.readTree(l));
    }
    return out;
  }

  @Test
  void stopKeepsTheLastGoodCheckpointAndWritesNoBadOne(@TempDir Path tmp) throws Exception {
    var model = new BigramModel(TrainerLoopTest.V, 1);
    model.nanAtCall = c -> c >= 2 * 6; // every step from step 7 on
    Path ck = tmp.resolve("checkpoints");
    var trainer =
        new Trainer(
            model, TrainerLoopTest.data(20, 8, 4), null, options(12, 2, OnNonFinite.STOP), ck);
    Path metrics = tmp.resolve("metrics.jsonl");
    List<String> logged = new ArrayList<>();
    try (MetricsLog log = MetricsLog.create(metrics)) {
      trainer.addListener(log);
      trainer.addListener(
          new TrainingListener() {
            @Override
            public void onLog(String line) {
              logged.add(line);
            }
          });
      RunSummary s = trainer.run();
      assertEquals(RunSummary.Outcome.FAILED, s.outcome());
      assertEquals(6, s.step(), "the bad step 7 is not counted");
      assertTrue(s.error().startsWith("step 7: the loss is NaN"), s.error());
      assertTrue(s.error().contains("--on-nonfinite skip"), s.error());
      assertEquals(ck.resolve("step-00000006"), s.lastCheckpoint());
      assertTrue(s.error().contains(s.lastCheckpoint().toString()), s.error());
      assertTrue(logged.contains(s.error()), "the line is logged for the user too");
    }
    CheckpointStore store = new CheckpointStore(ck);
    assertEquals(List.of(4L, 6L), store.complete().stream().map(CheckpointStore::stepOf).toList());
    assertEquals(ck.resolve("step-00000006"), store.latest().orElseThrow());
    // The checkpoint holds finite weights.
    var restored = new BigramModel(TrainerLoopTest.V, 99);
    restored.load(store.latest().orElseThrow());
    assertTrue(finite(restored.w) && finite(restored.m) && finite(restored.s));

    String text = Files.readString(metrics);
    assertFalse(NOT_A_NUMBER.matcher(text).find(), text);
    List<JsonNode> l = lines(metrics);
    JsonNode bad = l.stream().filter(n -> n.path("step").asLong() == 7).findFirst().orElseThrow();
    assertEquals("step", bad.path("type").asText());
    assertTrue(bad.get("loss").isNull(), bad.toString());
    JsonNode end = l.getLast();
    assertEquals("end", end.path("type").asText());
    assertEquals("failed", end.path("outcome").asText());
    assertEquals(6, end.path("step").asLong());
  }

  @Test
  void stopBeforeAnyCheckpointSaysSo(@TempDir Path tmp) {
    var model = new BigramModel(TrainerLoopTest.V, 1);
    model.nanAtCall = c -> true; // a model with a NaN weight: every step
    var trainer =
        new Trainer(
            model,
            TrainerLoopTest.data(20, 8, 4),
            null,
            options(5, 1, OnNonFinite.STOP),
            tmp.resolve("ck"));
    RunSummary s = trainer.run();
    assertEquals(RunSummary.Outcome.FAILED, s.outcome());
    assertEquals(0, s.step());
    assertNull(s.lastCheckpoint());
    assertTrue(s.error().contains("no checkpoint was written before it"), s.error());
    assertFalse(Files.exists(tmp.resolve("ck").resolve("latest")));
    assertEquals(0, model.adamStep, "the optimizer never moved");
  }

  @Test
  void skipLeavesTheWeightsAloneAndCountsTheStep(@TempDir Path tmp) throws Exception {
    var data = TrainerLoopTest.data(20, 8, 4);
    var model = new BigramModel(TrainerLoopTest.V, 1);
    model.nanAtCall = c -> c == 5; // the second micro-batch of step 3
    var trainer = new Trainer(model, data, null, options(8, 0, OnNonFinite.SKIP), tmp);
    List<StepMetrics> steps = new ArrayList<>();
    float[][] before = new float[1][];
    trainer.addListener(
        new TrainingListener() {
          @Override
          public void onStep(StepMetrics m) {
            steps.add(m);
            if (m.step() == 2) {
              before[0] = model.w.clone();
            }
            if (m.step() == 3) {
              assertArrayEquals(before[0], model.w, "a skipped step changes no weight");
            }
          }
        });
    Path metrics = tmp.resolve("metrics.jsonl");
    RunSummary s;
    try (MetricsLog log = MetricsLog.create(metrics)) {
      trainer.addListener(log);
      s = trainer.run();
    }
    assertEquals(RunSummary.Outcome.FINISHED, s.outcome());
    assertEquals(8, s.step());
    assertEquals(1, s.skippedSteps());
    assertEquals(7, model.adamStep, "7 optimizer steps for 8 steps with one skipped");
    assertTrue(finite(model.w));
    assertTrue(steps.get(2).skipped());
    assertFalse(steps.get(3).skipped());
    assertEquals(1, steps.getLast().skippedSteps());

    String text = Files.readString(metrics);
    assertFalse(NOT_A_NUMBER.matcher(text).find(), text);
    List<JsonNode> l = lines(metrics);
    JsonNode third = l.stream().filter(n -> n.path("step").asLong() == 3).findFirst().orElseThrow();
    assertTrue(third.path("skipped").asBoolean(), third.toString());
    assertEquals(1, l.getLast().path("skipped_steps").asLong());
    assertEquals("finished", l.getLast().path("outcome").asText());
    // The count survives a resume.
    TrainerState st =
        TrainerState.read(
            new CheckpointStore(tmp)
                .latest()
                .orElseThrow()
                .resolve(CheckpointStore.COMPLETE_MARKER));
    assertEquals(1, st.skippedSteps());
  }

  @Test
  void skipGivesUpAfterTooManyBadStepsInARow(@TempDir Path tmp) {
    var model = new BigramModel(TrainerLoopTest.V, 1);
    model.nanAtCall = c -> c >= 2; // every step from step 2 on
    var trainer =
        new Trainer(
            model,
            TrainerLoopTest.data(20, 8, 4),
            null,
            options(30, 0, OnNonFinite.SKIP),
            tmp.resolve("ck"));
    RunSummary s = trainer.run();
    assertEquals(RunSummary.Outcome.FAILED, s.outcome());
    assertEquals(Trainer.MAX_CONSECUTIVE_SKIPS - 1, s.skippedSteps());
    assertEquals(1 + Trainer.MAX_CONSECUTIVE_SKIPS - 1, s.step());
    assertTrue(s.error().contains("in a row"), s.error());
    assertEquals(1, model.adamStep);
  }

  @Test
  void aGarbageTrainerStateIsOneLineNamingTheFile(@TempDir Path tmp) throws Exception {
    Path f = tmp.resolve(CheckpointStore.COMPLETE_MARKER);
    Files.writeString(f, "{\"format\": \"moetune-trainer-state-1\", \"step\": ");
    var e = assertThrows(CheckpointException.class, () -> TrainerState.read(f));
    assertTrue(e.getMessage().startsWith(f + ": not readable JSON"), e.getMessage());
    Files.writeString(f, "{\"format\": \"moetune-trainer-state-1\", \"step\": \"x\"}");
    e = assertThrows(CheckpointException.class, () -> TrainerState.read(f));
    assertTrue(e.getMessage().contains("field 'step'"), e.getMessage());
    Files.writeString(f, "[1, 2]");
    e = assertThrows(CheckpointException.class, () -> TrainerState.read(f));
    assertTrue(e.getMessage().contains("not a JSON object"), e.getMessage());
  }
}
