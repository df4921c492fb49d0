package moetune.app.gui.training;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import moetune.app.Main;
import moetune.app.config.RunConfigParser;
import moetune.app.gui.GuiLog;
import moetune.app.gui.SyncTaskExecutor;
import moetune.app.gui.Workspace;
import moetune.app.run.TrainingJob;
import moetune.datasets.SampleData;
import moetune.engine.train.StepMetrics;
import moetune.engine.train.TrainingListener;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The GUI and `train` give identical losses for the same config and seed on the CPU: the GUI path
 * (form, config file, {@link EngineTrainerGateway}) against `moetune train --config` (its
 * metrics.jsonl) and against {@link TrainingJob} with a listener, on the tiny-mixtral fixture with
 * the sample data. Losses are compared bit for bit: both run the same float32 CPU code on the same
 * data order, so any difference is a difference in what they train.
 */
class GuiTrainParityTest {

  static final Path TINY = Path.of(System.getProperty("moetune.fixtures"), "tiny-mixtral");

  @TempDir Path tmp;

  /** Fills the form as a user would on the three screens, for a 3-step CPU run. */
  static void fillTinyRun(RunConfigForm form, Path data, Path out) {
    form.field("model").text().set(TINY.toString());
    form.field("datasets").text().set(data.toString());
    form.field("template").text().set("mistral");
    form.field("max-length").text().set("48");
    form.field("micro-batch").text().set("2");
    form.field("max-steps").text().set("3");
    form.field("lr").text().set("1e-2");
    form.field("schedule").text().set("constant");
    form.field("eval-split").text().set("0.1");
    form.field("device").text().set("cpu");
    form.field("precision").text().set("fp32");
    form.field("checkpoint-every").text().set("0");
    form.field("seed").text().set("7");
    form.field("out").text().set(out.toString());
  }

  @Test
  void guiAndTrainLossesAreIdentical() throws Exception {
    Path data = tmp.resolve("arith.jsonl");
    SampleData.writeShareGpt(data, SampleData.arithmetic(3, 40));

    TrainingViewModel vm =
        new TrainingViewModel(
            new EngineTrainerGateway(), new SyncTaskExecutor(), new GuiLog(), new Workspace());
    fillTinyRun(vm.form(), data, tmp.resolve("gui"));
    vm.start();
    assertEquals(TrainingViewModel.State.FINISHED, vm.state().get(), vm.status().get());
    List<Double> gui = vm.loss().stream().map(TrainingViewModel.Point::value).toList();

    RunConfigForm cliForm = new RunConfigForm();
    fillTinyRun(cliForm, data, tmp.resolve("cli"));
    Path cfgFile = tmp.resolve("cli.yaml");
    cliForm.save(cfgFile);
    assertEquals(0, Main.run("train", "--config", cfgFile.toString()));
    List<Double> cli = new ArrayList<>();
    ObjectMapper json = new ObjectMapper();
    for (String line : Files.readAllLines(tmp.resolve("cli").resolve("metrics.jsonl"))) {
      JsonNode n = json.readTree(line);
      if (n.path("type").asText().equals("step")) {
        cli.add(n.get("loss").doubleValue());
      }
    }
    assertEquals(cli, gui, "`moetune train` and the GUI, bit for bit");

    RunConfigForm api = new RunConfigForm();
    fillTinyRun(api, data, tmp.resolve("api"));
    api.save(cfgFile);
    List<Double> train = new ArrayList<>();
    try (TrainingJob job =
        TrainingJob.prepare(RunConfigParser.parse(cfgFile, Map.of()), null, line -> {})) {
      job.trainer()
          .addListener(
              new TrainingListener() {
                @Override
                public void onStep(StepMetrics m) {
                  train.add(m.loss());
                }
              });
      job.run();
    }
    assertEquals(3, train.size());
    assertEquals(train, gui, "bit-identical losses");
    assertTrue(train.get(0) > 5, "a random model over 32000 tokens starts near ln(32000)");
  }
}
