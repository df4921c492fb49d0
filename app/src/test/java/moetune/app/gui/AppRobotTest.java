package moetune.app.gui;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import javafx.application.Platform;
import javafx.scene.control.Label;
import javafx.stage.Stage;
import javafx.stage.WindowEvent;
import moetune.app.gui.training.MetricChart;
import moetune.app.gui.training.RunConfigForm;
import moetune.app.gui.training.TrainingViewModel.State;
import moetune.datasets.SampleData;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.testfx.api.FxRobot;
import org.testfx.framework.junit5.ApplicationExtension;
import org.testfx.framework.junit5.Start;
import org.testfx.util.WaitForAsyncUtils;

/**
 * The whole app driven by a robot under Xvfb with the real engine on the CPU: load the tiny-mixtral
 * fixture, load the sample data, preview a record, start a short run, watch the charts update, stop
 * (checkpoint), resume, export, generate; and close during a run. Saves a screenshot of every
 * screen under target/screenshots/.
 */
@ExtendWith({XvfbExtension.class, ApplicationExtension.class})
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class AppRobotTest {

  static final Path TINY = Path.of(System.getProperty("moetune.fixtures"), "tiny-mixtral");

  @TempDir Path tmp;

  private Stage stage;
  private MainWindow window;
  private volatile boolean exited;

  @Start
  void start(Stage stage) {
    this.stage = stage;
    window =
        MoetuneApp.show(
            stage,
            EngineServices.create(),
            () -> {
              exited = true;
              stage.hide();
            });
  }

  private static void waitFor(int seconds, Callable<Boolean> condition) throws Exception {
    WaitForAsyncUtils.waitFor(seconds, TimeUnit.SECONDS, condition);
    WaitForAsyncUtils.waitForFxEvents();
  }

  private void tab(FxRobot robot, int index) {
    robot.interact(() -> window.getSelectionModel().select(index));
  }

  private Path loadModelAndData(FxRobot robot) throws Exception {
    robot.clickOn("#model-path").write(TINY.toString());
    robot.clickOn("#model-load");
    waitFor(30, () -> window.model().facts().get() != null);
    assertEquals("2", robot.lookup("#model-layers").queryAs(Label.class).getText());
    assertEquals("4", robot.lookup("#model-experts").queryAs(Label.class).getText());

    Path data = tmp.resolve("arithmetic.jsonl");
    SampleData.writeShareGpt(data, SampleData.arithmetic(11, 60));
    tab(robot, 1);
    robot.clickOn("#data-files").write(data.toString());
    robot.interact(() -> window.data().template().set("mistral"));
    robot.clickOn("#data-load");
    waitFor(60, () -> window.data().records().size() == 60);
    return data;
  }

  private void fillShortRun(FxRobot robot, Path out, int steps) {
    robot.interact(
        () -> {
          RunConfigForm f = window.training().form();
          f.field("max-length").text().set("48");
          f.field("micro-batch").text().set("2");
          f.field("max-steps").text().set(Integer.toString(steps));
          f.field("lr").text().set("1e-2");
          f.field("warmup-steps").text().set("2");
          f.field("eval-every").text().set("3");
          f.field("eval-split").text().set("0.1");
          f.field("device").text().set("cpu");
          f.field("precision").text().set("fp32");
          f.field("checkpoint-every").text().set("0");
          f.field("out").text().set(out.toString());
        });
  }

  @Test
  @Order(1)
  void loadDataTrainStopResumeExportAndTry(FxRobot robot) throws Exception {
    Screenshots.save(stage.getScene(), "0-empty-model-screen");
    loadModelAndData(robot);
    tab(robot, 0);
    Screenshots.save(stage.getScene(), "1-model");

    tab(robot, 1);
    robot.clickOn(robot.lookup("#data-records .list-cell").nth(2).queryLabeled());
    waitFor(
        20,
        () ->
            window.data().selected().get() == window.data().records().get(2)
                && !window.data().tokens().isEmpty());
    assertEquals(window.data().records().get(2).length(), window.data().tokens().size());
    assertTrue(window.data().tokens().stream().anyMatch(t -> t.trained()));
    assertTrue(window.data().tokens().stream().anyMatch(t -> !t.trained()));
    Screenshots.save(stage.getScene(), "2-data-record");
    robot.clickOn("Statistics");
    WaitForAsyncUtils.waitForFxEvents();
    Screenshots.save(stage.getScene(), "2-data-statistics");
    robot.clickOn("Records");

    tab(robot, 2);
    assertEquals(TINY.toString(), window.training().form().field("model").text().get());
    Path out = tmp.resolve("run");
    // enough steps that the run cannot finish between the second loss point and the robot's
    // click on Stop, however fast the machine (a finished run never reaches STOPPED)
    int steps = 60;
    fillShortRun(robot, out, steps);
    robot.clickOn("#train-start");
    MetricChart loss = robot.lookup("#chart-loss").queryAs(MetricChart.class);
    waitFor(120, () -> loss.pointCount(0) >= 2);
    Screenshots.save(stage.getScene(), "3-training-running");
    robot.clickOn("#train-stop");
    waitFor(120, () -> window.training().state().get() == State.STOPPED);
    long stoppedAt = window.training().loss().size();
    assertTrue(stoppedAt >= 2 && stoppedAt < steps, "stopped at " + stoppedAt);
    assertTrue(Files.isDirectory(Path.of(window.training().lastCheckpoint().get())));
    assertTrue(window.training().lastCheckpoint().get().contains("step-"));

    robot.clickOn("#train-resume");
    waitFor(240, () -> window.training().state().get() == State.FINISHED);
    assertEquals(steps, loss.pointCount(0), window.training().status().get());
    assertTrue(loss.pointCount(1) >= 3, "eval points");
    assertEquals(1.0, window.training().progress().get());
    assertEquals(2, window.training().expertLoad().get().length);
    double[] layer0 = window.training().expertLoad().get()[0];
    assertEquals(1.0, layer0[0] + layer0[1] + layer0[2] + layer0[3], 1e-9);
    Screenshots.save(stage.getScene(), "3-training-finished");

    tab(robot, 3);
    assertEquals(out.resolve("export").toString(), window.export().target().get());
    robot.interact(() -> window.export().shardSize().set("1MB"));
    robot.clickOn("#export-run");
    waitFor(60, () -> !window.export().result().get().isEmpty());
    assertTrue(Files.isRegularFile(out.resolve("export").resolve("config.json")));
    robot.clickOn("#try-prompt").write("What is 7 + 5?");
    robot.interact(
        () -> {
          window.export().useExported().set(true);
          window.export().maxNewTokens().set("12");
        });
    robot.clickOn("#try-generate");
    waitFor(60, () -> window.export().generateStatus().get().startsWith("Generated"));
    Screenshots.save(stage.getScene(), "4-export-and-try");
  }

  @Test
  @Order(2)
  void closingDuringARunAsksThenCheckpoints(FxRobot robot) throws Exception {
    loadModelAndData(robot);
    tab(robot, 2);
    Path out = tmp.resolve("closing");
    fillShortRun(robot, out, 50);
    robot.clickOn("#train-start");
    waitFor(120, () -> window.training().loss().size() >= 1);
    // as the window manager's close button does; no wait, the handler blocks in its dialog
    Platform.runLater(
        () -> stage.fireEvent(new WindowEvent(stage, WindowEvent.WINDOW_CLOSE_REQUEST)));
    waitFor(10, () -> robot.lookup("Yes").tryQuery().isPresent());
    assertTrue(window.training().isActive(), "the question comes before anything stops");
    Screenshots.save(robot.lookup("Yes").query().getScene(), "5-close-during-run");
    robot.clickOn("Yes");
    waitFor(120, () -> exited);
    assertEquals(State.STOPPED, window.training().state().get());
    Path ckpt = Path.of(window.training().lastCheckpoint().get());
    assertTrue(Files.isRegularFile(ckpt.resolve("config.json")), ckpt.toString());
  }
}
