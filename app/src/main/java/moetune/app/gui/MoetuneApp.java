package moetune.app.gui;

import java.util.Optional;
import javafx.application.Application;
import javafx.application.Platform;
import javafx.scene.Scene;
import javafx.scene.control.Alert;
import javafx.scene.control.ButtonType;
import javafx.stage.Stage;
import javafx.stage.WindowEvent;

/** The JavaFX application: one window with the four screens. */
public final class MoetuneApp extends Application {

  @Override
  public void start(Stage stage) {
    show(stage, EngineServices.create(), Platform::exit);
  }

  /**
   * Builds the window on {@code stage}; {@code exit} ends the app once a run stopped for a window
   * close has checkpointed (robot tests pass their own, since the FX toolkit cannot be restarted in
   * one JVM).
   */
  public static MainWindow show(Stage stage, GuiServices services, Runnable exit) {
    GuiLog log = new GuiLog();
    MainWindow window = new MainWindow(services, new FxTaskExecutor(), log);
    stage.setTitle("moetune");
    stage.setScene(new Scene(window, 1360, 940));
    stage.setOnCloseRequest(e -> confirmClose(window, e, exit));
    stage.show();
    return window;
  }

  /**
   * Closing during a run asks first; on yes, the run writes a checkpoint before the window goes
   * (the wait happens off the FX thread so the window keeps painting meanwhile).
   */
  private static void confirmClose(MainWindow window, WindowEvent e, Runnable exit) {
    if (!window.training().isActive()) {
      return;
    }
    e.consume();
    Alert ask =
        new Alert(
            Alert.AlertType.CONFIRMATION,
            "A training run is in progress. Stop it (after writing a checkpoint) and quit?",
            ButtonType.YES,
            ButtonType.NO);
    ask.setHeaderText("Training is running");
    ask.initOwner(window.getScene().getWindow());
    Optional<ButtonType> answer = ask.showAndWait();
    if (answer.isPresent() && answer.get() == ButtonType.YES) {
      TaskExecutor.Handle run = window.training().stopForClose();
      Thread t =
          new Thread(
              () -> {
                try {
                  run.await();
                } catch (InterruptedException ignored) {
                  Thread.currentThread().interrupt();
                }
                Platform.runLater(exit);
              },
              "moetune-gui-close");
      t.setDaemon(true);
      t.start();
    }
  }
}
