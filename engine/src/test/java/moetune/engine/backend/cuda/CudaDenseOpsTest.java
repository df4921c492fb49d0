package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.GpuTesting.check;
import static moetune.engine.backend.cuda.GpuTesting.cpu;
import static moetune.engine.backend.cuda.GpuTesting.gpu;
import static moetune.engine.backend.cuda.GpuTesting.poisoned;
import static moetune.engine.backend.cuda.GpuTesting.randn;
import static moetune.engine.backend.cuda.GpuTesting.tol;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import moetune.engine.backend.cuda.GpuTesting.Pair;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Memory, elementwise ops and cuBLAS matmul on the GPU against the CPU oracle. */
@Tag("gpu")
class CudaDenseOpsTest {

  @Test
  void uploadDownloadRoundTripsAndConverts() {
    CudaBackend g = gpu();
    float[] v = GpuTesting.randn(1237, 3);
    try (Tensor t = g.upload(HostTensor.ofFloats(v, 1237))) {
      assertArrayEquals(v, g.download(t).toFloatArray());
    }
    int[] ids = {5, -3, 0, 31999, Integer.MAX_VALUE};
    try (Tensor t =
        g.upload(
            HostTensor.ofLongs(new long[] {5, -3, 0, 31999, Integer.MAX_VALUE}, 5), DType.I32)) {
      assertArrayEquals(ids, g.download(t).toIntArray());
    }
    try (Tensor b = g.upload(HostTensor.ofFloats(v, 1237), DType.BF16);
        Tensor f = g.empty(DType.F32, 1237)) {
      g.copy(b, f);
      float[] back = g.download(f).toFloatArray();
      for (int i = 0; i < v.length; i++) {
        assertEquals(
            moetune.engine.tensor.Floats.roundToBf16(v[i]),
            back[i],
            0f,
            "bf16 -> f32 element " + i);
      }
    }
  }

  @Test
  void allocatorReusesFreedBlocksAndTracksPeak() {
    CudaBackend g = gpu();
    g.synchronize();
    long reserved0 = g.reservedBytes();
    long base = g.bytesInUse();
    g.resetPeak();
    for (int i = 0; i < 50; i++) {
      try (Tensor t = g.empty(DType.F32, 1 << 20)) {
        g.fill(t, i);
      }
    }
    assertEquals(base, g.bytesInUse(), "every block was returned");
    assertTrue(
        g.peakBytes() - base >= 4L << 20 && g.peakBytes() - base < 8L << 20,
        "peak " + g.peakBytes());
    assertTrue(
        g.reservedBytes() - reserved0 <= 4L << 20, "50 equal allocations reused one cached block");
  }

  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "BF16"})
  void elementwise(DType dt) {
    gpu();
    long n = 100_003;
    try (Pair a = randn(dt, 1, n);
        Pair b = randn(dt, 1, n);
        Pair out = poisoned(dt, n)) {
      cpu().add(a.c(), b.c(), out.c());
      gpu().add(a.g(), b.g(), out.g());
      check("add " + dt, out, tol(dt));
      cpu().axpy(-0.37f, a.c(), b.c());
      gpu().axpy(-0.37f, a.g(), b.g());
      check("axpy " + dt, b, tol(dt));
      cpu().scale(a.c(), 1.7f);
      gpu().scale(a.g(), 1.7f);
      check("scale " + dt, a, tol(dt));
      cpu().add(a.c(), b.c(), a.c());
      gpu().add(a.g(), b.g(), a.g());
      check("add in place " + dt, a, tol(dt));
    }
  }

  /**
   * add, axpy and scale take 16-byte accesses on aligned tensors and a scalar loop otherwise: a
   * view one bf16 element in (2-byte aligned) must give bit for bit what the aligned whole gives on
   * the same elements, and both must leave the element before the view alone.
   */
  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "BF16"})
  void elementwiseVectorAndScalarPathsAgreeBitwise(DType dt) {
    CudaBackend g = gpu();
    long n = 4099; // neither the whole nor the view is a multiple of 8
    try (Pair a = randn(dt, 1, n);
        Pair b = randn(dt, 1, n);
        Tensor whole = g.empty(dt, n);
        Tensor part = g.empty(dt, n)) {
      Tensor aView = a.g().view(1, n - 1);
      Tensor bView = b.g().view(1, n - 1);
      Tensor partView = part.view(1, n - 1);
      for (int op = 0; op < 3; op++) {
        g.copy(b.g(), whole);
        g.copy(b.g(), part);
        String what = new String[] {"add", "axpy", "scale"}[op] + " " + dt;
        switch (op) {
          case 0 -> {
            g.add(a.g(), b.g(), whole);
            g.add(aView, bView, partView);
          }
          case 1 -> {
            g.axpy(-0.37f, a.g(), whole);
            g.axpy(-0.37f, aView, partView);
          }
          default -> {
            g.scale(whole, 1.7f);
            g.scale(partView, 1.7f);
          }
        }
        float[] w = g.download(whole).toFloatArray();
        float[] p = g.download(part).toFloatArray();
        float[] b0 = g.download(b.g()).toFloatArray();
        assertEquals(b0[0], p[0], what + ": the element before the view was written");
        for (int i = 1; i < n; i++) {
          assertEquals(
              Float.floatToRawIntBits(w[i]),
              Float.floatToRawIntBits(p[i]),
              what + ": element " + i + " aligned " + w[i] + " vs unaligned " + p[i]);
        }
      }
    }
  }

  @Test
  void fillWritesEveryDtype() {
    CudaBackend g = gpu();
    for (DType dt : new DType[] {DType.F32, DType.BF16, DType.I32}) {
      try (Tensor t = g.empty(dt, 37, 3)) {
        g.fill(t, 5f);
        for (float x : g.download(t).toFloatArray()) assertEquals(5f, x, 0f, dt + " fill");
      }
    }
  }

  /** Every op(A) op(B) combination, beta 0 (C poisoned) and beta 1, awkward sizes. */
  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "BF16"})
  void matmul(DType dt) {
    gpu();
    int[][] sizes = {{37, 100, 51}, {1, 100, 7}, {129, 33, 65}};
    for (int[] s : sizes) {
      int m = s[0], k = s[1], n = s[2];
      for (boolean ta : new boolean[] {false, true}) {
        for (boolean tb : new boolean[] {false, true}) {
          String what =
              "matmul "
                  + dt
                  + " m="
                  + m
                  + " k="
                  + k
                  + " n="
                  + n
                  + " transA="
                  + ta
                  + " transB="
                  + tb;
          try (Pair a = ta ? randn(dt, 1, k, m) : randn(dt, 1, m, k);
              Pair b = tb ? randn(dt, 1, n, k) : randn(dt, 1, k, n);
              Pair c = poisoned(DType.F32, m, n)) {
            cpu().matmul(a.c(), ta, b.c(), tb, c.c(), 0.5f, 0f);
            gpu().matmul(a.g(), ta, b.g(), tb, c.g(), 0.5f, 0f);
            check(what + " beta=0", c, tol(dt));
            cpu().matmul(a.c(), ta, b.c(), tb, c.c(), 1f, 1f);
            gpu().matmul(a.g(), ta, b.g(), tb, c.g(), 1f, 1f);
            check(what + " beta=1", c, tol(dt));
          }
        }
      }
    }
    // bf16 output too (the model's bf16 activations)
    if (dt == DType.BF16) {
      try (Pair a = randn(dt, 1, 37, 100);
          Pair b = randn(dt, 1, 51, 100);
          Pair c = poisoned(DType.BF16, 37, 51)) {
        cpu().matmul(a.c(), false, b.c(), true, c.c(), 1f, 0f);
        gpu().matmul(a.g(), false, b.g(), true, c.g(), 1f, 0f);
        check("matmul bf16 -> bf16", c, tol(dt));
      }
    }
  }

  @Test
  void shapeErrorsNameTheOpAndShapes() {
    CudaBackend g = gpu();
    try (Tensor a = g.empty(DType.F32, 3, 4);
        Tensor b = g.empty(DType.F32, 5, 6);
        Tensor c = g.empty(DType.F32, 3, 6)) {
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> g.matmul(a, false, b, false, c, 1, 0));
      assertTrue(
          e.getMessage().startsWith("matmul: op(A) is (3, 4)") && e.getMessage().contains("[3, 4]"),
          e.getMessage());
    }
  }

  /**
   * The counter-based normal fill against the CPU's: the same integer hash, then log, sqrt and cos
   * in float32, whose device and Java implementations differ by a few ulp (1e-6 relative); bf16
   * outputs are those values rounded once.
   */
  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "BF16"})
  void randomNormalMatchesTheCpu(DType dt) {
    int n = 100_003;
    try (Tensor c = cpu().empty(DType.F32, n);
        Tensor g = gpu().empty(dt, n)) {
      cpu().randomNormal(c, 0x5EEDL, 0.02f);
      gpu().randomNormal(g, 0x5EEDL, 0.02f);
      GpuTesting.compare(
          "randomNormal " + dt,
          cpu().download(c).toFloatArray(),
          gpu().download(g).to(DType.F32).toFloatArray(),
          tol(dt));
    }
  }
}
