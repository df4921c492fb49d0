package moetune.app.gui;

import javafx.application.Application;

/**
 * Starts the JavaFX app. Kept apart from {@link GuiCommand} so that class loads (and says there is
 * no GUI) in a build without JavaFX.
 */
final class FxLaunch {
  private FxLaunch() {}

  static void launch() {
    Application.launch(MoetuneApp.class);
  }
}
