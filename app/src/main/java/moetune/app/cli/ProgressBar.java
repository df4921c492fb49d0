package moetune.app.cli;

import java.io.PrintStream;
import java.util.Locale;
import java.util.function.LongSupplier;
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
  private static final int MAX_BAR = 24;
  private static final int MIN_BAR = 8;
  private static final long PLAIN_INTERVAL_NANOS = 5_000_000_000L;

  private final PrintStream out;
  private final boolean live;
  private final int width;
  private final LongSupplier clock;
  private final Smoothed secondsPerToken = new Smoothed(0.1);
  private final Smoothed secondsPerStep = new Smoothed(0.1);
  private long lastStepNanos = -1;
  private boolean lineOpen;
  private long lastPlain;

  public ProgressBar(PrintStream out, boolean live) {
    this(out, live, 80, System::nanoTime);
  }

  /**
   * @param width the terminal's columns: the live line is kept shorter, so it never wraps
   * @param clock nanoseconds, for the ETA's step times (tests pass their own)
   */
  ProgressBar(PrintStream out, boolean live, int width, LongSupplier clock) {
    this.out = out;
    this.live = live;
    this.width = Math.max(20, width);
    this.clock = clock;
  }

  /** Live when stdout is a terminal, as wide as the terminal. */
  public static ProgressBar forStdout() {
    java.io.Console c = System.console();
    boolean live = c != null && c.isTerminal();
    return new ProgressBar(
        System.out, live, live ? TerminalWidth.columns() : 120, System::nanoTime);
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
    long now = clock.getAsLong();
    if (m.tokensPerSecond() > 0) {
      secondsPerToken.add(1 / m.tokensPerSecond());
    }
    if (lastStepNanos >= 0) {
      secondsPerStep.add((now - lastStepNanos) / 1e9);
    }
    lastStepNanos = now;
    double rate = secondsPerToken.empty() ? m.tokensPerSecond() : 1 / secondsPerToken.value();
    double eta =
        secondsPerStep.empty()
            ? m.etaSeconds()
            : secondsPerStep.value() * Math.max(0, m.totalSteps() - m.step());
    if (live) {
      out.print("\r" + format(m, rate, eta, width - 1) + "\u001b[K");
      out.flush();
      lineOpen = true;
      return;
    }
    if (m.step() == m.totalSteps() || m.step() == 1 || now - lastPlain >= PLAIN_INTERVAL_NANOS) {
      out.println(format(m, rate, eta, Integer.MAX_VALUE));
      lastPlain = now;
    }
  }

  /**
   * The step line in at most {@code max} columns: the bar narrows first, then the least needed
   * parts go (aux loss, the bar, lr, the percentage), and step, loss, tokens/s and ETA stay.
   *
   * @param rate smoothed tokens per second
   * @param eta smoothed seconds left
   */
  static String format(StepMetrics m, double rate, double eta, int max) {
    double frac = (double) m.step() / Math.max(1, m.totalSteps());
    String step = m.step() + "/" + m.totalSteps();
    String pct = String.format(Locale.ROOT, "%3.0f%%", 100 * frac);
    String loss = String.format(Locale.ROOT, "loss %.4f", m.loss());
    String aux = String.format(Locale.ROOT, "aux %.3f", m.auxLoss());
    String lr = String.format(Locale.ROOT, "lr %.2e", m.lr());
    String tps = String.format(Locale.ROOT, "%,.0f tok/s", rate);
    String etaText = "ETA " + duration(eta);
    for (int level = 0; ; level++) {
      boolean withAux = level < 1;
      boolean withBar = level < 2;
      boolean withLr = level < 3;
      boolean withPct = level < 4;
      String sep = level < 5 ? " | " : " ";
      StringBuilder b = new StringBuilder("step ").append(step);
      String rest =
          (withPct ? " " + pct : "")
              + sep
              + loss
              + (withAux ? sep + aux : "")
              + (withLr ? sep + lr : "")
              + sep
              + tps
              + sep
              + etaText;
      if (withBar) {
        int room = max - b.length() - rest.length() - 3; // " [" and "]"
        int bar = Math.min(MAX_BAR, room);
        if (bar < MIN_BAR) {
          continue;
        }
        int filled = (int) Math.round(frac * bar);
        b.append(" [").append("#".repeat(filled)).append(".".repeat(bar - filled)).append(']');
      }
      b.append(rest);
      if (b.length() <= max || level >= 5) {
        return b.length() <= max ? b.toString() : b.substring(0, max);
      }
    }
  }

  /**
   * An exponential moving average with Adam's bias correction, so the first values are plain means
   * instead of being pulled toward 0.
   */
  static final class Smoothed {
    private final double alpha;
    private double ema;
    private int n;

    Smoothed(double alpha) {
      this.alpha = alpha;
    }

    void add(double x) {
      ema = (1 - alpha) * ema + alpha * x;
      n++;
    }

    boolean empty() {
      return n == 0;
    }

    double value() {
      return ema / (1 - Math.pow(1 - alpha, n));
    }
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
