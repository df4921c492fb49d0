package moetune.app.cli;

import java.io.File;
import java.util.concurrent.TimeUnit;

/**
 * The terminal's width in columns, for a progress line that must not wrap: {@code COLUMNS} when the
 * shell exported it, else {@code stty size} on the controlling terminal, else 80. (A terminal
 * library such as JLine would answer the same; for one number at start-up it does not pay for its
 * jar.)
 */
final class TerminalWidth {
  private TerminalWidth() {}

  static int columns() {
    Integer env = parse(System.getenv("COLUMNS"));
    if (env != null) {
      return env;
    }
    File tty = new File("/dev/tty");
    if (tty.canRead()) {
      try {
        Process p =
            new ProcessBuilder("stty", "size")
                .redirectInput(tty)
                .redirectError(ProcessBuilder.Redirect.DISCARD)
                .start();
        String outText = new String(p.getInputStream().readAllBytes()).strip();
        if (p.waitFor(2, TimeUnit.SECONDS) && p.exitValue() == 0) {
          String[] rowsCols = outText.split("\\s+");
          Integer cols = rowsCols.length == 2 ? parse(rowsCols[1]) : null;
          if (cols != null) {
            return cols;
          }
        }
      } catch (java.io.IOException e) {
        // no stty: fall back below
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    return 80;
  }

  /** A positive column count, or null. */
  static Integer parse(String s) {
    if (s == null) {
      return null;
    }
    try {
      int n = Integer.parseInt(s.strip());
      return n > 0 ? n : null;
    } catch (NumberFormatException e) {
      return null;
    }
  }
}
