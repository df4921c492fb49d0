package moetune.app.gui;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Gives GUI tests a display: when DISPLAY is unset (CI, a terminal over ssh) it starts Xvfb on a
 * free display number, points this JVM's DISPLAY at it (libc setenv through FFM, before the FX
 * toolkit starts, since GTK reads the variable natively) and stops it after the JVM exits.
 *
 * <p>Xvfb runs under a small shell watchdog that kills it once this JVM is gone, rather than from a
 * shutdown hook: GTK ends the process with status 1 when its X server disappears, and during
 * shutdown that would turn a green test run into a failed surefire fork. With DISPLAY already set
 * it does nothing, so the tests can also be watched on a desktop.
 */
public final class XvfbExtension implements BeforeAllCallback {

  private static String display;

  @Override
  public void beforeAll(ExtensionContext context) throws Exception {
    ensureDisplay();
  }

  public static synchronized String ensureDisplay() throws Exception {
    if (display != null) {
      return display;
    }
    String env = System.getenv("DISPLAY");
    if (env != null && !env.isBlank()) {
      display = env;
      return display;
    }
    for (int n = 91; n < 160; n++) {
      if (Files.exists(Path.of("/tmp/.X11-unix/X" + n))
          || Files.exists(Path.of("/tmp/.X" + n + "-lock"))) {
        continue;
      }
      Process p = start(n);
      if (waitForSocket(p, n)) {
        setenv("DISPLAY", ":" + n);
        display = ":" + n;
        return display;
      }
      p.destroy();
    }
    throw new IllegalStateException("no free X display between :91 and :159 for Xvfb");
  }

  /** Xvfb on display :n, killed by its watchdog shell when this JVM or Xvfb itself ends. */
  private static Process start(int n) {
    if (!onPath("Xvfb")) {
      throw new IllegalStateException(
          "GUI tests need a display: DISPLAY is unset and Xvfb is"
              + " not installed; install it with `apt-get install xvfb libgtk-3-0 libgl1 libxtst6`");
    }
    long jvm = ProcessHandle.current().pid();
    String script =
        "Xvfb :"
            + n
            + " -screen 0 1400x1000x24 -nolisten tcp >/dev/null 2>&1 &"
            + " x=$!; trap 'kill $x 2>/dev/null' EXIT;"
            + " while kill -0 "
            + jvm
            + " 2>/dev/null && kill -0 $x 2>/dev/null; do sleep 0.5; done";
    try {
      return new ProcessBuilder("sh", "-c", script)
          .redirectErrorStream(true)
          .redirectOutput(ProcessBuilder.Redirect.DISCARD)
          .start();
    } catch (IOException e) {
      throw new IllegalStateException(
          "GUI tests need a display: DISPLAY is unset and Xvfb"
              + " cannot be started ("
              + e.getMessage()
              + "); install it with"
              + " `apt-get install xvfb libgtk-3-0 libgl1 libxtst6`",
          e);
    }
  }

  private static boolean onPath(String exe) {
    String path = System.getenv("PATH");
    for (String dir : (path == null ? "/usr/bin:/bin" : path).split(":")) {
      if (Files.isExecutable(Path.of(dir, exe))) {
        return true;
      }
    }
    return false;
  }

  /** Xvfb is ready once its socket exists; false when it exited (display taken meanwhile). */
  private static boolean waitForSocket(Process p, int n) throws InterruptedException {
    Path socket = Path.of("/tmp/.X11-unix/X" + n);
    for (int i = 0; i < 100; i++) {
      if (!p.isAlive()) {
        return false;
      }
      if (Files.exists(socket)) {
        return true;
      }
      Thread.sleep(100);
    }
    return false;
  }

  private static void setenv(String name, String value) {
    Linker linker = Linker.nativeLinker();
    MethodHandle setenv =
        linker.downcallHandle(
            linker.defaultLookup().find("setenv").orElseThrow(),
            FunctionDescriptor.of(
                ValueLayout.JAVA_INT,
                ValueLayout.ADDRESS,
                ValueLayout.ADDRESS,
                ValueLayout.JAVA_INT));
    int rc;
    try (Arena arena = Arena.ofConfined()) {
      rc = (int) setenv.invokeExact(arena.allocateFrom(name), arena.allocateFrom(value), 1);
    } catch (Throwable t) {
      throw new IllegalStateException("setenv(" + name + ") failed", t);
    }
    if (rc != 0) {
      throw new IllegalStateException("setenv(" + name + ") returned " + rc);
    }
  }
}
