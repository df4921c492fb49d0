package moetune.app.gui;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import javafx.collections.FXCollections;
import javafx.collections.ObservableList;

/**
 * The log pane's contents, shared by every screen. Users see one short line per error in the
 * screen's status; the full detail (stack trace) lands here and in the JVM logger.
 *
 * <p>Only touched on the UI thread (see {@link TaskExecutor}); background code appends through
 * {@link TaskExecutor#onUi}.
 */
public final class GuiLog {

  /** Lines kept in the pane; older ones are dropped so a long run cannot exhaust memory. */
  static final int MAX_LINES = 5000;

  private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("HH:mm:ss");
  private static final System.Logger LOGGER = System.getLogger("moetune.gui");

  private final ObservableList<String> lines = FXCollections.observableArrayList();

  public ObservableList<String> lines() {
    return lines;
  }

  public void info(String message) {
    append(message);
    LOGGER.log(System.Logger.Level.DEBUG, message);
  }

  /**
   * Logs the detail of {@code error} and returns the one short line the user sees, which also
   * starts the log entry so the two can be matched up.
   */
  public String error(String what, Throwable error) {
    String shortLine = what + ": " + shortMessage(error);
    StringWriter trace = new StringWriter();
    error.printStackTrace(new PrintWriter(trace));
    append("ERROR " + shortLine);
    for (String l : trace.toString().split("\n")) {
      append("    " + l.stripTrailing());
    }
    LOGGER.log(System.Logger.Level.DEBUG, shortLine, error);
    return shortLine;
  }

  /**
   * The first line of the most specific message in the cause chain: user errors are thrown as one
   * line naming file and field, and wrappers (ExecutionException, ...) add nothing.
   */
  public static String shortMessage(Throwable error) {
    Throwable t = error;
    while (t.getCause() != null
        && t.getCause() != t
        && (t.getMessage() == null || t.getMessage().equals(t.getCause().toString()))) {
      t = t.getCause();
    }
    String m = t.getMessage();
    if (m == null || m.isBlank()) {
      return t.getClass().getSimpleName();
    }
    int nl = m.indexOf('\n');
    return nl < 0 ? m : m.substring(0, nl);
  }

  private void append(String line) {
    lines.add(TIME.format(LocalTime.now()) + "  " + line);
    if (lines.size() > MAX_LINES) {
      lines.remove(0, lines.size() - MAX_LINES);
    }
  }
}
