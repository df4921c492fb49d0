package moetune.app.cli;

import java.io.PrintStream;
import java.util.Locale;
import moetune.engine.train.CheckpointEvent;
import moetune.engine.train.EvalMetrics;
import moetune.engine.train.RunInfo;
import moetune.engine.train.StepMetrics;
import moetune.engine.train.TrainingListener;

/**
 * The terminal view of a run: on a terminal, one live line redrawn in place (step, bar, loss, lr,
 * tokens/s, ETA) with evaluations, checkpoints and log lines printed above it; elsewhere (a pipe, a
 * CI log) plain lines, at most one every few seconds plus the last step.
 */
public final class ProgressBar implements TrainingListener {
  private static final int WIDTH = 24;
  private static final long PLAIN_INTERVAL_NANOS = 5_000_000_000L;

  private final PrintStream out;
  private final boolean live;
  private boolean lineOpen;
  private long lastPlain;

  public ProgressBar(PrintStream out, boolean live) {
    this.out = out;
    this.live = live;
  }

  /** Live when stdout is a terminal. */
  public static ProgressBar forStdout() {
    java.io.Console c = System.console();
    return new ProgressBar(System.out, c != null && c.isTerminal());
  }

  @Override
  public void onStart(RunInfo info) {
    println(
        String.format(
            Locale.ROOT,
            "training %,d parameters on %s: steps %d..%d (%d per epoch), %,d tokens per step, "
                + "%d training / %d held-out sequences",
            info.parameters(),
            info.device(),
            info.startStep() + 1,
            info.totalSteps(),
            info.stepsPerEpoch(),
            info.tokensPerStep(),
            info.trainSequences(),
            info.evalSequences()));
  }

  @Override
  public void onStep(StepMetrics m) {
    String line = format(m);
    if (live) {
      out.print("\r" + line + "\u001b[K");
      out.flush();
      lineOpen = true;
      return;
    }
    long now = System.nanoTime();
    if (m.step() == m.totalSteps() || m.step() == 1 || now - lastPlain >= PLAIN_INTERVAL_NANOS) {
      out.println(line);
      lastPlain = now;
    }
  }

  static String format(StepMetrics m) {
    double frac = (double) m.step() / Math.max(1, m.totalSteps());
    int filled = (int) Math.round(frac * WIDTH);
    return String.format(
        Locale.ROOT,
        "step %d/%d [%s%s] %3.0f%% | loss %.4f | aux %.3f | lr %.2e | %,.0f tok/s | ETA %s",
        m.step(),
        m.totalSteps(),
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        100 * frac,
        m.loss(),
        m.auxLoss(),
        m.lr(),
        m.tokensPerSecond(),
        duration(m.etaSeconds()));
  }

  static String duration(double seconds) {
    long s = Math.max(0, Math.round(seconds));
    return s >= 3600
        ? String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
        : String.format(Locale.ROOT, "%02d:%02d", s / 60, s % 60);
  }

  @Override
  public void onEval(EvalMetrics m) {
    println(
        String.format(
            Locale.ROOT,
            "eval at step %d: loss %.4f, perplexity %.2f (%,d tokens)",
            m.step(),
            m.loss(),
            m.perplexity(),
            m.tokens()));
  }

  @Override
  public void onCheckpoint(CheckpointEvent e) {
    println(
        String.format(
            Locale.ROOT,
            "checkpoint (%s) step %d -> %s (%.1f s)",
            e.reason().name().toLowerCase(Locale.ROOT),
            e.step(),
            e.dir(),
            e.seconds()));
  }

  @Override
  public void onLog(String line) {
    println(line);
  }

  /** Prints a whole line above the live bar (the bar is redrawn by the next step). */
  private void println(String s) {
    if (lineOpen) {
      out.print("\r\u001b[K");
      lineOpen = false;
    }
    out.println(s);
    out.flush();
  }
}
