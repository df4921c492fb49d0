package moetune.app.gui.training;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import moetune.app.config.RunConfig;
import moetune.app.config.RunConfigParser;
import moetune.app.gui.GuiLog;
import moetune.app.gui.SyncTaskExecutor;
import moetune.app.gui.Workspace;
import moetune.engine.train.CheckpointEvent;
import moetune.engine.train.EvalMetrics;
import moetune.engine.train.ExpertLoad;
import moetune.engine.train.RunSummary;
import moetune.engine.train.StepMetrics;
import moetune.engine.train.TrainingListener;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Training screen's ViewModel without the FX toolkit: the form against the run-config parser,
 * and the run's states and metrics with a scripted trainer (the engine trainer's own behaviour is
 * tested in the engine; the GUI-equals-train test drives the real one).
 */
class TrainingViewModelTest {

  @TempDir Path tmp;

  private final GuiLog log = new GuiLog();
  private final Workspace ws = new Workspace();

  /** Replays a fixed script of listener events; a stop request ends it after the next step. */
  private static final class ScriptedTrainer implements TrainerGateway {
    final List<RunConfig> configs = new ArrayList<>();
    final List<Boolean> resumes = new ArrayList<>();
    int stopAfter = Integer.MAX_VALUE;
    RuntimeException failure;

    @Override
    public Run prepare(RunConfig config, boolean resume, TrainingListener l) {
      configs.add(config);
      Path out = Path.of(config.out());
      resumes.add(resume);
      return new Run() {
        volatile boolean stop;

        @Override
        public RunSummary run() {
          long first = resume ? 2 : 0;
          for (long s = first + 1; s <= 4; s++) {
            if (stop) {
              Path ck = out.resolve("checkpoints/step-" + (s - 1));
              l.onCheckpoint(new CheckpointEvent(s - 1, ck, CheckpointEvent.Reason.STOP, 0.1));
              return new RunSummary(RunSummary.Outcome.STOPPED, s - 1, ck, null, null, null);
            }
            if (failure != null && s == 2) {
              throw failure;
            }
            l.onStep(
                new StepMetrics(
                    s, 4, 0, 3.0 / s, 0.01, 0.0, 1.5, 1e-3 * s, 100, 250.0, (4 - s) * 2.0));
            l.onExpertLoad(
                new ExpertLoad(s, new double[][] {{0.5, 0.25, 0.25, 0}}, new double[] {1.0}));
            if (s % 2 == 0) {
              l.onEval(EvalMetrics.of(s, 2.0 * 100 / s, 100));
            }
            if (s == stopAfter) {
              stop = true;
            }
          }
          Path ck = out.resolve("checkpoints/step-4");
          l.onCheckpoint(new CheckpointEvent(4, ck, CheckpointEvent.Reason.FINAL, 0.1));
          return new RunSummary(RunSummary.Outcome.FINISHED, 4, ck, null, null, null);
        }

        @Override
        public void requestStop() {
          stop = true;
        }
      };
    }
  }

  private TrainingViewModel vm(ScriptedTrainer t) throws Exception {
    TrainingViewModel vm = new TrainingViewModel(t, new SyncTaskExecutor(), log, ws);
    Path data = Files.writeString(tmp.resolve("d.jsonl"), "{}\n");
    ws.modelSpec().set("/models/tiny");
    ws.datasets().set(data.toString());
    vm.form().field("out").text().set(tmp.resolve("run").toString());
    return vm;
  }

  @Test
  void aRunFillsTheChartsHeatmapAndProgress() throws Exception {
    ScriptedTrainer t = new ScriptedTrainer();
    TrainingViewModel vm = vm(t);
    vm.start();
    assertEquals(TrainingViewModel.State.FINISHED, vm.state().get(), vm.status().get());
    assertEquals(List.of(3.0, 1.5, 1.0, 0.75), vm.loss().stream().map(p -> p.value()).toList());
    assertEquals(List.of(2L, 4L), vm.evalLoss().stream().map(p -> p.step()).toList());
    assertEquals(List.of(1.0, 0.5), vm.evalLoss().stream().map(p -> p.value()).toList());
    assertEquals(4e-3, vm.lr().get(3).value(), 1e-15);
    assertEquals(250.0, vm.tokensPerS().get(0).value());
    assertEquals(1.0, vm.progress().get());
    assertEquals(0.25, vm.expertLoad().get()[0][1]);
    assertEquals(1.0, vm.routerEntropy().get()[0]);
    assertTrue(vm.lastCheckpoint().get().endsWith("step-4"));
    assertEquals(vm.lastCheckpoint().get(), ws.checkpointDir().get());
    // the trainer got the form's config; writing out/run-config.yaml is the job's (after its
    // checks)
    RunConfig cfg = t.configs.get(0);
    assertEquals("/models/tiny", cfg.model());
    assertEquals(vm.form().toConfig(), cfg);
    assertTrue(Files.notExists(vm.configFile()), "the GUI itself writes nothing into out/");
  }

  @Test
  void stopCheckpointsThenResumeContinuesAndReplacesRedoneSteps() throws Exception {
    ScriptedTrainer t = new ScriptedTrainer();
    t.stopAfter = 2;
    TrainingViewModel vm = vm(t);
    vm.start();
    assertEquals(TrainingViewModel.State.STOPPED, vm.state().get(), vm.status().get());
    assertEquals(2, vm.loss().size());
    assertTrue(vm.status().get().startsWith("Stopped at step 2"), vm.status().get());
    assertTrue(vm.lastCheckpoint().get().endsWith("step-2"));
    t.stopAfter = Integer.MAX_VALUE;
    vm.resume();
    assertEquals(List.of(false, true), t.resumes);
    assertEquals(TrainingViewModel.State.FINISHED, vm.state().get());
    assertEquals(List.of(1L, 2L, 3L, 4L), vm.loss().stream().map(p -> p.step()).toList());
  }

  @Test
  void aFailureIsOneLineAndTheTraceGoesToTheLog() throws Exception {
    ScriptedTrainer t = new ScriptedTrainer();
    t.failure = new IllegalStateException("d.jsonl:3: field 'conversations' must be a list");
    TrainingViewModel vm = vm(t);
    vm.start();
    assertEquals(TrainingViewModel.State.FAILED, vm.state().get());
    assertEquals(
        "Training failed: d.jsonl:3: field 'conversations' must be a list", vm.status().get());
    assertTrue(log.lines().stream().anyMatch(l -> l.contains("at moetune.app.gui")));
  }

  @Test
  void formFieldsAreCheckedByTheTrainParser() throws Exception {
    TrainingViewModel vm = vm(new ScriptedTrainer());
    FormField lr = vm.form().field("lr");
    lr.text().set("-1");
    assertTrue(lr.error().get().contains("lr"), lr.error().get());
    vm.start();
    assertEquals(TrainingViewModel.State.IDLE, vm.state().get());
    assertEquals(lr.error().get(), vm.status().get());
    lr.text().set("3e-4");
    assertEquals("", lr.error().get());
    vm.form().field("schedule").text().set("exponential");
    assertFalse(vm.form().field("schedule").error().get().isEmpty());
    vm.form().field("schedule").text().set("linear");
    vm.form().field("out").text().set("");
    assertTrue(vm.form().field("out").error().get().contains("required"));
  }

  @Test
  void savedYamlAndJsonLoadBackAndParseAsTrainReadsThem() throws Exception {
    TrainingViewModel vm = vm(new ScriptedTrainer());
    vm.form().field("lr").text().set("3e-4");
    vm.form().field("freeze").text().set("router,layer:1");
    vm.form().field("aux-loss-coef").text().set("0.01");
    for (String name : List.of("cfg.yaml", "cfg.json")) {
      Path f = tmp.resolve(name);
      vm.saveConfig(f);
      RunConfig parsed = RunConfigParser.parse(f, Map.of());
      assertEquals(vm.form().toConfig(), parsed, name);
      assertEquals(3e-4, (Double) parsed.get("lr"));
      TrainingViewModel other =
          new TrainingViewModel(
              new ScriptedTrainer(), new SyncTaskExecutor(), log, new Workspace());
      other.loadConfig(f);
      assertEquals(vm.form().toConfig(), other.form().toConfig(), name);
      assertEquals("router,layer:1", other.form().field("freeze").text().get());
    }
  }

  @Test
  void aBadConfigFileIsOneLine() throws Exception {
    TrainingViewModel vm = vm(new ScriptedTrainer());
    Path f = Files.writeString(tmp.resolve("bad.yaml"), "model: x\nwandb_project: 1\n");
    vm.loadConfig(f);
    assertTrue(vm.status().get().startsWith("Could not load the run config: "), vm.status().get());
    assertTrue(vm.status().get().contains("bad.yaml"), vm.status().get());
    assertFalse(vm.status().get().contains("\n"));
    assertTrue(vm.status().get().contains("wandb_project"), vm.status().get());
  }

  @Test
  void aRefusedOutputFolderIsLeftAsItWas() throws Exception {
    // another run's checkpoints in out/: the job refuses it before anything is written there
    TrainingViewModel vm =
        new TrainingViewModel(new EngineTrainerGateway(), new SyncTaskExecutor(), log, ws);
    Path data = Files.writeString(tmp.resolve("d.jsonl"), "{}\n");
    ws.modelSpec().set(Path.of(System.getProperty("moetune.fixtures"), "tiny-mixtral").toString());
    ws.datasets().set(data.toString());
    Path out = tmp.resolve("used");
    Path ck = Files.createDirectories(out.resolve("checkpoints/step-00000005"));
    Files.writeString(ck.resolve("trainer-state.json"), "{}");
    Files.writeString(out.resolve("run-config.yaml"), "the other run's config\n");
    vm.form().field("out").text().set(out.toString());
    vm.start();
    assertEquals(TrainingViewModel.State.FAILED, vm.state().get(), vm.status().get());
    assertTrue(vm.status().get().contains("already holds the checkpoints"), vm.status().get());
    assertTrue(vm.status().get().endsWith("(nothing was changed)"), vm.status().get());
    assertEquals("the other run's config\n", Files.readString(out.resolve("run-config.yaml")));
  }

  @Test
  void perDatasetSettingsSurviveTheFormLoadAndSave() throws Exception {
    Path f =
        Files.writeString(
            tmp.resolve("mixed.yaml"),
            "model: m\nout: o\ndatasets:\n  - path: a.jsonl\n    format: openai\n"
                + "    template: mistral\n    labels: last-turn\n    weight: 2\n  - b.jsonl\n");
    TrainingViewModel vm = vm(new ScriptedTrainer());
    vm.loadConfig(f);
    RunConfig file = RunConfigParser.parse(f, Map.of());
    assertEquals(file, vm.form().toConfig());
    // relative paths in a config file resolve against the file's folder
    assertEquals(
        "[{\"path\":\""
            + tmp.resolve("a.jsonl")
            + "\",\"format\":\"openai\",\"template\":\"mistral\",\"labels\":\"last-turn\","
            + "\"weight\":2.0},\""
            + tmp.resolve("b.jsonl")
            + "\"]",
        vm.form().field("datasets").text().get());
    Path saved = tmp.resolve("saved.yaml");
    vm.saveConfig(saved);
    assertEquals(file, RunConfigParser.parse(saved, Map.of()));
    assertEquals(
        "openai", RunConfigParser.parse(saved, Map.of()).resolvedDatasets().get(0).format());
    assertEquals(
        "chatml", RunConfigParser.parse(saved, Map.of()).resolvedDatasets().get(1).template());
  }
}
