package moetune.app.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import moetune.app.config.ConfigException;
import moetune.app.run.Devices;
import moetune.engine.backend.Backend;
import moetune.engine.moe.MoeLayerBenchmark;
import moetune.engine.moe.MoeLayerBenchmark.Shape;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code moetune bench moe}: the MoE SwiGLU layer forward and forward+backward next to two cuBLAS
 * GEMMs of the same FLOPs measured in the same run, and, where Python with PyTorch is found, the
 * {@code tools/bench_scattermoe.py} reference on the same shapes with the ratio.
 */
@Command(
    name = "moe",
    mixinStandardHelpOptions = true,
    description =
        "MoE layer fwd and fwd+bwd (median ms, spread, TFLOP/s, extra peak memory) next to dense"
            + " cuBLAS of the same FLOPs; the three shapes of issue 10 unless a shape is given.")
public final class BenchMoeCommand implements Callable<Integer> {
  @Option(names = "--tokens", paramLabel = "T", description = "tokens (default 16384)")
  Integer tokens;

  @Option(names = "--hidden", paramLabel = "D", description = "hidden size")
  Integer hidden;

  @Option(names = "--ffn", paramLabel = "F", description = "expert intermediate size")
  Integer ffn;

  @Option(names = "--experts", paramLabel = "E", description = "number of experts")
  Integer experts;

  @Option(names = "--topk", paramLabel = "K", description = "experts per token")
  Integer topk;

  @Option(
      names = "--device",
      defaultValue = "cuda",
      paramLabel = "D",
      description = "cuda or cuda:N (default: ${DEFAULT-VALUE})")
  String device;

  @Option(
      names = "--repeats",
      defaultValue = "7",
      paramLabel = "N",
      description = "timings per median (default: ${DEFAULT-VALUE})")
  int repeats;

  @Option(
      names = "--python",
      defaultValue = "python3",
      paramLabel = "EXE",
      description = "Python for the reference; 'none' skips it (default: ${DEFAULT-VALUE})")
  String python;

  @Option(
      names = "--reference-script",
      defaultValue = "tools/bench_scattermoe.py",
      paramLabel = "FILE",
      description = "the PyTorch reference timer (default: ${DEFAULT-VALUE})")
  Path script;

  @Option(
      names = "--breakdown",
      description =
          "after each shape, the device time of every op of one forward+backward (routing,"
              + " the six grouped products, SwiGLU, group/combine copies, idle gaps)")
  boolean breakdown;

  @Option(
      names = "--breakdown-written",
      description =
          "the breakdown of a forward+backward that writes the expert weights' gradients (a"
              + " step's first micro-batch) instead of adding to them")
  boolean breakdownWritten;

  @Override
  public Integer call() {
    try {
      List<Shape> shapes = shapes();
      if (repeats < 3) throw new ConfigException("--repeats must be >= 3, got " + repeats);
      Map<String, Double> reference = reference(shapes);
      boolean withRef = !reference.isEmpty();
      try (Backend g = Devices.open(device, line -> System.err.println(line))) {
        if (!g.name().startsWith("cuda")) {
          throw new ConfigException(
              "--device " + device + ": the MoE benchmark times the CUDA kernels; use cuda");
        }
        System.out.println("MoE SwiGLU layer, bf16, on " + g.describe());
        System.out.println(MoeLayerBenchmark.header(withRef, "torch"));
        List<String> breakdowns = new ArrayList<>();
        for (Shape s : shapes) {
          MoeLayerBenchmark.Result r = MoeLayerBenchmark.run(g, s, repeats, 5);
          System.out.println(
              MoeLayerBenchmark.row(r, withRef, reference.getOrDefault(s.toString(), Double.NaN)));
          if (breakdown || breakdownWritten) {
            breakdowns.add(
                MoeLayerBenchmark.breakdownTable(
                    MoeLayerBenchmark.breakdown(g, s, repeats, breakdownWritten),
                    r.denseForwardBackward()));
          }
        }
        breakdowns.forEach(System.out::println);
      }
      return 0;
    } catch (Exception e) {
      return CliErrors.report("bench moe", e, System.err);
    }
  }

  /** The one shape the options give (all five or none), else the defaults. */
  List<Shape> shapes() {
    Integer[] v = {tokens, hidden, ffn, experts, topk};
    int given = 0;
    for (Integer i : v) if (i != null) given++;
    if (given == 0) return MoeLayerBenchmark.DEFAULT_SHAPES;
    if (given != 5) {
      throw new ConfigException(
          "bench moe: give all of --tokens --hidden --ffn --experts --topk, or none for the"
              + " three default shapes");
    }
    try {
      return List.of(new Shape(tokens, hidden, ffn, experts, topk));
    } catch (IllegalArgumentException e) {
      throw new ConfigException("bench moe: " + e.getMessage());
    }
  }

  /**
   * Runs the PyTorch reference on every shape, fwd+bwd ms keyed by the shape's text; empty (with
   * one line saying why) where Python, PyTorch or the script is missing.
   */
  private Map<String, Double> reference(List<Shape> shapes) {
    Map<String, Double> out = new HashMap<>();
    if (python.equals("none")) return out;
    if (!Files.isRegularFile(script)) {
      System.err.println("reference skipped: " + script + " not found (run from the repository)");
      return out;
    }
    List<String> cmd = new ArrayList<>(List.of(python, script.toString()));
    for (Shape s : shapes) {
      cmd.add("--shape");
      cmd.add(s.tokens() + "," + s.hidden() + "," + s.ffn() + "," + s.experts() + "," + s.topk());
    }
    try {
      Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
      ObjectMapper json = new ObjectMapper();
      try (BufferedReader r =
          new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
        for (String line; (line = r.readLine()) != null; ) {
          if (!line.startsWith("RESULT ")) continue;
          JsonNode n = json.readTree(line.substring(7));
          Shape s =
              new Shape(
                  n.get("tokens").asInt(),
                  n.get("hidden").asInt(),
                  n.get("ffn").asInt(),
                  n.get("experts").asInt(),
                  n.get("topk").asInt());
          out.put(s.toString(), n.get("fwd_bwd_ms").asDouble());
        }
      }
      int rc = p.waitFor();
      if (rc != 0) System.err.println("reference: " + script + " exited with " + rc);
    } catch (Exception e) {
      System.err.println("reference skipped: " + python + " " + script + ": " + e.getMessage());
    }
    return out;
  }
}
