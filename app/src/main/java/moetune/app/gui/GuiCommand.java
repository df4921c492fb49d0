package moetune.app.gui;

import java.util.concurrent.Callable;
import javafx.application.Application;
import picocli.CommandLine.Command;

/** `moetune gui`: opens the desktop app. */
@Command(
    name = "gui",
    mixinStandardHelpOptions = true,
    description = "Open the desktop app (also what `moetune` with no arguments does).")
public final class GuiCommand implements Callable<Integer> {

  /** True when a display is available for a window (X11 or Wayland). */
  public static boolean hasDisplay() {
    return notBlank(System.getenv("DISPLAY")) || notBlank(System.getenv("WAYLAND_DISPLAY"));
  }

  private static boolean notBlank(String s) {
    return s != null && !s.isBlank();
  }

  @Override
  public Integer call() {
    if (!hasDisplay()) {
      System.err.println(
          "moetune gui: no display (DISPLAY is not set); run it on a desktop,"
              + " or use `moetune train` headless");
      return 2;
    }
    Application.launch(MoetuneApp.class);
    return 0;
  }
}
