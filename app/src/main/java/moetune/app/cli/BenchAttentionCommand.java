package moetune.app.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import moetune.app.config.ConfigException;
import moetune.engine.backend.cuda.AttentionBench;
import moetune.engine.backend.cuda.CudaBackend;
import moetune.engine.backend.cuda.CudaProbe;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code moetune bench attention}: the CUDA backend's attention forward and backward against
 * PyTorch's scaled_dot_product_attention (tools/bench_sdpa.py) on the same shapes, in the same run.
 */
@Command(
    name = "attention",
    mixinStandardHelpOptions = true,
    description =
        "Causal attention forward/backward TFLOP/s (bf16, GQA) next to PyTorch SDPA measured in"
            + " the same run, with the ratio.")
public final class BenchAttentionCommand implements Callable<Integer> {
  @Option(
      names = "--seq",
      split = ",",
      defaultValue = "2048,4096,8192",
      description = "sequence lengths (default: ${DEFAULT-VALUE})")
  List<Integer> seqs;

  @Option(
      names = "--head-dim",
      split = ",",
      defaultValue = "128,64",
      description = "head dims (default: ${DEFAULT-VALUE})")
  List<Integer> headDims;

  @Option(
      names = "--tokens",
      defaultValue = "16384",
      description = "tokens per batch; batch = tokens / seq (default: ${DEFAULT-VALUE})")
  int tokens;

  @Option(names = "--heads", defaultValue = "32", description = "query heads (default: 32)")
  int heads;

  @Option(names = "--kv-heads", defaultValue = "8", description = "kv heads (default: 8)")
  int kvHeads;

  @Option(
      names = "--reps",
      defaultValue = "20",
      description = "timed samples, the median is reported (default: 20)")
  int reps;

  @Option(
      names = "--warmup",
      defaultValue = "3",
      description = "untimed warm-up samples (default: 3)")
  int warmup;

  @Option(
      names = "--calls",
      defaultValue = "10",
      description =
          "back-to-back calls per sample, between two CUDA events, on both sides (default: 10)")
  int calls;

  @Option(names = "--gpu", defaultValue = "0", description = "CUDA device ordinal (default: 0)")
  int gpu;

  @Option(
      names = "--path",
      paramLabel = "P",
      description =
          "attention kernels: cudnn (cuDNN fused attention, the default), own (tensor-core) or"
              + " scalar; default: MOETUNE_ATTENTION or cudnn")
  String path;

  @Option(
      names = "--reference",
      defaultValue = "default,flash",
      paramLabel = "B",
      description =
          "SDPA kernels to time as the reference: default, flash, cudnn (comma-separated), or"
              + " none (default: ${DEFAULT-VALUE})")
  String reference;

  @Option(
      names = "--sdpa-script",
      paramLabel = "FILE",
      description = "tools/bench_sdpa.py (default: found under the working or install folder)")
  Path sdpaScript;

  @Option(
      names = "--python",
      defaultValue = "python3",
      description = "Python with torch (default: ${DEFAULT-VALUE})")
  String python;

  @Override
  public Integer call() {
    try {
      if (seqs.stream().anyMatch(t -> t < 1) || headDims.stream().anyMatch(d -> d < 1)) {
        throw new ConfigException("--seq and --head-dim take positive numbers");
      }
      if (tokens < 1 || heads < 1 || kvHeads < 1 || heads % kvHeads != 0) {
        throw new ConfigException(
            "--heads must be a positive multiple of --kv-heads, and --tokens positive");
      }
      if (reps < 1 || warmup < 0 || calls < 1) {
        throw new ConfigException("--reps and --calls must be >= 1 and --warmup >= 0");
      }
      String why = CudaProbe.unavailableReason(gpu);
      if (why != null) {
        throw new ConfigException("bench attention needs a CUDA device: " + why);
      }
      Path script = null;
      if (!"none".equals(reference)) {
        script = sdpaScript != null ? sdpaScript : findScript();
        if (sdpaScript != null && !Files.isRegularFile(sdpaScript)) {
          throw new ConfigException("--sdpa-script " + sdpaScript + " is not a file");
        }
      }
      String p = path != null ? path : System.getenv().getOrDefault("MOETUNE_ATTENTION", "cudnn");
      AttentionBench.Options o =
          new AttentionBench.Options(
              seqs, headDims, tokens, heads, kvHeads, reps, warmup, calls, p, script, python,
              reference);
      try (CudaBackend g = new CudaBackend(gpu, false)) {
        return AttentionBench.run(g, o, System.out);
      }
    } catch (RuntimeException e) {
      return CliErrors.report("bench attention", e, System.err);
    }
  }

  /** tools/bench_sdpa.py under the working folder, MOETUNE_HOME or the jar's install folders. */
  static Path findScript() {
    List<Path> roots = new ArrayList<>();
    roots.add(Path.of("").toAbsolutePath());
    String home = System.getenv("MOETUNE_HOME");
    if (home != null && !home.isBlank()) roots.add(Path.of(home));
    try {
      Path jar =
          Path.of(
              BenchAttentionCommand.class
                  .getProtectionDomain()
                  .getCodeSource()
                  .getLocation()
                  .toURI());
      for (Path d = jar.getParent(); d != null && roots.size() < 8; d = d.getParent()) {
        roots.add(d);
      }
    } catch (Exception e) {
      // no code source (an unusual class loader): the working folder and MOETUNE_HOME remain
    }
    for (Path r : roots) {
      Path s = r.resolve("tools/bench_sdpa.py");
      if (Files.isRegularFile(s)) return s;
    }
    return null;
  }
}
