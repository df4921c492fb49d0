package moetune.engine.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import moetune.engine.hf.MixtralConfig;

/**
 * The reference rows of {@code bench step}: runs {@code tools/bench_transformers_step.py}
 * (transformers' own Mixtral, same config, batch, sequence length, step count, bf16 autocast with
 * fp32 master weights) in a child process and parses the {@code RESULT {json}} lines it prints, one
 * per experts implementation it timed (transformers' default first, then its other switches).
 */
public final class TransformersReference {
  public static final String SCRIPT = "tools/bench_transformers_step.py";
  private static final ObjectMapper JSON = new ObjectMapper();

  private TransformersReference() {}

  /**
   * The script: {@code explicit} when given, else {@code tools/bench_transformers_step.py} in the
   * working directory or up to three directories above it (a staged copy runs from below the
   * checkout).
   */
  public static Path findScript(Path explicit) {
    if (explicit != null) {
      if (!Files.isRegularFile(explicit)) {
        throw new IllegalArgumentException(
            "--reference-script " + explicit + ": no such file; point it at " + SCRIPT);
      }
      return explicit;
    }
    Path dir = Path.of("").toAbsolutePath();
    for (int up = 0; up <= 3 && dir != null; up++, dir = dir.getParent()) {
      Path p = dir.resolve(SCRIPT);
      if (Files.isRegularFile(p)) {
        return p;
      }
    }
    throw new IllegalArgumentException(
        "--reference transformers: "
            + SCRIPT
            + " not found in the working directory or above it; run from the moetune checkout or"
            + " give --reference-script PATH");
  }

  /**
   * Runs the script with {@code python} on config (written to a temporary config.json) and returns
   * its rows in the order printed (at least one). The script's other output goes to {@code log}.
   */
  public static List<StepBench.Row> run(
      String python, Path script, MixtralConfig config, StepBench.Settings s, PrintStream log)
      throws IOException, InterruptedException {
    if (s.activations() != moetune.engine.tensor.DType.BF16) {
      throw new IllegalArgumentException(
          "--reference transformers times bf16 autocast; run the benchmark with bf16");
    }
    Path dir = Files.createTempDirectory("moetune-bench-ref");
    Path cfg = dir.resolve("config.json");
    try {
      Files.writeString(cfg, config.toJson(), StandardCharsets.UTF_8);
      List<String> cmd =
          new ArrayList<>(
              List.of(
                  python,
                  script.toString(),
                  "--config",
                  cfg.toString(),
                  "--micro-batch",
                  Integer.toString(s.microBatch()),
                  "--seq-len",
                  Integer.toString(s.seqLen()),
                  "--steps",
                  Integer.toString(s.steps()),
                  "--warmup",
                  Integer.toString(Math.max(1, s.warmup())),
                  "--seed",
                  Long.toString(s.seed())));
      Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
      List<String> results = new ArrayList<>();
      List<String> tail = new ArrayList<>();
      try (BufferedReader r =
          new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
        for (String line; (line = r.readLine()) != null; ) {
          if (line.startsWith("RESULT ")) {
            results.add(line.substring("RESULT ".length()));
          } else {
            log.println("  [reference] " + line);
            tail.add(line);
            if (tail.size() > 20) {
              tail.remove(0);
            }
          }
        }
      }
      int rc = p.waitFor();
      if (rc != 0 || results.isEmpty()) {
        throw new IOException(
            script
                + " exited with "
                + rc
                + (results.isEmpty() ? " without a RESULT line" : "")
                + (tail.isEmpty() ? "" : "; last line: " + tail.get(tail.size() - 1)));
      }
      List<StepBench.Row> rows = new ArrayList<>();
      for (String json : results) {
        rows.add(parse(json, config, s.seqLen()));
      }
      return rows;
    } finally {
      Files.deleteIfExists(cfg);
      Files.deleteIfExists(dir);
    }
  }

  /** The row for a RESULT json (see the script's docstring for its fields). */
  static StepBench.Row parse(String json, MixtralConfig config, int seqLen) throws IOException {
    JsonNode n = JSON.readTree(json);
    String[] need = {
      "impl", "params", "step_ms_median", "step_ms_min", "step_ms_max", "tokens_per_s", "peak_bytes"
    };
    for (String k : need) {
      if (!n.has(k)) {
        throw new IOException("the reference's RESULT lacks '" + k + "': " + json);
      }
    }
    double tps = n.get("tokens_per_s").asDouble();
    return new StepBench.Row(
        n.get("impl").asText(),
        n.get("params").asLong(),
        n.get("step_ms_median").asDouble(),
        n.get("step_ms_min").asDouble(),
        n.get("step_ms_max").asDouble(),
        tps,
        tps * StepBench.flopsPerToken(config, seqLen) / 1e12,
        n.get("peak_bytes").asLong(),
        n.has("driver_bytes") ? n.get("driver_bytes").asLong() : -1,
        n.has("last_loss") ? n.get("last_loss").asDouble() : Double.NaN);
  }
}
