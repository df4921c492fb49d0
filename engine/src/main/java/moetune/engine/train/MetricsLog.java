package moetune.engine.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import moetune.files.AtomicFiles;

/**
 * Writes {@code metrics.jsonl}: one JSON object per line, flushed as it happens, with a {@code
 * "type"} of {@code "step"} ({@code step, epoch, loss, aux_loss, grad_norm, lr, tokens,
 * tokens_per_s}), {@code "eval"} ({@code step, eval_loss, eval_ppl, tokens}), {@code "expert_load"}
 * ({@code step, share: [[...] per layer], entropy: [...] per layer}) or {@code "checkpoint"}
 * ({@code step, dir, reason}); the last line is {@code "end"} ({@code step, outcome, skipped_steps,
 * error}).
 *
 * <p>Numbers that are not finite (a diverged step's loss) are written as {@code null}, never as the
 * string {@code "NaN"}, so every reader of JSON gets numbers or null. A step skipped under {@link
 * OnNonFinite#SKIP} carries {@code "skipped": true} and every step line the running count {@code
 * skipped_steps}.
 *
 * <p>When a run resumes from step s, lines after s (written by the interrupted run after its last
 * checkpoint) and its end line are dropped first, so the file reads as one uninterrupted run.
 */
public final class MetricsLog implements TrainingListener, AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();
  private final BufferedWriter out;

  private MetricsLog(BufferedWriter out) {
    this.out = out;
  }

  /** Starts a new file (replacing any old one) for a run that starts at step 0. */
  public static MetricsLog create(Path file) throws IOException {
    return new MetricsLog(
        Files.newBufferedWriter(
            file,
            StandardCharsets.UTF_8,
            StandardOpenOption.CREATE,
            StandardOpenOption.TRUNCATE_EXISTING,
            StandardOpenOption.WRITE));
  }

  /** Keeps the lines up to step {@code resumeStep} of an existing file and appends after them. */
  public static MetricsLog resume(Path file, long resumeStep) throws IOException {
    if (Files.exists(file)) {
      List<String> kept = new ArrayList<>();
      for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
        try {
          JsonNode n = JSON.readTree(line);
          if (n.path("step").asLong(Long.MAX_VALUE) <= resumeStep
              && !"end".equals(n.path("type").asText())) {
            kept.add(line);
          }
        } catch (IOException e) {
          // a line cut short by the crash: drop it
        }
      }
      AtomicFiles.write(file, tmp -> Files.write(tmp, kept, StandardCharsets.UTF_8));
    }
    return new MetricsLog(
        Files.newBufferedWriter(
            file, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND));
  }

  @Override
  public void onStep(StepMetrics m) {
    ObjectNode o = JSON.createObjectNode();
    o.put("type", "step");
    o.put("step", m.step());
    o.put("epoch", m.epoch());
    number(o, "loss", m.loss());
    number(o, "aux_loss", m.auxLoss());
    if (m.zLoss() != 0) { // only runs with a router z-loss coefficient compute it
      number(o, "z_loss", m.zLoss());
    }
    number(o, "grad_norm", m.gradNorm());
    number(o, "lr", m.lr());
    o.put("tokens", m.tokens());
    number(o, "tokens_per_s", m.tokensPerSecond());
    if (m.skipped()) {
      o.put("skipped", true);
    }
    o.put("skipped_steps", m.skippedSteps());
    write(o);
  }

  @Override
  public void onEval(EvalMetrics m) {
    ObjectNode o = JSON.createObjectNode();
    o.put("type", "eval");
    o.put("step", m.step());
    number(o, "eval_loss", m.loss());
    number(o, "eval_ppl", m.perplexity());
    o.put("tokens", m.tokens());
    write(o);
  }

  @Override
  public void onExpertLoad(ExpertLoad load) {
    ObjectNode o = JSON.createObjectNode();
    o.put("type", "expert_load");
    o.put("step", load.step());
    ArrayNode share = o.putArray("share");
    for (double[] layer : load.share()) {
      ArrayNode row = share.addArray();
      for (double s : layer) {
        addNumber(row, s);
      }
    }
    ArrayNode entropy = o.putArray("entropy");
    for (double h : load.entropy()) {
      addNumber(entropy, h);
    }
    write(o);
  }

  @Override
  public void onCheckpoint(CheckpointEvent e) {
    ObjectNode o = JSON.createObjectNode();
    o.put("type", "checkpoint");
    o.put("step", e.step());
    o.put("dir", e.dir().toString());
    o.put("reason", e.reason().name().toLowerCase(java.util.Locale.ROOT));
    write(o);
  }

  @Override
  public void onFinish(RunSummary s) {
    ObjectNode o = JSON.createObjectNode();
    o.put("type", "end");
    o.put("step", s.step());
    o.put("outcome", s.outcome().name().toLowerCase(java.util.Locale.ROOT));
    o.put("skipped_steps", s.skippedSteps());
    if (s.error() != null) {
      o.put("error", s.error());
    }
    try {
      write(o);
    } catch (UncheckedIOException e) {
      // The run is over and its outcome is reported elsewhere; a full disk must not hide it.
    }
  }

  /** A number, or null where it is NaN or infinite (JSON has no such numbers). */
  static void number(ObjectNode o, String key, double x) {
    if (Double.isFinite(x)) {
      o.put(key, x);
    } else {
      o.putNull(key);
    }
  }

  private static void addNumber(ArrayNode a, double x) {
    if (Double.isFinite(x)) {
      a.add(x);
    } else {
      a.addNull();
    }
  }

  private void write(ObjectNode o) {
    try {
      out.write(JSON.writeValueAsString(o));
      out.newLine();
      out.flush();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write metrics.jsonl: " + e.getMessage(), e);
    }
  }

  @Override
  public void close() throws IOException {
    out.close();
  }
}
