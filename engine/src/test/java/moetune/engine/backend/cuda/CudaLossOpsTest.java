package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.GpuTesting.RND;
import static moetune.engine.backend.cuda.GpuTesting.check;
import static moetune.engine.backend.cuda.GpuTesting.cpu;
import static moetune.engine.backend.cuda.GpuTesting.floats;
import static moetune.engine.backend.cuda.GpuTesting.gpu;
import static moetune.engine.backend.cuda.GpuTesting.ints;
import static moetune.engine.backend.cuda.GpuTesting.poisoned;
import static moetune.engine.backend.cuda.GpuTesting.randn;
import static moetune.engine.backend.cuda.GpuTesting.routing;
import static moetune.engine.backend.cuda.GpuTesting.tol;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import moetune.engine.backend.AdamWCoefficients;
import moetune.engine.backend.cuda.GpuTesting.Pair;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Losses, reductions, clipping and AdamW on the GPU against the CPU oracle. */
@Tag("gpu")
class CudaLossOpsTest {

  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "BF16"})
  void crossEntropy(DType dt) {
    gpu();
    // V 32003: the scalar passes; V 32000: one 16-byte-vector read for the statistics (bf16 with
    // the gradient: the row kept in shared memory); V 4000: float32 rows in shared memory too
    for (int v : new int[] {32003, 32000, 4000})
      for (int n : new int[] {1, 37}) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = i % 5 == 1 ? -100 : RND.nextInt(v);
        for (boolean alias : new boolean[] {false, true}) {
          String what =
              "crossEntropy " + dt + " V=" + v + " N=" + n + " dLogits aliases logits=" + alias;
          try (Pair logits = randn(dt, 3, n, v);
              Pair tg = ints(t, n);
              Pair losses = poisoned(DType.F32, n);
              Pair dl = alias ? null : poisoned(dt, n, v)) {
            Pair grad = alias ? logits : dl;
            cpu().crossEntropy(logits.c(), tg.c(), losses.c(), grad.c(), 0.25f);
            gpu().crossEntropy(logits.g(), tg.g(), losses.g(), grad.g(), 0.25f);
            check(what + " losses", losses, tol(dt));
            check(what + " dLogits", grad, tol(dt));
          }
        }
        try (Pair logits = randn(dt, 3, n, v);
            Pair tg = ints(t, n);
            Pair losses = poisoned(DType.F32, n)) {
          cpu().crossEntropy(logits.c(), tg.c(), losses.c(), null, 1f);
          gpu().crossEntropy(logits.g(), tg.g(), losses.g(), null, 1f);
          check("crossEntropy " + dt + " V=" + v + " N=" + n + " no gradient", losses, tol(dt));
        }
      }
  }

  /**
   * The previous cross-entropy kernel (the gradient pass reading the row again, 1024 threads) and
   * the current one (the row kept in shared memory, 512 threads) on the same logits: each element
   * is computed with the same formulas; the row statistics are summed by differently many threads,
   * so the two agree to float32 rounding of the log-sum-exp (losses 1e-6 normwise; dLogits 1e-5 in
   * float32, 1e-3 in bf16 where a last-bit change can flip a rounding), not bitwise.
   */
  @Test
  void crossEntropyPreviousAndCurrentKernelsAgree() {
    gpu();
    int n = 37;
    for (DType dt : new DType[] {DType.BF16, DType.F32}) {
      for (int v : new int[] {32000, 4000}) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = i % 5 == 1 ? -100 : RND.nextInt(v);
        float[] x = GpuTesting.randn(n * v, 3);
        float[][] before =
            CudaBackend.withPreviousKernels("crossEntropy", () -> crossEntropyInPlace(dt, t, x, v));
        float[][] now = crossEntropyInPlace(dt, t, x, v);
        GpuTesting.compare(
            "crossEntropy previous/current losses " + dt + " V=" + v, before[0], now[0], 1e-6);
        GpuTesting.compare(
            "crossEntropy previous/current dLogits " + dt + " V=" + v,
            before[1],
            now[1],
            dt == DType.F32 ? 1e-5 : 1e-3);
      }
    }
  }

  /** {losses, dLogits} of crossEntropy in place on the GPU (dScale 0.25). */
  private static float[][] crossEntropyInPlace(DType dt, int[] t, float[] x, int v) {
    int n = t.length;
    try (Pair logits = GpuTesting.floats(dt, x, n, v);
        Pair tg = ints(t, n);
        Pair losses = poisoned(DType.F32, n)) {
      gpu().crossEntropy(logits.g(), tg.g(), losses.g(), logits.g(), 0.25f);
      return new float[][] {
        gpu().download(losses.g()).toFloatArray(), gpu().download(logits.g()).toFloatArray()
      };
    }
  }

  /**
   * The fused, chunked LM head + cross-entropy on the GPU: against the CPU oracle (tol(dt): bf16
   * logits and dlogits on the GPU), and against the unfused path on the GPU itself (matmul into
   * whole logits, crossEntropy in place, the two products): the same cuBLAS products on row views
   * and the same kernel per row; only dw's float32 sum over rows is split at chunk boundaries and
   * cuBLAS may pick another kernel for another row count, so 1e-5 normwise in float32 and 2e-3 in
   * bf16 (a last-bit difference of a float32 logit can flip its bf16 rounding).
   */
  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "BF16"})
  void lmHeadCrossEntropy(DType dt) {
    gpu();
    int n = 37, d = 64, v = 32000;
    int[] t = new int[n];
    for (int i = 0; i < n; i++) t[i] = i % 6 == 4 ? -100 : RND.nextInt(v);
    for (int chunk : new int[] {16, 37, 1024}) {
      String what = "lmHeadCrossEntropy " + dt + " chunk " + chunk;
      try (Pair x = randn(dt, 1, n, d);
          Pair w = randn(dt, 0.2, v, d);
          Pair tg = ints(t, n);
          Pair losses = poisoned(DType.F32, n);
          Pair dx = poisoned(dt, n, d);
          Pair dw = randn(DType.F32, 0.01, v, d)) {
        float[] dw0 = gpu().download(dw.g()).toFloatArray();
        cpu().lmHeadCrossEntropy(x.c(), w.c(), tg.c(), losses.c(), dx.c(), dw.c(), 0.125f, chunk);
        gpu().lmHeadCrossEntropy(x.g(), w.g(), tg.g(), losses.g(), dx.g(), dw.g(), 0.125f, chunk);
        check(what + " losses", losses, tol(dt));
        check(what + " dx", dx, tol(dt));
        check(what + " dw +=", dw, tol(dt));
        // the unfused path on the GPU, from the same inputs
        try (Tensor logits = gpu().empty(dt, n, v);
            Tensor l2 = gpu().empty(DType.F32, n);
            Tensor dx2 = gpu().empty(dt, n, d);
            Tensor dw2 = gpu().upload(HostTensor.ofFloats(dw0, v, d))) {
          gpu().matmul(x.g(), false, w.g(), true, logits, 1f, 0f);
          gpu().crossEntropy(logits, tg.g(), l2, logits, 0.125f);
          gpu().matmul(logits, false, w.g(), false, dx2, 1f, 0f);
          gpu().matmul(logits, true, x.g(), false, dw2, 1f, 1f);
          double same = dt == DType.F32 ? 1e-5 : 2e-3;
          GpuTesting.compare(
              what + " losses vs unfused",
              gpu().download(l2).toFloatArray(),
              gpu().download(losses.g()).toFloatArray(),
              same);
          GpuTesting.compare(
              what + " dx vs unfused",
              gpu().download(dx2).toFloatArray(),
              gpu().download(dx.g()).toFloatArray(),
              same);
          GpuTesting.compare(
              what + " dw vs unfused",
              gpu().download(dw2).toFloatArray(),
              gpu().download(dw.g()).toFloatArray(),
              same);
        }
        // losses only
        try (Pair l3 = poisoned(DType.F32, n)) {
          cpu().lmHeadCrossEntropy(x.c(), w.c(), tg.c(), l3.c(), null, null, 0f, chunk);
          gpu().lmHeadCrossEntropy(x.g(), w.g(), tg.g(), l3.g(), null, null, 0f, chunk);
          check(what + " losses, no gradient", l3, tol(dt));
        }
      }
    }
  }

  @Test
  void loadBalancingAndZLoss() {
    gpu();
    int e = 6;
    for (int r : new int[] {1, 74}) {
      for (int k = 1; k <= 4; k++) {
        for (boolean masked : new boolean[] {false, true}) {
          String what = "R=" + r + " k=" + k + " mask=" + masked;
          float[] m = new float[r];
          for (int i = 0; i < r; i++) m[i] = masked && i % 4 == 3 && r > 1 ? 0f : 1f;
          float[] p = new float[r * e];
          for (int i = 0; i < p.length; i++) p[i] = RND.nextFloat();
          try (Pair probs = floats(DType.F32, p, r, e);
              Pair idx = ints(routing(r, k, new int[] {0, 1, 2, 4, 5}), r, k);
              Pair mask = floats(DType.F32, m, r);
              Pair loss = poisoned(DType.F32, 1);
              Pair dP = poisoned(DType.F32, r, e)) {
            cpu()
                .loadBalancingLoss(
                    probs.c(), idx.c(), masked ? mask.c() : null, loss.c(), dP.c(), 0.02f);
            gpu()
                .loadBalancingLoss(
                    probs.g(), idx.g(), masked ? mask.g() : null, loss.g(), dP.g(), 0.02f);
            check("loadBalancingLoss " + what, loss, 1e-5);
            check("loadBalancingLoss dProbs " + what, dP, 1e-5);
          }
          try (Pair logits = randn(DType.F32, 3, r, e);
              Pair mask = floats(DType.F32, m, r);
              Pair loss = poisoned(DType.F32, 1);
              Pair dL = randn(DType.F32, 1, r, e)) {
            cpu().routerZLoss(logits.c(), masked ? mask.c() : null, loss.c(), dL.c(), 0.001f);
            gpu().routerZLoss(logits.g(), masked ? mask.g() : null, loss.g(), dL.g(), 0.001f);
            check("routerZLoss " + what, loss, 1e-5);
            check("routerZLoss dLogits += " + what, dL, 1e-5);
          }
        }
      }
    }
  }

  @Test
  void expertLoadStatsAccumulatePerLayer() {
    gpu();
    int e = 6;
    int layers = 3;
    for (int n : new int[] {1, 37, 3001}) {
      int r = layers * n;
      for (int k = 1; k <= 4; k++) {
        for (boolean masked : new boolean[] {false, true}) {
          String what = "expertLoadStats L=" + layers + " N=" + n + " k=" + k + " mask=" + masked;
          float[] m = new float[r];
          for (int i = 0; i < r; i++) m[i] = masked && i % 5 == 2 && n > 1 ? 0f : 1f;
          float[] p = new float[r * e];
          for (int i = 0; i < r; i++) {
            float sum = 0;
            for (int x = 0; x < e; x++) {
              // expert 3 never chosen and sometimes exactly 0: 0 log 0 must count as 0
              p[i * e + x] = x == 3 && i % 2 == 0 ? 0f : RND.nextFloat();
              sum += p[i * e + x];
            }
            for (int x = 0; x < e; x++) p[i * e + x] /= sum;
          }
          float[] start = new float[layers * (e + 2)];
          for (int i = 0; i < start.length; i++) start[i] = RND.nextInt(100);
          try (Pair probs = floats(DType.F32, p, r, e);
              Pair idx = ints(routing(r, k, new int[] {0, 1, 2, 4, 5}), r, k);
              Pair mask = floats(DType.F32, m, r);
              Pair acc = floats(DType.F32, start, layers, e + 2)) {
            cpu().expertLoadStats(probs.c(), idx.c(), masked ? mask.c() : null, acc.c());
            gpu().expertLoadStats(probs.g(), idx.g(), masked ? mask.g() : null, acc.g());
            // counts are exact; the entropy sums differ only in float32 summation order
            check(what, acc, 1e-6);
          }
        }
      }
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "BF16"})
  void sumsAndClipping(DType dt) {
    gpu();
    // 1_000_004 float32 elements take the 16-byte vector kernels, the others the scalar ones
    for (long n : new long[] {1, 37, 1_000_003, 1_000_004}) {
      try (Pair x = randn(dt, 1, n);
          Pair out = poisoned(DType.F32, 1);
          Pair acc = floats(DType.F32, new float[] {2.5f}, 1)) {
        cpu().sum(x.c(), 0.5f, out.c());
        gpu().sum(x.g(), 0.5f, out.g());
        // A sum of random signs cancels, so its relative error is unbounded; what summation
        // order can change is bounded by the sum of magnitudes: |gpu - cpu| <= 1e-6 * 0.5 sum|x|
        // (float32 blocked sums: about log2(n) roundings of 6e-8 each).
        double sumAbs = 0;
        for (float xv : gpu().download(x.g()).toFloatArray()) sumAbs += Math.abs(xv);
        float e = cpu().download(out.c()).toFloatArray()[0],
            a = gpu().download(out.g()).toFloatArray()[0];
        assertTrue(
            Math.abs(a - e) <= 1e-6 * 0.5 * sumAbs,
            "sum "
                + dt
                + " n="
                + n
                + ": gpu "
                + a
                + " cpu "
                + e
                + " (sum |x| "
                + sumAbs
                + ", seed "
                + GpuTesting.SEED
                + ")");
        cpu().sumSquares(x.c(), acc.c());
        gpu().sumSquares(x.g(), acc.g());
        check("sumSquares " + dt + " n=" + n, acc, tol(dt));
        for (float maxNorm : new float[] {0.5f, 1e9f}) {
          try (Pair g = randn(dt, 1, n)) {
            cpu().clipByNorm(g.c(), acc.c(), maxNorm);
            gpu().clipByNorm(g.g(), acc.g(), maxNorm);
            check("clipByNorm " + dt + " n=" + n + " maxNorm=" + maxNorm, g, tol(dt));
          }
        }
      }
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "BF16"})
  void adamw(DType gradType) {
    gpu();
    // 10_008 with float32 gradients takes the 16-byte vector kernel, 10_007 the scalar one
    for (long n : new long[] {10_007, 10_008}) {
      adamw(gradType, n);
    }
  }

  private void adamw(DType gradType, long n) {
    try (Pair p = randn(DType.F32, 1, n);
        Pair g = randn(gradType, 1, n);
        Pair m = randn(DType.F32, 0.1, n);
        Pair v = floats(DType.F32, abs(GpuTesting.randn((int) n, 0.01)), n);
        Pair low = poisoned(DType.BF16, n)) {
      for (int step = 1; step <= 3; step++) {
        cpu()
            .adamwStep(
                p.c(),
                g.c(),
                m.c(),
                v.c(),
                AdamWCoefficients.of(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step),
                low.c());
        gpu()
            .adamwStep(
                p.g(),
                g.g(),
                m.g(),
                v.g(),
                AdamWCoefficients.of(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step),
                low.g());
      }
      check("adamw param (grad " + gradType + ", n " + n + ")", p, 1e-5);
      check("adamw m", m, 1e-5);
      check("adamw v", v, 1e-5);
      check("adamw bf16 copy", low, 1e-2);
    }
  }

  @Test
  void adamwVectorKernelIsBitwiseTheScalarOneAndTheCpu() {
    CudaBackend be = gpu();
    int n = 4104;
    float[] p0 = GpuTesting.randn(n, 1), g0 = GpuTesting.randn(n, 1);
    float[] m0 = GpuTesting.randn(n, 0.1), v0 = abs(GpuTesting.randn(n, 0.01));
    // whole buffers are 16-byte aligned (vector kernel); views one element in are not (scalar)
    Tensor[] vec = new Tensor[5], sca = new Tensor[5], whole = new Tensor[4];
    float[][] init = {p0, g0, m0, v0};
    for (int i = 0; i < 4; i++) {
      vec[i] = be.upload(HostTensor.ofFloats(init[i], n));
      whole[i] = be.zeros(DType.F32, n + 1);
      sca[i] = whole[i].view(1, n);
      be.copyFromHost(HostTensor.ofFloats(init[i], n), sca[i]);
    }
    vec[4] = be.empty(DType.BF16, n);
    sca[4] = be.empty(DType.BF16, n);
    for (int step = 1; step <= 3; step++) {
      for (Tensor[] t : new Tensor[][] {vec, sca}) {
        be.adamwStep(
            t[0],
            t[1],
            t[2],
            t[3],
            AdamWCoefficients.of(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step),
            t[4]);
      }
    }
    // and both are bitwise the CPU oracle (every float operation rounded the same way)
    Tensor[] ref = new Tensor[4];
    for (int i = 0; i < 4; i++) {
      ref[i] = cpu().upload(HostTensor.ofFloats(init[i], n));
    }
    for (int step = 1; step <= 3; step++) {
      cpu()
          .adamwStep(
              ref[0],
              ref[1],
              ref[2],
              ref[3],
              AdamWCoefficients.of(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step),
              null);
    }
    String[] names = {"param", "grad", "m", "v", "bf16 copy"};
    for (int i = 0; i < 4; i++) {
      assertArrayEquals(
          cpu().download(ref[i]).toFloatArray(),
          be.download(vec[i]).toFloatArray(),
          "adamw " + names[i] + ": the GPU must compute exactly what the CPU oracle does");
      ref[i].close();
    }
    for (int i = 0; i < 5; i++) {
      assertArrayEquals(
          be.download(sca[i]).toFloatArray(),
          be.download(vec[i]).toFloatArray(),
          "adamw "
              + names[i]
              + ": the vector kernel must compute exactly what the scalar one does");
      vec[i].close();
      if (i == 4) {
        sca[i].close();
      }
    }
    for (Tensor t : whole) {
      t.close();
    }
  }

  private static float[] abs(float[] v) {
    for (int i = 0; i < v.length; i++) v[i] = Math.abs(v[i]);
    return v;
  }
}
