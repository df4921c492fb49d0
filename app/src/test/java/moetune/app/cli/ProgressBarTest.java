package moetune.app.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
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
        ProgressBar.format(step(10)));
    assertEquals("00:59", ProgressBar.duration(59.4));
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
