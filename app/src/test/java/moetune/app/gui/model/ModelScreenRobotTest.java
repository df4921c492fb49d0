package moetune.app.gui.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import javafx.scene.control.Label;
import javafx.stage.Stage;
import moetune.app.gui.MainWindow;
import moetune.app.gui.MoetuneApp;
import moetune.app.gui.EngineServices;
import moetune.app.gui.Screenshots;
import moetune.app.gui.XvfbExtension;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.testfx.api.FxRobot;
import org.testfx.framework.junit5.ApplicationExtension;
import org.testfx.framework.junit5.Start;
import org.testfx.util.WaitForAsyncUtils;

@ExtendWith({XvfbExtension.class, ApplicationExtension.class})
class ModelScreenRobotTest {

  private MainWindow window;

  @Start
  void start(Stage stage) {
    window = MoetuneApp.show(stage, EngineServices.create());
  }

  @Test
  void loadsTinyMixtral(FxRobot robot) throws Exception {
    Path tiny = Path.of(System.getProperty("moetune.fixtures"), "tiny-mixtral");
    robot.clickOn("#model-path").write(tiny.toString());
    robot.clickOn("#model-load");
    WaitForAsyncUtils.waitFor(20, TimeUnit.SECONDS,
        () -> window.model().facts().get() != null);
    WaitForAsyncUtils.waitForFxEvents();
    assertEquals("2", robot.lookup("#model-layers").queryAs(Label.class).getText());
    Screenshots.save(robot.targetWindow().getScene(), "smoke-model");
  }
}
