package moetune.engine.bench;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import moetune.engine.backend.AdamWCoefficients;
import moetune.engine.backend.Backend;
import moetune.engine.backend.Backends;
import moetune.engine.backend.QueueClock;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * {@code moetune bench kernels}: the memory-bound ops of a training step in GB/s next to a
 * device-to-device copy measured in the same run (PERF.md's target: at least 80% of the copy).
 * Bytes are the op's compulsory traffic (each input read once, each output written once; a
 * read-modify-write counts both), at the 1.5B model's widths (D 1024, F 3584, V 32000, 16 heads of
 * 64) with more tokens than the step so every operand is far larger than the 50 MB L2. Each op runs
 * twice untimed, then {@code reps} times between queue stamps; the median is reported.
 */
public final class KernelBandwidthBench {
  private KernelBandwidthBench() {}

  /** One row: op, bytes per call, median and spread in ms, GB/s, share of the copy's GB/s. */
  public record Row(
      String op, String shape, long bytes, double msMedian, double msMin, double msMax) {
    public double gbPerS() {
      return bytes / (msMedian / 1000) / 1e9;
    }
  }

  private interface Op {
    void run();
  }

  /**
   * A row timed with the op's previous kernel (CudaBackend.BEFORE_PROPERTY; other backends have one
   * kernel and time it again), so the table shows before and after from one run.
   */
  private static Row previous(String op, java.util.function.Supplier<Row> timed) {
    return moetune.engine.backend.cuda.CudaBackend.withPreviousKernels(op, timed);
  }

  /**
   * Times every op on the backend and prints the table; shrink divides every size (1 for the real
   * table; tests on the CPU use a large one).
   */
  public static List<Row> run(Backend be, int reps, int shrink, PrintStream out) {
    List<Row> rows = new ArrayList<>();
    int d = 1024, heads = 16, hd = 64, f = 3584, v = 32000;
    int n = 65536 / shrink; // tokens for the per-token ops (8 x the 4 x 2048 step)
    long bigCopy = (256L << 20) / shrink; // copy elements: 512 MiB read + 512 MiB written in bf16
    // 16-bit activations where the backend has them (the CPU oracle is float32 only)
    DType lo = be.supports(DType.BF16) ? DType.BF16 : DType.F32;
    long lb = lo.bytes();
    String ln = lo.name().toLowerCase(java.util.Locale.ROOT);
    try (QueueClock clock = be.newQueueClock()) {
      try (Tensor a = rand(be, lo, bigCopy);
          Tensor b = be.empty(lo, bigCopy)) {
        rows.add(
            time(
                clock,
                reps,
                "copy (device to device)",
                ln + " " + bigCopy,
                2 * lb * bigCopy,
                () -> be.copy(a, b)));
      }
      try (Tensor a = rand(be, lo, bigCopy);
          Tensor b = be.empty(DType.F32, bigCopy)) {
        rows.add(
            time(
                clock,
                reps,
                "convert " + ln + " -> f32",
                "" + bigCopy,
                (lb + 4) * bigCopy,
                () -> be.copy(a, b)));
      }
      long e = (long) n * d;
      // Each per-token op twice: on views one element into their buffers (not 16-byte aligned:
      // the scalar kernels, the "before" rows) and on aligned views (the 16-byte vector paths).
      for (int shift : new int[] {1, 0}) {
        String kind = shift == 1 ? ", scalar kernel (misaligned view)" : "";
        List<Tensor> owned = new ArrayList<>();
        try {
          Tensor res = at(owned, shift, rand(be, DType.F32, n * (long) d + 1), n, d);
          Tensor delta = at(owned, shift, rand(be, lo, n * (long) d + 1), n, d);
          Tensor w = at(owned, shift, rand(be, DType.F32, d + 1L), d);
          Tensor o = at(owned, shift, be.empty(lo, n * (long) d + 1), n, d);
          Tensor rstd = at(owned, 0, be.empty(DType.F32, n), n);
          rows.add(
              time(
                  clock,
                  reps,
                  "rmsnormForward + residual add" + kind,
                  "N " + n + " D " + d + " (f32 residual, " + ln + " delta/out)",
                  e * (4 + lb + 4 + lb) + n * 4L,
                  () -> be.rmsnormForward(res, delta, w, 1e-5f, o, rstd)));
          Tensor dOut = at(owned, shift, rand(be, lo, n * (long) d + 1), n, d);
          Tensor dx = at(owned, shift, rand(be, DType.F32, n * (long) d + 1), n, d);
          Tensor dw = at(owned, 0, be.zeros(DType.F32, d), d);
          be.rmsnormForward(res, null, w, 1e-5f, o, rstd);
          rows.add(
              time(
                  clock,
                  reps,
                  "rmsnormBackward" + kind,
                  "N " + n + " D " + d + " (" + ln + " dOut, f32 x and dx +=)",
                  e * (lb + 4 + 4 + 4) + n * 4L,
                  () -> be.rmsnormBackward(dOut, res, w, rstd, dx, dw)));
        } finally {
          closeAll(owned);
        }
        try {
          long qe = (long) n * heads * hd;
          Tensor q = at(owned, shift, rand(be, lo, qe + 1), n, heads, hd);
          Tensor pos = at(owned, 0, positions(be, n, 2048), n);
          if (shift == 0) {
            rows.add(
                previous(
                    "rope",
                    () ->
                        time(
                            clock,
                            reps,
                            "ropeForward (in place), previous vector kernel",
                            "N " + n + " x 16 x 64 " + ln,
                            qe * 2 * lb + n * 4L,
                            () -> be.ropeForward(q, pos, 1e6f))));
          }
          rows.add(
              time(
                  clock,
                  reps,
                  "ropeForward (in place)" + kind,
                  "N " + n + " x 16 x 64 " + ln,
                  qe * 2 * lb + n * 4L,
                  () -> be.ropeForward(q, pos, 1e6f)));
        } finally {
          closeAll(owned);
        }
        try {
          Tensor table = at(owned, shift, rand(be, lo, (long) v * d + 1), v, d);
          Tensor ids = at(owned, 0, ids(be, n, v), n);
          Tensor o = at(owned, shift, be.empty(DType.F32, n * (long) d + 1), n, d);
          rows.add(
              time(
                  clock,
                  reps,
                  "embeddingForward" + kind,
                  "N " + n + " D " + d + " (" + ln + " table, f32 out)",
                  e * (lb + 4) + n * 4L,
                  () -> be.embeddingForward(ids, table, o)));
        } finally {
          closeAll(owned);
        }
        int nl = Math.max(1, 8192 / shrink); // the step's tokens: the logits are the largest tensor
        try {
          Tensor logits = at(owned, shift, rand(be, lo, (long) nl * v + 1), nl, v);
          Tensor targets = at(owned, 0, ids(be, nl, v), nl);
          Tensor losses = at(owned, 0, be.empty(DType.F32, nl), nl);
          if (shift == 0) {
            rows.add(
                previous(
                    "crossEntropy",
                    () ->
                        time(
                            clock,
                            reps,
                            "crossEntropy + dLogits in place, previous vector kernel",
                            "N " + nl + " V " + v + " " + ln,
                            (long) nl * v * 2 * lb + nl * 8L,
                            () -> be.crossEntropy(logits, targets, losses, logits, 1f / nl))));
          }
          rows.add(
              time(
                  clock,
                  reps,
                  "crossEntropy + dLogits in place" + kind,
                  "N " + nl + " V " + v + " " + ln,
                  (long) nl * v * 2 * lb + nl * 8L,
                  () -> be.crossEntropy(logits, targets, losses, logits, 1f / nl)));
        } finally {
          closeAll(owned);
        }
        int m = 16384 * 2 / shrink; // routed rows M = N * K for 16,384 tokens
        try {
          Tensor h = at(owned, shift, rand(be, lo, (long) m * 2 * f + 1), m, 2L * f);
          Tensor act = at(owned, shift, be.empty(lo, (long) m * f + 1), m, f);
          rows.add(
              time(
                  clock,
                  reps,
                  "swigluForward" + kind,
                  "M " + m + " F " + f + " " + ln,
                  (long) m * f * 3 * lb,
                  () -> be.swigluForward(h, act)));
          Tensor dH = at(owned, shift, be.empty(lo, (long) m * 2 * f + 1), m, 2L * f);
          rows.add(
              time(
                  clock,
                  reps,
                  "swigluBackward" + kind,
                  "M " + m + " F " + f + " " + ln,
                  (long) m * f * 5 * lb,
                  () -> be.swigluBackward(act, h, dH)));
        } finally {
          closeAll(owned);
        }
      }
      long p = (256L << 20) / shrink; // parameters (the 1.5B model has 1.5G; 256M is quicker)
      // Buffers one element longer: the view at 0 is 16-byte aligned and takes the vector
      // kernels, the view at 1 is not and takes the scalar ones (the "before" rows).
      for (int shift : new int[] {1, 0}) {
        String kind = shift == 1 ? ", scalar kernel (misaligned view)" : "";
        Tensor workAll = lo == DType.F32 ? null : be.empty(lo, p + 1);
        try (Tensor paramAll = rand(be, DType.F32, p + 1);
            Tensor gradAll = rand(be, DType.F32, p + 1);
            Tensor moAll = be.zeros(DType.F32, p + 1);
            Tensor voAll = be.zeros(DType.F32, p + 1);
            Tensor sumSq = be.zeros(DType.F32, 1)) {
          Tensor param = paramAll.view(shift, p), grad = gradAll.view(shift, p);
          Tensor mo = moAll.view(shift, p), vo = voAll.view(shift, p);
          Tensor work = workAll == null ? null : workAll.view(shift, p);
          int[] t = {0};
          rows.add(
              time(
                  clock,
                  reps,
                  "adamwStep" + (work == null ? "" : " (+ " + ln + " working copy)") + kind,
                  "P " + p,
                  p * (16 + 12 + (work == null ? 0 : lb)),
                  () ->
                      be.adamwStep(
                          param,
                          grad,
                          mo,
                          vo,
                          AdamWCoefficients.of(1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, ++t[0]),
                          work)));
          rows.add(
              time(
                  clock,
                  reps,
                  "sumSquares (grad norm)" + kind,
                  "P " + p,
                  p * 4,
                  () -> be.sumSquares(grad, sumSq)));
          rows.add(
              time(
                  clock,
                  reps,
                  "clipByNorm" + kind,
                  "P " + p,
                  p * 8,
                  () -> be.clipByNorm(grad, sumSq, 1f)));
        } finally {
          if (workAll != null) {
            workAll.close();
          }
        }
      }
    }
    print(out, be, rows);
    return rows;
  }

  /** base's elements from shift on as shape; base joins owned (closed by closeAll). */
  private static Tensor at(List<Tensor> owned, int shift, Tensor base, long... shape) {
    owned.add(base);
    return base.view(shift, shape);
  }

  private static void closeAll(List<Tensor> owned) {
    for (Tensor t : owned) {
      t.close();
    }
    owned.clear();
  }

  private static Row time(QueueClock clock, int reps, String op, String shape, long bytes, Op f) {
    f.run();
    f.run();
    clock.reset();
    clock.stamp();
    for (int i = 0; i < reps; i++) {
      f.run();
      clock.stamp();
    }
    double[] t = clock.read();
    double[] ms = new double[reps];
    for (int i = 0; i < reps; i++) {
      ms[i] = t[i + 1] - t[i];
    }
    Arrays.sort(ms);
    double med = reps % 2 == 1 ? ms[reps / 2] : (ms[reps / 2 - 1] + ms[reps / 2]) / 2;
    return new Row(op, shape, bytes, med, ms[0], ms[reps - 1]);
  }

  static void print(PrintStream out, Backend be, List<Row> rows) {
    double copy = rows.get(0).gbPerS();
    out.printf(
        "%nbench kernels: memory-bound ops on %s, GB/s of compulsory traffic, medians%n%n",
        be.describe());
    out.println("| op | shape | MB per call | ms (median, min-max) | GB/s | of copy |");
    out.println("|---|---|---|---|---|---|");
    for (Row r : rows) {
      out.printf(
          "| %s | %s | %,.0f | %.3f (%.3f-%.3f) | %,.0f | %.0f%% |%n",
          r.op(),
          r.shape(),
          r.bytes() / 1e6,
          r.msMedian(),
          r.msMin(),
          r.msMax(),
          r.gbPerS(),
          100 * r.gbPerS() / copy);
    }
  }

  private static Tensor rand(Backend be, DType dt, long... shape) {
    long n = HostTensor.numel(shape);
    // one random block tiled: generating a billion host normals would take longer than the bench
    int block = (int) Math.min(n, 1 << 20);
    float[] v = new float[block];
    SplittableRandom r = new SplittableRandom(n);
    for (int i = 0; i < block; i++) {
      v[i] = (float) r.nextGaussian();
    }
    Tensor t = be.empty(dt, shape);
    Tensor flat = t.reshape(n);
    try (Tensor src = be.upload(HostTensor.ofFloats(v, block), dt)) {
      for (long at = 0; at < n; at += block) {
        long len = Math.min(block, n - at);
        be.copy(src.view(0, len), flat.view(at, len));
      }
    }
    return t;
  }

  private static Tensor ids(Backend be, int n, int vocab) {
    int[] v = new int[n];
    SplittableRandom r = new SplittableRandom(n);
    for (int i = 0; i < n; i++) {
      v[i] = r.nextInt(vocab);
    }
    return be.upload(HostTensor.ofInts(v, n));
  }

  private static Tensor positions(Backend be, int n, int seqLen) {
    int[] v = new int[n];
    for (int i = 0; i < n; i++) {
      v[i] = i % seqLen;
    }
    return be.upload(HostTensor.ofInts(v, n));
  }

  /** For a GPU host without the app: {@code [--device cuda] [--reps 20]}. */
  public static void main(String[] args) {
    String device = "cuda";
    int reps = 20;
    for (int i = 0; i + 1 < args.length; i += 2) {
      switch (args[i]) {
        case "--device" -> device = args[i + 1];
        case "--reps" -> reps = Integer.parseInt(args[i + 1]);
        default -> throw new IllegalArgumentException("unknown option " + args[i]);
      }
    }
    try (Backend be = Backends.open(device, System.out::println)) {
      run(be, reps, 1, System.out);
    }
  }
}
