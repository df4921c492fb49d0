package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.GpuTesting.RND;
import static moetune.engine.backend.cuda.GpuTesting.attentionMatchesCpu;
import static moetune.engine.backend.cuda.GpuTesting.check;
import static moetune.engine.backend.cuda.GpuTesting.cpu;
import static moetune.engine.backend.cuda.GpuTesting.gpu;
import static moetune.engine.backend.cuda.GpuTesting.ints;
import static moetune.engine.backend.cuda.GpuTesting.poisoned;
import static moetune.engine.backend.cuda.GpuTesting.randn;
import static moetune.engine.backend.cuda.GpuTesting.sync;
import static moetune.engine.backend.cuda.GpuTesting.tol;

import moetune.engine.backend.cuda.GpuTesting.Pair;
import moetune.engine.tensor.DType;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Embedding, RMSNorm, RoPE and attention on the GPU against the CPU oracle. */
@Tag("gpu")
class CudaLayerOpsTest {
  private static final long[] TOKENS = {1, 37};

  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "BF16"})
  void embedding(DType dt) {
    gpu();
    int v = 1000;
    // d 100: the scalar kernel; d 1024: the 16-byte vector path
    for (int d : new int[] {100, 1024})
      for (long n : TOKENS) {
        int[] ids = new int[(int) n];
        for (int i = 0; i < n; i++)
          ids[i] = RND.nextInt(i % 3 == 0 ? 5 : v); // repeats collide in the backward
        try (Pair id = ints(ids, n);
            Pair table = randn(dt, 1, v, d);
            Pair out = poisoned(dt, n, d);
            Pair dOut = randn(dt, 1, n, d);
            Pair dTable = randn(DType.F32, 1, v, d)) {
          cpu().embeddingForward(id.c(), table.c(), out.c());
          gpu().embeddingForward(id.g(), table.g(), out.g());
          check("embeddingForward " + dt + " N=" + n + " D=" + d, out, tol(dt));
          cpu().embeddingBackward(id.c(), dOut.c(), dTable.c());
          gpu().embeddingBackward(id.g(), dOut.g(), dTable.g());
          check("embeddingBackward " + dt + " N=" + n + " D=" + d, dTable, tol(dt));
        }
      }
  }

  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "BF16"})
  void rmsnorm(DType dt) {
    gpu();
    for (long n : TOKENS) {
      // 100 and 4099: the scalar kernels; 1024 and 512: the vector paths (16-byte loads, a warp
      // per row in the backward); 4096: vector forward, scalar backward (D > 2048)
      for (int d : new int[] {100, 4099, 1024, 512, 4096}) {
        for (boolean withDelta : new boolean[] {false, true}) {
          String what = dt + " N=" + n + " D=" + d + " delta=" + withDelta;
          try (Pair res = randn(dt, 2, n, d);
              Pair delta = withDelta ? randn(dt, 1, n, d) : null;
              Pair w = randn(dt, 1, d);
              Pair out = poisoned(dt, n, d);
              Pair rstd = poisoned(DType.F32, n)) {
            cpu()
                .rmsnormForward(
                    res.c(), delta == null ? null : delta.c(), w.c(), 1e-5f, out.c(), rstd.c());
            gpu()
                .rmsnormForward(
                    res.g(), delta == null ? null : delta.g(), w.g(), 1e-5f, out.g(), rstd.g());
            check("rmsnormForward out " + what, out, tol(dt));
            check("rmsnormForward residual " + what, res, tol(dt));
            check("rmsnormForward rstd " + what, rstd, tol(dt));
            sync(res);
            sync(rstd);
            try (Pair dOut = randn(dt, 1, n, d);
                Pair dx = randn(dt, 1, n, d);
                Pair dw = randn(DType.F32, 1, d)) {
              cpu()
                  .rmsnormBackward(
                      dOut.c(), res.c(), w.c(), rstd.c(), dx.c(), withDelta ? dw.c() : null);
              gpu()
                  .rmsnormBackward(
                      dOut.g(), res.g(), w.g(), rstd.g(), dx.g(), withDelta ? dw.g() : null);
              check("rmsnormBackward dx " + what, dx, tol(dt));
              check("rmsnormBackward dw " + what, dw, tol(dt));
            }
          }
        }
      }
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "BF16"})
  void rope(DType dt) {
    gpu();
    // hd 24: a thread per pair; hd 64 and 128: a block per token, 16-byte loads
    for (int hd : new int[] {24, 64, 128})
      for (long n : TOKENS) {
        int heads = 3;
        int[] pos = new int[(int) n];
        for (int i = 0; i < n; i++)
          pos[i] = RND.nextInt(5000); // large angles: the float angle path matters
        try (Pair p = ints(pos, n);
            Pair x = randn(dt, 1, n, heads, hd)) {
          cpu().ropeForward(x.c(), p.c(), 1e6f);
          gpu().ropeForward(x.g(), p.g(), 1e6f);
          check("ropeForward " + dt + " N=" + n + " hd=" + hd, x, tol(dt));
          cpu().ropeBackward(x.c(), p.c(), 10000f);
          gpu().ropeBackward(x.g(), p.g(), 10000f);
          check("ropeBackward " + dt + " N=" + n + " hd=" + hd, x, tol(dt));
        }
      }
  }

  /**
   * The previous vector RoPE kernel (a token per block, KernelBandwidthBench's "before" row) and
   * the current one (a tile of tokens per block, every thread computing cos/sin) compute each
   * element with the same formulas and unfused roundings: bitwise equal, and equal to the CPU
   * oracle within tol(dt) (the CPU's Math.cos / Math.sin against CUDA's, rounded to float). hd 64,
   * 128 and 256 give tiles of 16, 8 and 4 tokens; 16 heads and N = 1, 37 and 2053 (ragged last
   * tiles).
   */
  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "BF16"})
  void ropePreviousAndCurrentKernelsAreBitwiseEqual(DType dt) {
    gpu();
    for (int hd : new int[] {64, 128, 256})
      for (int n : new int[] {1, 37, 2053}) {
        int heads = 16;
        int[] pos = new int[n];
        for (int i = 0; i < n; i++) pos[i] = RND.nextInt(40000);
        float[] x0 = GpuTesting.randn(n * heads * hd, 1);
        float[] before =
            CudaBackend.withPreviousKernels("rope", () -> rope3(dt, pos, x0, heads, hd, false));
        float[] now = rope3(dt, pos, x0, heads, hd, true);
        org.junit.jupiter.api.Assertions.assertArrayEquals(
            before, now, "rope previous vs current kernel " + dt + " hd=" + hd + " N=" + n);
      }
  }

  /**
   * Forward, inverse, forward at three thetas on the GPU; with checkCpu also on the CPU, compared.
   */
  private static float[] rope3(
      DType dt, int[] pos, float[] x0, int heads, int hd, boolean checkCpu) {
    int n = pos.length;
    try (Pair p = ints(pos, n);
        Pair x = GpuTesting.floats(dt, x0, n, heads, hd)) {
      gpu().ropeForward(x.g(), p.g(), 1e6f);
      gpu().ropeBackward(x.g(), p.g(), 1e4f);
      gpu().ropeForward(x.g(), p.g(), 5e5f);
      if (checkCpu) {
        cpu().ropeForward(x.c(), p.c(), 1e6f);
        cpu().ropeBackward(x.c(), p.c(), 1e4f);
        cpu().ropeForward(x.c(), p.c(), 5e5f);
        check("rope " + dt + " hd=" + hd + " N=" + n + " vs the CPU", x, tol(dt));
      }
      return gpu().download(x.g()).toFloatArray();
    }
  }

  /** Causal, windowed, packed documents (with padding keys) and Tq < Tk, forward and backward. */
  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "BF16"})
  void attention(DType dt) {
    gpu();
    record Case(int b, int tq, int tk, int h, int hkv, int hd, int window, boolean docs) {}
    Case[] cases = {
      new Case(2, 37, 37, 4, 2, 24, 0, false),
      new Case(1, 1, 1, 2, 1, 8, 0, false),
      new Case(2, 37, 37, 4, 4, 40, 7, false),
      new Case(3, 29, 29, 6, 2, 16, 0, true),
      new Case(2, 5, 41, 4, 2, 24, 0, false),
      new Case(1, 19, 19, 2, 1, 128, 5, true),
    };
    for (Case c : cases) {
      String what = dt + " " + c;
      Pair docs = null;
      if (c.docs) {
        int[] ids = new int[c.b * c.tk];
        for (int b = 0; b < c.b; b++) {
          int doc = 0;
          for (int j = 0; j < c.tk; j++) {
            if (j > 0 && RND.nextInt(6) == 0) doc++;
            ids[b * c.tk + j] = j >= c.tk - 3 && b == 0 ? -1 : doc; // row 0 ends in padding
          }
        }
        docs = ints(ids, (long) c.b * c.tk);
      }
      try {
        attentionMatchesCpu(dt, c.b, c.tq, c.tk, c.h, c.hkv, c.hd, c.window, docs, what);
      } finally {
        if (docs != null) docs.close();
      }
    }
  }
}
