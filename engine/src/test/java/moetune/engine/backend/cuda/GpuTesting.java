package moetune.engine.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import moetune.engine.backend.AttnSpec;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Floats;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;
import moetune.engine.testing.TestSeeds;
import org.junit.jupiter.api.Assumptions;

/**
 * The GPU op tests' harness: one CudaBackend and one CpuBackend (the oracle) for the whole run,
 * paired tensors holding the same values on both (on the GPU in the dtype under test; inputs are
 * rounded to that dtype first so both backends compute from identical numbers), NaN-poisoned
 * outputs, and a scale-free comparison.
 *
 * <p>Tolerances (normwise relative error ‖gpu − cpu‖ / ‖cpu‖): float32 1e-5: both sides compute in
 * float32 from the same inputs and differ only in summation order and in the libm of exp/log (a few
 * ulp, 6e-8 each), which over sums of up to a few thousand terms stays near 1e-6. bf16 1e-2: every
 * bf16 output is rounded once (relative error up to 2^-9 = 2e-3) and bf16 intermediates that the op
 * stores (a residual updated in place, dH from bf16 h) add a few more such roundings; 1e-2 is the
 * bound that allows about five while still catching a wrong index, a missing term or a transposed
 * weight (those give errors of order 1).
 */
final class GpuTesting {
  /** A new seed each run unless -Dmoetune.seed=N replays one; printed by TestSeeds. */
  static final long SEED = TestSeeds.seed("GPU tests");

  private static CudaBackend gpu;
  private static CpuBackend cpu;
  static final Random RND = new Random(SEED);

  private GpuTesting() {}

  /** The shared CUDA backend, or a visible skip (Assumptions) where none can be opened. */
  static synchronized CudaBackend gpu() {
    String why = CudaProbe.unavailableReason(0);
    Assumptions.assumeTrue(why == null, () -> "GPU test skipped: " + why);
    if (gpu == null) {
      gpu = new CudaBackend(0, false);
      System.out.println("GPU tests on " + gpu.describe() + ", seed " + SEED);
    }
    return gpu;
  }

  static synchronized CpuBackend cpu() {
    if (cpu == null) {
      cpu = new CpuBackend();
    }
    return cpu;
  }

  static double tol(DType dt) {
    return dt == DType.F32 ? 1e-5 : 1e-2;
  }

  /** The same values on the CPU (float32) and on the GPU (dtype g). */
  record Pair(Tensor c, Tensor g) implements AutoCloseable {
    @Override
    public void close() {
      c.close();
      g.close();
    }
  }

  static float[] randn(int n, double scale) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) v[i] = (float) (RND.nextGaussian() * scale);
    return v;
  }

  static Pair floats(DType g, float[] v, long... shape) {
    float[] r = v.clone();
    if (g == DType.BF16) {
      for (int i = 0; i < r.length; i++) r[i] = Floats.roundToBf16(r[i]);
    }
    return new Pair(
        cpu().upload(HostTensor.ofFloats(r, shape)),
        gpu().upload(HostTensor.ofFloats(r, shape), g));
  }

  static Pair randn(DType g, double scale, long... shape) {
    return floats(g, randn(Math.toIntExact(HostTensor.numel(shape)), scale), shape);
  }

  static Pair ints(int[] v, long... shape) {
    HostTensor h = HostTensor.ofInts(v, shape);
    return new Pair(cpu().upload(h), gpu().upload(h));
  }

  /** An output to be overwritten: NaN on the GPU so unwritten elements show, NaN on the CPU too. */
  static Pair poisoned(DType g, long... shape) {
    Tensor c = cpu().empty(DType.F32, shape);
    cpu().fill(c, Float.NaN);
    Tensor t = gpu().empty(g, shape);
    gpu().fill(t, Float.NaN);
    return new Pair(c, t);
  }

  static Pair poisonedInts(long... shape) {
    Tensor c = cpu().empty(DType.I32, shape);
    cpu().fill(c, -7);
    Tensor t = gpu().empty(DType.I32, shape);
    gpu().fill(t, -7);
    return new Pair(c, t);
  }

  /**
   * Fails unless the GPU tensor matches the CPU's within tol (normwise), NaN only where the CPU has
   * NaN.
   */
  /**
   * attentionForward then attentionBackward on both backends, each backward reading its own
   * backend's forward outputs (out, lse), every output NaN-poisoned first and checked against the
   * CPU at {@link #tol}: out, lse, dq, dk, dv. q/out (B*Tq, H, hd), k/v (B*Tk, Hkv, hd); docs I32
   * (B*Tk) on both backends, or null.
   */
  static void attentionMatchesCpu(
      DType dt, int b, int tq, int tk, int h, int hkv, int hd, int window, Pair docs, String what) {
    AttnSpec sc = new AttnSpec(b, tq, tk, docs == null ? null : docs.c(), window);
    AttnSpec sg = new AttnSpec(b, tq, tk, docs == null ? null : docs.g(), window);
    long nq = (long) b * tq, nk = (long) b * tk;
    try (Pair q = randn(dt, 1, nq, h, hd);
        Pair k = randn(dt, 1, nk, hkv, hd);
        Pair v = randn(dt, 1, nk, hkv, hd);
        Pair out = poisoned(dt, nq, h, hd);
        Pair lse = poisoned(DType.F32, nq, h)) {
      cpu().attentionForward(q.c(), k.c(), v.c(), sc, out.c(), lse.c());
      gpu().attentionForward(q.g(), k.g(), v.g(), sg, out.g(), lse.g());
      check("attentionForward out " + what, out, tol(dt));
      check("attentionForward lse " + what, lse, tol(dt));
      sync(out);
      sync(lse);
      try (Pair dOut = randn(dt, 1, nq, h, hd);
          Pair dq = poisoned(dt, nq, h, hd);
          Pair dk = poisoned(dt, nk, hkv, hd);
          Pair dv = poisoned(dt, nk, hkv, hd)) {
        cpu()
            .attentionBackward(
                dOut.c(), q.c(), k.c(), v.c(), out.c(), lse.c(), sc, dq.c(), dk.c(), dv.c());
        gpu()
            .attentionBackward(
                dOut.g(), q.g(), k.g(), v.g(), out.g(), lse.g(), sg, dq.g(), dk.g(), dv.g());
        check("attentionBackward dq " + what, dq, tol(dt));
        check("attentionBackward dk " + what, dk, tol(dt));
        check("attentionBackward dv " + what, dv, tol(dt));
      }
    }
  }

  static void check(String what, Pair p, double tol) {
    float[] e = cpu().download(p.c()).toFloatArray();
    float[] a = gpu().download(p.g()).toFloatArray();
    compare(what, e, a, tol);
  }

  static void compare(String what, float[] e, float[] a, double tol) {
    if (e.length != a.length) {
      fail(what + ": " + a.length + " elements, expected " + e.length);
    }
    double d2 = 0, r2 = 0;
    List<String> bad = new ArrayList<>();
    int nanBad = 0;
    for (int i = 0; i < e.length; i++) {
      boolean en = Float.isNaN(e[i]), an = Float.isNaN(a[i]);
      if (en != an) {
        if (nanBad++ < 5) bad.add(String.format("[%d] gpu %.7g cpu %.7g", i, a[i], e[i]));
        continue;
      }
      if (en || (Float.isInfinite(e[i]) && e[i] == a[i])) continue;
      double d = (double) a[i] - e[i];
      d2 += d * d;
      r2 += (double) e[i] * e[i];
    }
    // Where the exact result is zero (e.g. the router gradient with k = 1, whose renormalised
    // weight is identically 1), a relative error is undefined: measure the RMS error against
    // the unit scale of the tests' inputs instead.
    double rel = r2 == 0 ? Math.sqrt(d2 / Math.max(1, e.length)) : Math.sqrt(d2 / r2);
    if (nanBad > 0 || !(rel <= tol)) {
      if (bad.isEmpty()) {
        // show the largest differences
        for (int k = 0; k < 5; k++) {
          int worst = -1;
          double wd = -1;
          for (int i = 0; i < e.length; i++) {
            double d = Math.abs((double) a[i] - e[i]);
            final int ii = i;
            if (d > wd && bad.stream().noneMatch(s -> s.startsWith("[" + ii + "]"))) {
              wd = d;
              worst = i;
            }
          }
          if (worst >= 0)
            bad.add(String.format("[%d] gpu %.7g cpu %.7g", worst, a[worst], e[worst]));
        }
      }
      fail(
          String.format(
              "%s: normwise rel err %.3g (tol %.1g), %d NaN mismatches, seed %d; %s",
              what, rel, tol, nanBad, SEED, String.join(", ", bad)));
    }
  }

  /**
   * Copies the GPU's values into the CPU tensor, so that a backward test starts both backends from
   * identical forward results (in bf16 they legitimately differ by output rounding, which a
   * cancellation such as dp - delta in attention would otherwise amplify).
   */
  static void sync(Pair p) {
    cpu().copyFromHost(gpu().download(p.g()), p.c());
  }

  static void checkInts(String what, Pair p) {
    assertArrayEquals(
        cpu().download(p.c()).toIntArray(),
        gpu().download(p.g()).toIntArray(),
        what + " (seed " + SEED + ")");
  }

  /**
   * K distinct experts per token drawn from the allowed set (so some experts may get no rows), as a
   * flat (N*K) array.
   */
  static int[] routing(int n, int k, int[] allowed) {
    int[] idx = new int[n * k];
    for (int t = 0; t < n; t++) {
      List<Integer> pool = new ArrayList<>();
      for (int e : allowed) pool.add(e);
      for (int j = 0; j < k; j++) idx[t * k + j] = pool.remove(RND.nextInt(pool.size()));
    }
    return idx;
  }
}
