package moetune.app.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import moetune.engine.train.EvalMetrics;
import moetune.engine.train.StepMetrics;
import org.junit.jupiter.api.Test;

/** The progress line's content, and plain versus live output. */
class ProgressBarTest {
  static StepMetrics step(long s) {
    return new StepMetrics(s, 40, 0, 2.34567, 1.98, 0, 0.5, 3e-4, 500, 12345.6, 3725);
  }

  @Test
  void lineShowsStepLossLrThroughputAndEta() {
    assertEquals(
        "step 10/40 [######..................]  25% | loss 2.3457 | aux 1.980 | lr 3.00e-04 |"
            + " 12,346 tok/s | ETA 1:02:05",
        ProgressBar.format(step(10), 12345.6, 3725, Integer.MAX_VALUE));
    assertEquals("00:59", ProgressBar.duration(59.4));
  }

  @Test
  void theLineFitsEveryTerminalWidth() {
    for (int w : new int[] {200, 100, 80, 60, 50, 49}) {
      String line = ProgressBar.format(step(10), 12345.6, 3725, w - 1);
      assertTrue(line.length() <= w - 1, w + ": " + line);
      assertTrue(line.startsWith("step 10/40"), line);
      assertTrue(line.contains("loss 2.3457") && line.contains("ETA 1:02:05"), w + ": " + line);
    }
    assertEquals(
        "step 10/40  25% | loss 2.3457 | lr 3.00e-04 | 12,346 tok/s | ETA 1:02:05",
        ProgressBar.format(step(10), 12345.6, 3725, 79));
  }

  @Test
  void tokensPerSecondAndEtaAreSmoothed() {
    // step rates jump 1,000 -> 10,000 -> 2,500 (a JIT warm-up and a long batch): the shown rate is
    // the harmonic mean so far, not the last step's; the ETA uses the smoothed step time
    long[] now = {0};
    ByteArrayOutputStream o = new ByteArrayOutputStream();
    ProgressBar p =
        new ProgressBar(new PrintStream(o, true, StandardCharsets.UTF_8), false, 80, () -> now[0]);
    double[] rates = {1000, 10000, 2500};
    for (int i = 0; i < 3; i++) {
      now[0] += 6_000_000_000L; // 6 s a step (plain output prints every 5 s)
      p.onStep(new StepMetrics(i + 1, 3, 0, 2.0, 0, 0, 1, 1e-4, 100, rates[i], 999));
    }
    List<String> lines = o.toString(StandardCharsets.UTF_8).lines().toList();
    assertTrue(lines.get(0).contains("| 1,000 tok/s |"), lines.get(0));
    // bias-corrected EMA of seconds per token with alpha 0.1: weights 0.81/0.9/1 over 2.71
    double spt = (0.81 / 1000 + 0.9 / 10000 + 1.0 / 2500) / 2.71;
    assertTrue(
        lines.get(2).contains(String.format(java.util.Locale.ROOT, "| %,.0f tok/s |", 1 / spt)),
        lines.get(2));
    assertTrue(lines.get(2).endsWith("ETA 00:00"), "no steps left: " + lines.get(2));
    assertTrue(lines.get(0).endsWith("ETA 16:39"), "no step time yet: the trainer's ETA");
  }

  @Test
  void plainOutputIsWholeLinesAndLiveOutputRedrawsInPlace() {
    ByteArrayOutputStream plain = new ByteArrayOutputStream();
    ProgressBar p = new ProgressBar(new PrintStream(plain, true, StandardCharsets.UTF_8), false);
    for (long s = 1; s <= 40; s++) {
      p.onStep(step(s));
    }
    String text = plain.toString(StandardCharsets.UTF_8);
    assertTrue(!text.contains("\r") && !text.contains("\u001b"), "no control characters in a log");
    assertTrue(text.startsWith("step 1/40 "), text);
    assertTrue(text.contains("step 40/40 "), "the last step is always printed");
    assertTrue(text.lines().count() < 40, "plain output is throttled");

    ByteArrayOutputStream live = new ByteArrayOutputStream();
    ProgressBar l = new ProgressBar(new PrintStream(live, true, StandardCharsets.UTF_8), true);
    l.onStep(step(1));
    l.onEval(EvalMetrics.of(1, 4.0, 2));
    String shown = live.toString(StandardCharsets.UTF_8);
    assertTrue(shown.startsWith("\rstep 1/40 "), shown);
    assertTrue(
        shown.contains("\r\u001b[Keval at step 1: loss 2.0000, perplexity 7.39 (2 tokens)\n"),
        shown);
  }
}
