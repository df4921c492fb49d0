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
 * Gives GUI tests a display: when DISPLAY is unset (CI, a terminal over ssh) it starts Xvfb on
 * a free display number, points this JVM's DISPLAY at it (libc setenv through FFM, before the
 * FX toolkit starts, since GTK reads the variable natively) and stops it when the JVM exits.
 * With DISPLAY already set it does nothing, so the tests can also be watched on a desktop.
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
      if (Files.exists(Path.of("/tmp/.X11-unix/X" + n)) || Files.exists(Path.of("/tmp/.X" + n
          + "-lock"))) {
        continue;
      }
      Process p = start(n);
      if (waitForSocket(p, n)) {
        Runtime.getRuntime().addShutdownHook(new Thread(p::destroy, "xvfb-stop"));
        setenv("DISPLAY", ":" + n);
        display = ":" + n;
        return display;
      }
      p.destroy();
    }
    throw new IllegalStateException("no free X display between :91 and :159 for Xvfb");
  }

  private static Process start(int n) {
    try {
      return new ProcessBuilder("Xvfb", ":" + n, "-screen", "0", "1400x1000x24", "-nolisten",
          "tcp").redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD)
          .start();
    } catch (IOException e) {
      throw new IllegalStateException("GUI tests need a display: DISPLAY is unset and Xvfb"
          + " cannot be started (" + e.getMessage() + "); install it with"
          + " `apt-get install xvfb libgtk-3-0 libgl1 libxtst6`", e);
    }
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
    MethodHandle setenv = linker.downcallHandle(
        linker.defaultLookup().find("setenv").orElseThrow(),
        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
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
