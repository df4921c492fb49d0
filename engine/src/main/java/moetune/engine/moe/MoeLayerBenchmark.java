package moetune.engine.moe;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import moetune.engine.backend.Backend;
import moetune.engine.backend.OpProfiler;
import moetune.engine.backend.QueueClock;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * Times the ScatterMoE SwiGLU expert layer ({@link MoeMlp} with top-k softmax routing, bf16 with
 * float32 accumulation and float32 weight gradients) forward and forward+backward next to the dense
 * reference of PERF.md measured in the same run: two plain cuBLAS GEMMs of the same FLOPs (6 T k D
 * F forward; forward+backward is three times that, so the dense fwd+bwd runs the pair three times).
 * {@code moetune bench moe} prints its table; the engine tests call it on a GPU host.
 */
public final class MoeLayerBenchmark {
  private MoeLayerBenchmark() {}

  /** T tokens, D hidden, F expert intermediate, E experts, k experts per token. */
  public record Shape(int tokens, int hidden, int ffn, int experts, int topk) {
    public Shape {
      if (tokens < 1 || hidden < 1 || ffn < 1 || experts < 1 || topk < 1 || topk > experts) {
        throw new IllegalArgumentException(
            "MoE shape T="
                + tokens
                + " D="
                + hidden
                + " F="
                + ffn
                + " E="
                + experts
                + " k="
                + topk
                + ": every size must be >= 1 and k <= E");
      }
    }

    /** Forward FLOPs: two products over T k routed rows, 2 * (D x 2F) + 2 * (F x D) each. */
    public double forwardFlops() {
      return 6.0 * tokens * topk * (double) hidden * ffn;
    }

    @Override
    public String toString() {
      return String.format(Locale.ROOT, "%d, %d, %d, %d, %d", tokens, hidden, ffn, experts, topk);
    }
  }

  /** The three shapes of issue 10: Mixtral 8x7B, fine-grained experts, the 1.5B model. */
  public static final List<Shape> DEFAULT_SHAPES =
      List.of(
          new Shape(16384, 4096, 14336, 8, 2),
          new Shape(16384, 4096, 1792, 64, 16),
          new Shape(16384, 1024, 3584, 8, 2));

  /** Median and spread of several timings, milliseconds per call. */
  public record Timing(double median, double min, double max) {
    @Override
    public String toString() {
      return String.format(Locale.ROOT, "%.2f (%.2f-%.2f)", median, min, max);
    }
  }

  /**
   * One shape's measurements; extraPeakBytes is the layer's peak beyond weights and inputs.
   * forwardBackward adds the weight gradients into their float32 buffers (+=, a later micro-batch
   * of a step); forwardBackwardWritten writes them (=, a step's first micro-batch after the
   * gradients were zeroed: {@link MoeMlp#overwriteGradsOnce}).
   */
  public record Result(
      Shape shape,
      Timing forward,
      Timing forwardBackward,
      Timing denseForward,
      Timing denseForwardBackward,
      long extraPeakBytes,
      Timing forwardBackwardWritten) {
    public double forwardBackwardTflops() {
      return 3 * shape.forwardFlops() / (forwardBackward.median() * 1e-3) / 1e12;
    }
  }

  /**
   * Measures one shape: {@code repeats} timings of at least {@code iters} calls each (more where
   * that many take less than {@link #MIN_TIMED_MS}), after a warm-up.
   */
  public static Result run(Backend g, Shape s, int repeats, int iters) {
    Random rnd = new Random(1);
    try (Layer layer = new Layer(g, s, rnd, DType.BF16)) {
      layer.forwardBackward.run();
      g.synchronize();
      long before = g.bytesInUse();
      g.resetPeak();
      layer.forwardBackward.run();
      g.synchronize();
      long extra = g.peakBytes() - before;
      Timing fw = time(g, layer.forward, repeats, iters);
      Timing fb = time(g, layer.forwardBackward, repeats, iters);
      Timing fbw = time(g, layer.forwardBackwardWritten, repeats, iters);
      Timing[] dense =
          dense(g, rnd, (long) s.tokens() * s.topk(), s.hidden(), s.ffn(), repeats, iters);
      return new Result(s, fw, fb, dense[0], dense[1], extra, fbw);
    }
  }

  /**
   * One op of the layer's forward+backward in a breakdown: a label (the Backend method, with the
   * product it computes for the six grouped products), its median device time in calls that each
   * start on an idle device (ms), its median over calls queued back to back (backToBackMs: the
   * device busy throughout, its clock where the timed table's runs are), the median time the device
   * sat idle just before it (the host queuing it), and for a product the back-to-back median of the
   * dense cuBLAS GEMM of the same FLOPs (twinMs: (M, D) x (D, 2F) for fwd1, dW1 and dX1, (M, F) x
   * (F, D) for fwd2, dW2 and dX2; NaN for the other ops).
   */
  public record OpTime(
      String label,
      double ms,
      double backToBackMs,
      double idleBeforeMs,
      boolean product,
      double twinMs) {}

  /**
   * Where one forward+backward of the layer spends its device time, op by op in queue order;
   * backToBackMs: the device time per call of {@code backToBackCalls} calls queued back to back
   * with no stamps between them (as the timed table runs them, over as long a stretch), and
   * hostQueueMs the host's time per call to queue them, so a gap between the timed median and the
   * profiled total shows whether the device ran slower or the host queued too slowly.
   */
  public record Breakdown(
      Shape shape,
      List<OpTime> ops,
      double totalMs,
      double backToBackMs,
      int backToBackCalls,
      double hostQueueMs) {
    public double productsMs() {
      return sum(true, OpTime::ms);
    }

    public double otherOpsMs() {
      return sum(false, OpTime::ms);
    }

    /** The six products back to back, and their dense twins back to back. */
    public double productsBackToBackMs() {
      return sum(true, OpTime::backToBackMs);
    }

    public double twinsMs() {
      return sum(true, OpTime::twinMs);
    }

    public double otherOpsBackToBackMs() {
      return sum(false, OpTime::backToBackMs);
    }

    private double sum(boolean products, java.util.function.ToDoubleFunction<OpTime> f) {
      return ops.stream().filter(o -> o.product() == products).mapToDouble(f).sum();
    }

    /** Device idle between ops and after the last one (launch gaps, host work). */
    public double idleMs() {
      return totalMs - productsMs() - otherOpsMs();
    }
  }

  /**
   * One of the six grouped products: its label and its dense twin, the GEMM of the reference pair
   * with its FLOPs (0: (M, D) x (D, 2F), as fwd1, dW1 and dX1; 1: (M, F) x (F, D), as fwd2, dW2 and
   * dX2).
   */
  private record Product(String label, int twin) {}

  // the six grouped products of the layer in the order MoeMlp queues them
  private static final List<Product> S2S_PRODUCTS =
      List.of(
          new Product("fwd1 h = x W1^T", 0),
          new Product("fwd2 ye = a W2^T", 1),
          new Product("dX2 da = dy W2", 1),
          new Product("dX1 dx = dh W1", 0));
  // what the fused calls do besides their product
  private static final Map<String, String> S2S_FUSED =
      Map.of(
          "scatter2scatterSwiglu", ", a = SwiGLU(h)",
          "scatter2scatterSwigluBackward", ", gates' grad, dh = SwiGLU'(g da)",
          "scatter2scatterSwigluFactors", ", a = SwiGLU(h), h's factors",
          "scatter2scatterSwigluFactorsBackward", " (g dy grouped), dh = (da p, da q)");
  private static final List<Product> XTY_PRODUCTS =
      List.of(new Product("dW2 += dy^T a", 1), new Product("dW1 += dh^T x", 0));

  /**
   * Times every backend op of one forward+backward (routing included) with events on the device's
   * queue ({@link OpProfiler}), {@code repeats} times after a warm-up, each call on an idle device;
   * then as many calls back to back as the timed table's stretch, still stamped, and the dense pair
   * the same way; per op the medians. written: each forward+backward writes the weight gradients
   * (=, {@link Result#forwardBackwardWritten}) instead of adding to them.
   */
  public static Breakdown breakdown(Backend g, Shape s, int repeats, boolean written) {
    return breakdown(g, s, repeats, DType.BF16, written);
  }

  /** As above in another activation dtype (float32 on the CPU backend's tests). */
  static Breakdown breakdown(Backend g, Shape s, int repeats, DType dtype, boolean written) {
    OpProfiler p = OpProfiler.wrap(g);
    try (Layer layer = new Layer(p.backend(), s, new Random(1), dtype)) {
      Runnable call = written ? layer.forwardBackwardWritten : layer.forwardBackward;
      call.run();
      p.backend().synchronize();
      List<OpProfiler.Breakdown> runs = new ArrayList<>();
      for (int i = 0; i < repeats; i++) {
        p.begin();
        call.run();
        runs.add(p.end());
      }
      List<OpProfiler.Op> first = runs.get(0).sequence();
      int n = first.size();
      double[] total = runs.stream().mapToDouble(OpProfiler.Breakdown::totalMs).toArray();
      // as many calls as the timed table's stretch (at least MIN_TIMED_MS)
      int calls = callsFor(median(total), repeats);
      // the same calls queued back to back, still stamped around every op
      p.begin();
      for (int i = 0; i < calls; i++) call.run();
      List<OpProfiler.Op> busy = p.end().sequence();
      if (busy.size() != calls * n) {
        throw new IllegalStateException(
            "the layer queued " + busy.size() + " ops in " + calls + " calls, not " + n + " each");
      }
      double[] twins = denseTwins(p, s, dtype, calls);
      List<OpTime> ops = new ArrayList<>();
      int s2s = 0, xty = 0;
      for (int k = 0; k < n; k++) {
        String name = first.get(k).name();
        double[] ms = new double[repeats], idle = new double[repeats], b2b = new double[calls];
        for (int i = 0; i < repeats; i++) {
          OpProfiler.Op o = runs.get(i).sequence().get(k);
          ms[i] = o.ms();
          idle[i] = o.idleBeforeMs();
        }
        for (int c = 0; c < calls; c++) b2b[c] = busy.get(c * n + k).ms();
        String label = name;
        Product product = null;
        double twinCount = 1; // dense twins a product counts (2 for a dW beside its dX)
        if (name.endsWith("BesideDw") && s2s < S2S_PRODUCTS.size() && xty < XTY_PRODUCTS.size()) {
          // variant 61: a dW and its dX at once on two streams, counted as both products
          Product dw = XTY_PRODUCTS.get(xty++);
          product = S2S_PRODUCTS.get(s2s++);
          twinCount = 2;
          label =
              name
                  + " "
                  + (written ? dw.label().replace("+=", "=") : dw.label())
                  + " beside "
                  + product.label()
                  + (name.startsWith("swigluFactors")
                      ? S2S_FUSED.get("scatter2scatterSwigluFactorsBackward")
                      : "");
        } else if (name.startsWith("scatter2scatter") && s2s < S2S_PRODUCTS.size()) {
          // scatter2scatterSwiglu (fwd1) and scatter2scatterSwigluBackward (dX2) run a product
          // with SwiGLU (and the gates) in its epilogue: counted as that product
          product = S2S_PRODUCTS.get(s2s++);
          label = name + " " + product.label() + S2S_FUSED.getOrDefault(name, "");
        } else if (name.equals("groupXtY") && xty < XTY_PRODUCTS.size()) {
          product = XTY_PRODUCTS.get(xty++);
          label = name + " " + (written ? product.label().replace("+=", "=") : product.label());
        }
        double twin = product == null ? Double.NaN : twinCount * twins[product.twin()];
        ops.add(new OpTime(label, median(ms), median(b2b), median(idle), product != null, twin));
      }
      double backToBack, hostQueue;
      try (QueueClock clock = g.newQueueClock()) {
        clock.stamp();
        long h0 = System.nanoTime();
        for (int i = 0; i < calls; i++) call.run();
        hostQueue = (System.nanoTime() - h0) / 1e6 / calls;
        clock.stamp();
        backToBack = clock.read()[1] / calls;
      }
      return new Breakdown(s, List.copyOf(ops), median(total), backToBack, calls, hostQueue);
    } finally {
      p.close();
    }
  }

  /**
   * The breakdown as a markdown table with the products, other ops and idle time summed last; per
   * product its back-to-back time next to its dense twin's (the same FLOPs by cuBLAS, back to back
   * in the same run) and the ratio, so each product is read against dense at the clock the timed
   * table runs at (a call that starts on an idle device runs faster, more so the shorter it is).
   */
  public static String breakdownTable(Breakdown b, Timing denseForwardBackward) {
    StringBuilder t = new StringBuilder();
    t.append("| ")
        .append(b.shape())
        .append(
            ": op | ms | % of layer | idle before ms | ms back to back | dense twin ms back to back"
                + " | x twin |\n");
    t.append("|---|---|---|---|---|---|---|\n");
    for (OpTime o : b.ops()) {
      t.append(
          String.format(
              Locale.ROOT,
              "| %s | %.3f | %.1f | %.3f | %.3f | %s |%n",
              o.label(),
              o.ms(),
              100 * o.ms() / b.totalMs(),
              o.idleBeforeMs(),
              o.backToBackMs(),
              twin(o.backToBackMs(), o.twinMs())));
    }
    t.append(
        sumRow(
            "the six products",
            b.productsMs(),
            b.totalMs(),
            b.productsBackToBackMs(),
            twin(b.productsBackToBackMs(), b.twinsMs())));
    t.append(sumRow("other ops", b.otherOpsMs(), b.totalMs(), b.otherOpsBackToBackMs(), NO_TWIN));
    t.append(sumRow("device idle (gaps)", b.idleMs(), b.totalMs(), Double.NaN, NO_TWIN));
    t.append(sumRow("layer fwd+bwd (profiled)", b.totalMs(), b.totalMs(), Double.NaN, NO_TWIN));
    t.append(
        String.format(
            Locale.ROOT,
            "| layer fwd+bwd back to back (device clock, %d calls, no stamps between; the host"
                + " queued a call in %.3f ms) | %.3f | %.1f | | | | |%n",
            b.backToBackCalls(),
            b.hostQueueMs(),
            b.backToBackMs(),
            100 * b.backToBackMs() / b.totalMs()));
    if (denseForwardBackward != null) {
      t.append(
          String.format(
              Locale.ROOT,
              "| dense fwd+bwd (same run) | %.3f | products %.2fx, layer %.2fx dense | | | | |%n",
              denseForwardBackward.median(),
              b.productsMs() / denseForwardBackward.median(),
              b.totalMs() / denseForwardBackward.median()));
    }
    return t.toString();
  }

  private static final String NO_TWIN = " | ";

  /** The twin's two cells: its ms and the op's ratio to it, or two blanks for no twin. */
  private static String twin(double ms, double twinMs) {
    return Double.isNaN(twinMs)
        ? NO_TWIN
        : String.format(Locale.ROOT, "%.3f | %.2f", twinMs, ms / twinMs);
  }

  private static String sumRow(String what, double ms, double total, double b2b, String twin) {
    return String.format(
        Locale.ROOT,
        "| **%s** | %.3f | %.1f | | %s | %s |%n",
        what,
        ms,
        100 * ms / total,
        Double.isNaN(b2b) ? "" : String.format(Locale.ROOT, "%.3f", b2b),
        twin);
  }

  private static double median(double[] v) {
    double[] c = v.clone();
    Arrays.sort(c);
    return c[c.length / 2];
  }

  /** The layer's weights, inputs and two timed closures on one backend. */
  private static final class Layer implements AutoCloseable {
    final MoeMlp mlp;
    final Tensor x, logits, dy, probs, gates, idx;
    final Runnable forward, forwardBackward, forwardBackwardWritten;

    Layer(Backend g, Shape s, Random rnd, DType dtype) {
      int t = s.tokens(), d = s.hidden(), f = s.ffn(), e = s.experts(), k = s.topk();
      mlp = MoeMlp.allocate(g, dtype, d, f, e);
      x = rand(g, rnd, dtype, 1, t, d);
      logits = rand(g, rnd, dtype, 1, t, e);
      dy = rand(g, rnd, dtype, 1, t, d);
      probs = g.empty(DType.F32, t, e);
      gates = g.empty(DType.F32, t, k);
      idx = g.empty(DType.I32, t, k);
      fill(g, rnd, 0.02, mlp.gateUp());
      fill(g, rnd, 0.02, mlp.down());
      forward =
          () -> {
            g.routerTopK(logits, k, probs, gates, idx);
            mlp.forward(x, gates, idx).close();
          };
      forwardBackward =
          () -> {
            g.routerTopK(logits, k, probs, gates, idx);
            try (MoeMlp.Forward fw = mlp.forward(x, gates, idx);
                MoeMlp.Grads gr = mlp.backward(fw, dy)) {
              // the gradients accumulate into the MLP's F32 buffers; dX and dGates are freed here
            }
          };
      forwardBackwardWritten =
          () -> {
            mlp.overwriteGradsOnce(); // as after a step's zeroGrad: the backward writes dW
            forwardBackward.run();
          };
    }

    @Override
    public void close() {
      mlp.close();
      for (Tensor c : new Tensor[] {x, logits, dy, probs, gates, idx}) {
        c.close();
      }
    }
  }

  /**
   * The dense reference's operands: (M, D) x (D, 2F) -> (M, 2F) and (M, F) x (F, D) -> (M, D), the
   * two cuBLAS GEMMs of the layer's forward FLOPs.
   */
  private record DensePair(Tensor a1, Tensor b1, Tensor c1, Tensor a2, Tensor b2, Tensor c2)
      implements AutoCloseable {
    static DensePair of(Backend g, Random rnd, DType dtype, long m, int d, int f) {
      return new DensePair(
          rand(g, rnd, dtype, 1, m, d),
          rand(g, rnd, dtype, 0.02, d, 2L * f),
          g.empty(dtype, m, 2L * f),
          rand(g, rnd, dtype, 1, m, f),
          rand(g, rnd, dtype, 0.02, f, d),
          g.empty(dtype, m, d));
    }

    void run(Backend g) {
      g.matmul(a1, false, b1, false, c1, 1, 0);
      g.matmul(a2, false, b2, false, c2, 1, 0);
    }

    @Override
    public void close() {
      for (Tensor t : new Tensor[] {a1, b1, c1, a2, b2, c2}) {
        t.close();
      }
    }
  }

  private static Timing[] dense(Backend g, Random rnd, long m, int d, int f, int reps, int iters) {
    try (DensePair pair = DensePair.of(g, rnd, DType.BF16, m, d, f)) {
      Timing fw = time(g, () -> pair.run(g), reps, iters);
      Timing fb =
          time(
              g,
              () -> {
                pair.run(g);
                pair.run(g);
                pair.run(g);
              },
              reps,
              iters);
      return new Timing[] {fw, fb};
    }
  }

  /**
   * The dense pair queued back to back three times a call for {@code calls} calls, as the dense
   * fwd+bwd runs it, stamped around each GEMM: the median ms of the first and of the second.
   */
  private static double[] denseTwins(OpProfiler p, Shape s, DType dtype, int calls) {
    Backend g = p.backend();
    long m = (long) s.tokens() * s.topk();
    try (DensePair pair = DensePair.of(g, new Random(2), dtype, m, s.hidden(), s.ffn())) {
      pair.run(g);
      g.synchronize();
      p.begin();
      for (int i = 0; i < 3 * calls; i++) pair.run(g);
      List<OpProfiler.Op> ops = p.end().sequence();
      double[] first = new double[3 * calls], second = new double[3 * calls];
      for (int i = 0; i < 3 * calls; i++) {
        first[i] = ops.get(2 * i).ms();
        second[i] = ops.get(2 * i + 1).ms();
      }
      return new double[] {median(first), median(second)};
    }
  }

  /** Random bf16 values (never zeros: those run faster than real data). */
  private static Tensor rand(Backend g, Random rnd, double scale, long... shape) {
    return rand(g, rnd, DType.BF16, scale, shape);
  }

  private static Tensor rand(Backend g, Random rnd, DType dtype, double scale, long... shape) {
    Tensor t = g.empty(dtype, shape);
    fill(g, rnd, scale, t);
    return t;
  }

  /** Fills t with Gaussian values; large tensors repeat one random chunk of 16M values. */
  private static void fill(Backend g, Random rnd, double scale, Tensor t) {
    long n = t.numel();
    int chunk = (int) Math.min(n, 1 << 24);
    float[] v = new float[chunk];
    for (int i = 0; i < chunk; i++) v[i] = (float) (rnd.nextGaussian() * scale);
    try (Tensor c = g.upload(HostTensor.ofFloats(v, chunk), t.dtype())) {
      for (long off = 0; off < n; off += chunk) {
        long len = Math.min(chunk, n - off);
        g.copy(c.view(0, len), t.view(off, len));
      }
    }
  }

  /**
   * The shortest stretch one timing covers: a small layer (4 ms a call) timed over 5 calls measured
   * 20 ms stretches, where the first launch after a sync and the device's clock ramp are a part of
   * the result (the 1.5B shape's dense reference moved 2.95-3.28 ms between two runs of one
   * process, H200 2026-12-03, and ran 10-15% slower over 100 ms: the H200's clock under its power
   * limit follows the load, and training runs for hours); both sides take as many calls as reach
   * this.
   */
  static final double MIN_TIMED_MS = 300;

  /** At least {@code atLeast} calls, and as many as cover MIN_TIMED_MS (at most 1000). */
  static int callsFor(double msPerCall, int atLeast) {
    return (int)
        Math.min(1000, Math.max(atLeast, Math.ceil(MIN_TIMED_MS / Math.max(msPerCall, 1e-3))));
  }

  private static Timing time(Backend g, Runnable r, int repeats, int iters) {
    r.run();
    g.synchronize();
    long c0 = System.nanoTime();
    r.run();
    g.synchronize();
    int n = callsFor((System.nanoTime() - c0) / 1e6, iters);
    double[] ms = new double[repeats];
    for (int i = 0; i < repeats; i++) {
      long t0 = System.nanoTime();
      for (int j = 0; j < n; j++) r.run();
      g.synchronize();
      ms[i] = (System.nanoTime() - t0) / 1e6 / n;
    }
    Arrays.sort(ms);
    return new Timing(ms[repeats / 2], ms[0], ms[repeats - 1]);
  }

  /** The table's header; {@code withReference} adds the PyTorch reference's columns. */
  public static String header(boolean withReference, String referenceName) {
    String h =
        "| T, D, F, E, k | moe fwd ms | dense fwd ms | ratio | moe fwd+bwd ms (dW +=) | dense"
            + " fwd+bwd ms | ratio | moe fwd+bwd TFLOP/s | extra peak GiB | moe fwd+bwd ms (dW"
            + " =, a step's first micro-batch) | ratio |";
    String sep = "|---|---|---|---|---|---|---|---|---|---|---|";
    if (withReference) {
      h += " " + referenceName + " fwd+bwd ms | moe / " + referenceName + " |";
      sep += "---|---|";
    }
    return h + "\n" + sep;
  }

  /** One row; {@code referenceMs} is the reference's fwd+bwd median or NaN when absent. */
  public static String row(Result r, boolean withReference, double referenceMs) {
    String s =
        String.format(
            Locale.ROOT,
            "| %s | %s | %s | %.2f | %s | %s | %.2f | %.0f | %.2f | %s | %.2f |",
            r.shape(),
            r.forward(),
            r.denseForward(),
            r.forward().median() / r.denseForward().median(),
            r.forwardBackward(),
            r.denseForwardBackward(),
            r.forwardBackward().median() / r.denseForwardBackward().median(),
            r.forwardBackwardTflops(),
            r.extraPeakBytes() / (double) (1L << 30),
            r.forwardBackwardWritten(),
            r.forwardBackwardWritten().median() / r.denseForwardBackward().median());
    if (withReference) {
      s +=
          Double.isNaN(referenceMs)
              ? " n/a | n/a |"
              : String.format(
                  Locale.ROOT,
                  " %.2f | %.2f |",
                  referenceMs,
                  r.forwardBackward().median() / referenceMs);
    }
    return s;
  }
}
