package moetune.app.gui;

import java.util.concurrent.Callable;
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

  /**
   * True when JavaFX is on the class path: the source build and the desktop app image have it; the
   * GPU-server tarball leaves it out.
   */
  public static boolean hasJavaFx() {
    try {
      Class.forName("javafx.application.Application", false, GuiCommand.class.getClassLoader());
      return true;
    } catch (ClassNotFoundException | LinkageError e) {
      return false;
    }
  }

  /** The one line a build without JavaFX prints for {@code gui}. */
  public static final String NO_GUI =
      "moetune gui: this build (the GPU-server tarball) has no desktop app; the desktop build"
          + " has it: the app image from `mvn -Pdesktop package`, or ./moetune in a source build";

  private static boolean notBlank(String s) {
    return s != null && !s.isBlank();
  }

  @Override
  public Integer call() {
    if (!hasJavaFx()) {
      System.err.println(NO_GUI);
      return 2;
    }
    if (!hasDisplay()) {
      System.err.println(
          "moetune gui: no display (DISPLAY is not set); run it on a desktop,"
              + " or use `moetune train` headless");
      return 2;
    }
    FxLaunch.launch();
    return 0;
  }
}
