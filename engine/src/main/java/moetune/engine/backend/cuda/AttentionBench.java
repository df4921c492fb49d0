package moetune.engine.backend.cuda;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Collectors;
import moetune.engine.backend.AttnSpec;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * Times the CUDA backend's attention forward and backward (bf16, causal, grouped-query heads, the
 * (B*T, H, hd) layout of training) and, where Python with PyTorch is present, PyTorch's
 * scaled_dot_product_attention on the same shapes in the same run (tools/bench_sdpa.py). TFLOP/s
 * count causal FLOPs as half the square (4 B H T^2 hd / 2 forward) and the backward as 2.5x the
 * forward.
 *
 * <p>Timing, the same on both sides (bench_sdpa.py does exactly this): after {@code warmup} untimed
 * samples, each of {@code reps} samples records a CUDA event, queues {@code calls} back-to-back
 * calls, records a second event and waits for it; a sample's time is the events' difference over
 * {@code calls}. The table gives the median sample and half the spread (max - min). Back-to-back
 * calls keep the GPU busy while the host queues the next call, so neither side's per-call host time
 * (moetune's, or PyTorch's dispatcher and autograd) shows unless it exceeds the kernel's own time;
 * one call between two events would add it.
 */
public final class AttentionBench {
  /**
   * What to measure. sdpaScript null: no reference. backends: SDPA kernels for bench_sdpa.py
   * (default, flash, cudnn; comma-separated).
   */
  public record Options(
      List<Integer> seqs,
      List<Integer> headDims,
      int tokens,
      int heads,
      int kvHeads,
      int reps,
      int warmup,
      int calls,
      String path,
      Path sdpaScript,
      String python,
      String backends) {}

  private record Row(
      int seq,
      int hd,
      int batch,
      double fwdMs,
      double bwdMs,
      double fwdSpread,
      double bwdSpread,
      double flop) {}

  private AttentionBench() {}

  /** Runs the benchmark on g and prints the table to out; returns 0, or 1 if nothing ran. */
  public static int run(CudaBackend g, Options o, PrintStream out) {
    g.attentionPath(o.path());
    out.println("attention bench on " + g.describe());
    out.printf(
        "causal, bf16, %d query heads over %d kv heads, %d tokens per batch; median of %d samples"
            + " of %d back-to-back calls between two CUDA events, after %d warm-up samples%n",
        o.heads(), o.kvHeads(), o.tokens(), o.reps(), o.calls(), o.warmup());
    List<Row> rows = new ArrayList<>();
    for (int hd : o.headDims()) {
      for (int t : o.seqs()) {
        rows.add(measure(g, o, t, hd));
        Row r = rows.getLast();
        out.printf(
            "  measured T=%d hd=%d: fwd %.3f ms, bwd %.3f ms%n", r.seq, r.hd, r.fwdMs, r.bwdMs);
      }
    }
    Map<String, Map<String, double[]>> ref = new LinkedHashMap<>();
    String refNote = reference(o, ref, out);
    out.println();
    StringBuilder head =
        new StringBuilder("| T | hd | B | fwd ms | bwd ms | fwd TFLOP/s | bwd TFLOP/s");
    StringBuilder rule = new StringBuilder("|---|---|---|---|---|---|---");
    for (String b : ref.keySet()) {
      head.append(" | SDPA ").append(b).append(" fwd / bwd TFLOP/s | ratio fwd / bwd");
      rule.append("|---|---");
    }
    out.println(head.append(" |"));
    out.println(rule.append("|"));
    for (Row r : rows) {
      double ft = r.flop / r.fwdMs / 1e9, bt = 2.5 * r.flop / r.bwdMs / 1e9;
      StringBuilder line =
          new StringBuilder(
              String.format(
                  "| %d | %d | %d | %.3f ± %.3f | %.3f ± %.3f | %.1f | %.1f",
                  r.seq,
                  r.hd,
                  r.batch,
                  r.fwdMs,
                  r.fwdSpread / 2,
                  r.bwdMs,
                  r.bwdSpread / 2,
                  ft,
                  bt));
      for (Map<String, double[]> m : ref.values()) {
        double[] s = m.get(r.seq + "/" + r.hd);
        if (s == null) {
          line.append(" | n/a | n/a");
        } else {
          line.append(
              String.format(" | %.1f / %.1f | %.2f / %.2f", s[0], s[1], ft / s[0], bt / s[1]));
        }
      }
      out.println(line.append(" |"));
    }
    if (refNote != null) {
      out.println("reference: " + refNote);
    }
    return rows.isEmpty() ? 1 : 0;
  }

  private static Row measure(CudaBackend g, Options o, int t, int hd) {
    int b = Math.max(1, o.tokens() / t), h = o.heads(), hkv = o.kvHeads();
    long nq = (long) b * t, rows = nq * h;
    Random rnd = new Random(1);
    AttnSpec spec = AttnSpec.causal(b, t, 0);
    try (Tensor q = rand(g, rnd, nq, h, hd);
        Tensor k = rand(g, rnd, nq, hkv, hd);
        Tensor v = rand(g, rnd, nq, hkv, hd);
        Tensor dOut = rand(g, rnd, nq, h, hd);
        Tensor out = g.empty(DType.BF16, nq, h, hd);
        Tensor lse = g.empty(DType.F32, rows);
        Tensor dq = g.empty(DType.BF16, nq, h, hd);
        Tensor dk = g.empty(DType.BF16, nq, hkv, hd);
        Tensor dv = g.empty(DType.BF16, nq, hkv, hd)) {
      double[] f = new double[o.reps()], bw = new double[o.reps()];
      int n = o.calls();
      Runnable fwd =
          () -> {
            for (int c = 0; c < n; c++) g.attentionForward(q, k, v, spec, out, lse);
          };
      Runnable bwd =
          () -> {
            for (int c = 0; c < n; c++)
              g.attentionBackward(dOut, q, k, v, out, lse, spec, dq, dk, dv);
          };
      for (int i = -o.warmup(); i < o.reps(); i++) {
        double tf = g.timeMs(fwd) / n;
        double tb = g.timeMs(bwd) / n;
        if (i >= 0) {
          f[i] = tf;
          bw[i] = tb;
        }
      }
      Arrays.sort(f);
      Arrays.sort(bw);
      double flop = 4.0 * b * h * (double) t * t * hd / 2;
      return new Row(
          t,
          hd,
          b,
          f[f.length / 2],
          bw[bw.length / 2],
          f[f.length - 1] - f[0],
          bw[bw.length - 1] - bw[0],
          flop);
    }
  }

  /** Normal bf16 values; large tensors repeat one random chunk (upload once, copy on device). */
  private static Tensor rand(CudaBackend g, Random rnd, long... shape) {
    long n = HostTensor.numel(shape);
    int chunk = (int) Math.min(n, 1 << 22);
    float[] v = new float[chunk];
    for (int i = 0; i < chunk; i++) v[i] = (float) rnd.nextGaussian();
    Tensor t = g.empty(DType.BF16, shape);
    try (Tensor c = g.upload(HostTensor.ofFloats(v, chunk), DType.BF16)) {
      for (long off = 0; off < n; off += chunk) {
        long len = Math.min(chunk, n - off);
        g.copy(c.view(0, len), t.view(off, len));
      }
    }
    return t;
  }

  /**
   * Runs bench_sdpa.py and fills ref (backend -> "T/hd" -> {fwd, bwd} TFLOP/s); returns a note when
   * the reference is missing or incomplete, else null.
   */
  private static String reference(
      Options o, Map<String, Map<String, double[]>> ref, PrintStream out) {
    if (o.sdpaScript() == null) {
      return "not measured (no tools/bench_sdpa.py found; pass --sdpa-script)";
    }
    List<String> cmd =
        List.of(
            o.python(),
            o.sdpaScript().toString(),
            "--seq",
            join(o.seqs()),
            "--head-dim",
            join(o.headDims()),
            "--tokens",
            Integer.toString(o.tokens()),
            "--heads",
            Integer.toString(o.heads()),
            "--kv-heads",
            Integer.toString(o.kvHeads()),
            "--reps",
            Integer.toString(o.reps()),
            "--warmup",
            Integer.toString(o.warmup()),
            "--calls",
            Integer.toString(o.calls()),
            "--backend",
            o.backends());
    out.println("reference: " + String.join(" ", cmd));
    ObjectMapper json = new ObjectMapper();
    List<String> tail = new ArrayList<>();
    try {
      Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
      try (BufferedReader r =
          new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
        String line;
        while ((line = r.readLine()) != null) {
          if (line.startsWith("RESULT ")) {
            JsonNode n = json.readTree(line.substring(7));
            ref.computeIfAbsent(n.get("backend").asText(), x -> new LinkedHashMap<>())
                .put(
                    n.get("seq").asInt() + "/" + n.get("head_dim").asInt(),
                    new double[] {n.get("fwd_tflops").asDouble(), n.get("bwd_tflops").asDouble()});
          } else if (!line.isBlank()) {
            tail.add(line);
          }
        }
      }
      int rc = p.waitFor();
      if (rc != 0 || ref.isEmpty()) {
        return "bench_sdpa.py exited with "
            + rc
            + (tail.isEmpty() ? "" : ": " + tail.get(Math.max(0, tail.size() - 1)));
      }
      List<String> errs = tail.stream().filter(l -> l.startsWith("bench_sdpa:")).toList();
      return errs.isEmpty() ? null : String.join("; ", errs);
    } catch (IOException e) {
      return "not measured (" + o.python() + " could not run: " + e.getMessage() + ")";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "interrupted";
    }
  }

  private static String join(List<Integer> xs) {
    return xs.stream().map(String::valueOf).collect(Collectors.joining(","));
  }

  /**
   * {@code java -cp ... moetune.engine.backend.cuda.AttentionBench [SCRIPT [BACKENDS]]}: the
   * defaults of {@code moetune bench attention}, for GPU hosts without the app.
   */
  public static void main(String[] args) {
    Path script = args.length > 0 ? Path.of(args[0]) : null;
    Options o =
        new Options(
            List.of(2048, 4096, 8192),
            List.of(128, 64),
            16384,
            32,
            8,
            20,
            3,
            10,
            System.getenv().getOrDefault("MOETUNE_ATTENTION", "cudnn"),
            script,
            "python3",
            args.length > 1 ? args[1] : "default,flash");
    int rc;
    try (CudaBackend g = new CudaBackend(0, false)) {
      rc = run(g, o, System.out);
    }
    System.exit(rc);
  }
}
