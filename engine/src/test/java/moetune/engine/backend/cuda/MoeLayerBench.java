package moetune.engine.backend.cuda;

import java.util.Arrays;
import java.util.Random;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * Times the ScatterMoE SwiGLU expert layer (bf16, float32 accumulation) forward and
 * forward+backward against the dense reference of PERF.md measured in the same run: two cuBLAS
 * GEMMs of the same FLOPs (6 T k D F forward; the backward is twice that). Prints a table of
 * medians (ms) with their spread. Run on the GPU host: {@code java -cp ...
 * moetune.engine.backend.cuda.MoeLayerBench [T D F E K ...]}.
 */
public final class MoeLayerBench {
  private static final int REPEATS = 7, ITERS = 5;

  public static void main(String[] args) {
    int[][] shapes =
        args.length >= 5
            ? parse(args)
            : new int[][] {
              {16384, 4096, 14336, 8, 2}, {16384, 4096, 1792, 64, 16}, {16384, 1024, 3584, 8, 2}
            };
    try (CudaBackend g = new CudaBackend(0, false)) {
      System.out.println("MoE layer bench on " + g.describe());
      System.out.println(
          "| T, D, F, E, k | moe fwd ms | dense fwd ms | ratio | moe fwd+bwd ms | dense fwd+bwd ms | ratio | moe fwd+bwd TFLOP/s |");
      System.out.println("|---|---|---|---|---|---|---|---|");
      for (int[] s : shapes) {
        run(g, s[0], s[1], s[2], s[3], s[4]);
      }
    }
  }

  private static int[][] parse(String[] a) {
    int[][] r = new int[a.length / 5][];
    for (int i = 0; i < r.length; i++) {
      r[i] = new int[5];
      for (int j = 0; j < 5; j++) r[i][j] = Integer.parseInt(a[5 * i + j]);
    }
    return r;
  }

  /**
   * Random bf16 values (never zeros: they run faster than real data); large tensors repeat one
   * random chunk.
   */
  private static Tensor rand(CudaBackend g, Random rnd, double scale, long... shape) {
    long n = HostTensor.numel(shape);
    int chunk = (int) Math.min(n, 1 << 24);
    float[] v = new float[chunk];
    for (int i = 0; i < chunk; i++) v[i] = (float) (rnd.nextGaussian() * scale);
    Tensor t = g.empty(DType.BF16, shape);
    try (Tensor c = g.upload(HostTensor.ofFloats(v, chunk), DType.BF16)) {
      for (long off = 0; off < n; off += chunk) {
        long len = Math.min(chunk, n - off);
        g.copy(c.view(0, len), t.view(off, len));
      }
    }
    return t;
  }

  private static void run(CudaBackend g, int t, int d, int f, int e, int k) {
    Random rnd = new Random(1);
    long m = (long) t * k;
    DType bf = DType.BF16;
    try (Tensor x = rand(g, rnd, 1, t, d);
        Tensor w1 = rand(g, rnd, 0.02, e, 2L * f, d);
        Tensor w2 = rand(g, rnd, 0.02, e, d, f);
        Tensor logits = rand(g, rnd, 1, t, e);
        Tensor probs = g.empty(DType.F32, t, e);
        Tensor gates = g.empty(DType.F32, t, k);
        Tensor idx = g.empty(DType.I32, t, k);
        Tensor se = g.empty(DType.I32, m);
        Tensor ss = g.empty(DType.I32, m);
        Tensor off = g.empty(DType.I32, e);
        Tensor h = g.empty(bf, m, 2L * f);
        Tensor a = g.empty(bf, m, f);
        Tensor ye = g.empty(bf, m, d);
        Tensor y = g.empty(bf, t, d);
        Tensor dy = rand(g, rnd, 1, t, d);
        Tensor dyg = g.empty(bf, m, d);
        Tensor da = g.empty(bf, m, f);
        Tensor dh = g.empty(bf, m, 2L * f);
        Tensor xg = g.empty(bf, m, d);
        Tensor dxe = g.empty(bf, m, d);
        Tensor dx = g.empty(bf, t, d);
        Tensor dw1 = g.zeros(DType.F32, e, 2L * f, d);
        Tensor dw2 = g.zeros(DType.F32, e, d, f);
        Tensor da1 = rand(g, rnd, 1, m, d);
        Tensor db1 = rand(g, rnd, 0.02, d, 2L * f);
        Tensor dc1 = g.empty(bf, m, 2L * f);
        Tensor da2 = rand(g, rnd, 1, m, f);
        Tensor db2 = rand(g, rnd, 0.02, f, d);
        Tensor dc2 = g.empty(bf, m, d)) {
      Runnable forward =
          () -> {
            g.routerTopK(logits, k, probs, gates, idx);
            g.flattenSortCount(idx, e, se, ss, off);
            g.scatter2scatter(x, w1, null, true, k, se, ss, false, true, h); // (M, 2F) grouped
            g.swigluForward(h, a);
            g.scatter2scatter(a, w2, null, true, 1, se, ss, true, false, ye); // (M, D) scattered
            g.combine(ye, gates, k, y);
          };
      Runnable backward =
          () -> {
            g.group(dy, ss, k, gates, dyg); // (M, D) grouped, gate-scaled
            g.groupXtY(a, dyg, off, dw2, null);
            g.scatter2scatter(dyg, w2, null, false, 1, se, ss, true, true, da);
            g.swigluBackward(da, h, dh);
            g.group(x, ss, k, null, xg);
            g.groupXtY(xg, dh, off, dw1, null);
            g.scatter2scatter(dh, w1, null, false, 1, se, ss, true, false, dxe);
            g.combine(dxe, null, k, dx);
          };
      Runnable denseFwd =
          () -> {
            g.matmul(da1, false, db1, false, dc1, 1, 0);
            g.matmul(da2, false, db2, false, dc2, 1, 0);
          };
      double[] mf = time(g, forward);
      double[] mfb =
          time(
              g,
              () -> {
                forward.run();
                backward.run();
              });
      double[] df = time(g, denseFwd);
      double[] dfb =
          time(
              g,
              () -> {
                denseFwd.run();
                denseFwd.run();
                denseFwd.run();
              });
      double flops = 3 * 6.0 * t * k * (double) d * f;
      System.out.printf(
          "| %d, %d, %d, %d, %d | %s | %s | %.2f | %s | %s | %.2f | %.0f |%n",
          t,
          d,
          f,
          e,
          k,
          fmt(mf),
          fmt(df),
          mf[0] / df[0],
          fmt(mfb),
          fmt(dfb),
          mfb[0] / dfb[0],
          flops / (mfb[0] * 1e-3) / 1e12);
    }
  }

  /** Median and (min, max) of REPEATS timings of ITERS calls, ms per call, after a warm-up. */
  private static double[] time(CudaBackend g, Runnable r) {
    r.run();
    g.synchronize();
    double[] ms = new double[REPEATS];
    for (int i = 0; i < REPEATS; i++) {
      long t0 = System.nanoTime();
      for (int j = 0; j < ITERS; j++) r.run();
      g.synchronize();
      ms[i] = (System.nanoTime() - t0) / 1e6 / ITERS;
    }
    Arrays.sort(ms);
    return new double[] {ms[REPEATS / 2], ms[0], ms[REPEATS - 1]};
  }

  private static String fmt(double[] m) {
    return String.format("%.2f (%.2f-%.2f)", m[0], m[1], m[2]);
  }
}
