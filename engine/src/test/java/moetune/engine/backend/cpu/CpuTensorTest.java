package moetune.engine.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** CpuTensor views and reshapes, dtypes, upload/download, and the memory accounting. */
class CpuTensorTest {
  static CpuBackend be;

  @BeforeAll
  static void start() {
    be = new CpuBackend(2);
  }

  @AfterAll
  static void stop() {
    be.close();
  }

  @Test
  void viewsShareStorageAndReshapeKeepsData() {
    float[] v = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    Tensor t = CpuTesting.f32(be, v, 3, 4);
    Tensor row1 = t.view(4, 4);
    assertArrayEquals(new float[] {4, 5, 6, 7}, CpuTesting.floats(be, row1));
    be.scale(row1, 10f);
    assertArrayEquals(
        new float[] {0, 1, 2, 3, 40, 50, 60, 70, 8, 9, 10, 11}, CpuTesting.floats(be, t));
    // A view of a view is offset from its parent's start.
    Tensor inner = row1.view(1, 2);
    assertArrayEquals(new float[] {50, 60}, CpuTesting.floats(be, inner));
    Tensor r = t.reshape(2, 2, 3);
    assertArrayEquals(new long[] {2, 2, 3}, r.shape());
    assertArrayEquals(CpuTesting.floats(be, t), CpuTesting.floats(be, r));
    assertThrows(IllegalArgumentException.class, () -> t.view(10, 3));
    assertThrows(IllegalArgumentException.class, () -> row1.view(2, 3));
    assertThrows(IllegalArgumentException.class, () -> t.reshape(5, 2));
  }

  @Test
  void uploadConvertsFloatsAndIds() {
    float[] v = {1.5f, -2.25f, 3.0078125f};
    Tensor fromBf16 = be.upload(HostTensor.ofFloats(DType.BF16, v, 3), DType.F32);
    assertArrayEquals(new float[] {1.5f, -2.25f, 3f}, CpuTesting.floats(be, fromBf16));
    Tensor ids = be.upload(HostTensor.ofLongs(new long[] {7, 31999, 0}, 3), DType.I32);
    assertEquals(DType.I32, ids.dtype());
    assertArrayEquals(new int[] {7, 31999, 0}, CpuTesting.ints(be, ids));
    IllegalArgumentException big =
        assertThrows(
            IllegalArgumentException.class,
            () -> be.upload(HostTensor.ofLongs(new long[] {1L << 40}, 1), DType.I32));
    assertTrue(big.getMessage().contains("int32"), big.getMessage());
    assertThrows(
        IllegalArgumentException.class,
        () -> be.upload(HostTensor.ofInts(new int[] {1}, 1), DType.F32));
    Tensor dst = be.empty(DType.F32, 3);
    be.copyFromHost(HostTensor.ofFloats(DType.F16, v, 3), dst);
    assertArrayEquals(new float[] {1.5f, -2.25f, 3.0078125f}, CpuTesting.floats(be, dst));
  }

  @Test
  void lowPrecisionDtypesFailWithAClearMessage() {
    assertTrue(be.supports(DType.F32));
    assertTrue(be.supports(DType.I32));
    assertFalse(be.supports(DType.BF16));
    assertFalse(be.supports(DType.F16));
    assertFalse(be.supports(DType.I64));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> be.empty(DType.BF16, 4));
    assertEquals(
        "CpuBackend: bf16 compute needs --device cuda; the CPU backend is float32", e.getMessage());
    IllegalArgumentException up =
        assertThrows(
            IllegalArgumentException.class,
            () -> be.upload(HostTensor.ofFloats(DType.BF16, new float[] {1}, 1)));
    assertTrue(up.getMessage().contains("bf16 compute needs --device cuda"), up.getMessage());
    IllegalArgumentException i64 =
        assertThrows(
            IllegalArgumentException.class, () -> be.upload(HostTensor.ofLongs(new long[] {1}, 1)));
    assertTrue(i64.getMessage().contains("DType.I32"), i64.getMessage());
  }

  @Test
  void emptyIsPoisonedAndZerosAreZero() {
    for (float v : CpuTesting.floats(be, be.empty(DType.F32, 5))) {
      assertTrue(Float.isNaN(v), "empty F32 holds NaN");
    }
    for (int v : CpuTesting.ints(be, be.empty(DType.I32, 5))) {
      assertEquals(Integer.MIN_VALUE, v);
    }
    assertArrayEquals(new float[5], CpuTesting.floats(be, be.zeros(DType.F32, 5)));
    assertArrayEquals(new int[5], CpuTesting.ints(be, be.zeros(DType.I32, 5)));
  }

  @Test
  void copyFillAndDownload() {
    Tensor ints = CpuTesting.i32(be, new int[] {3, -4, 5}, 3);
    Tensor f = be.empty(DType.F32, 3);
    be.copy(ints, f);
    assertArrayEquals(new float[] {3, -4, 5}, CpuTesting.floats(be, f));
    assertThrows(IllegalArgumentException.class, () -> be.copy(f, ints));
    be.fill(ints, 7);
    assertArrayEquals(new int[] {7, 7, 7}, CpuTesting.ints(be, ints));
    assertThrows(IllegalArgumentException.class, () -> be.fill(ints, 0.5f));
    HostTensor h = be.download(f.view(1, 2));
    assertArrayEquals(new long[] {2}, h.shape());
    assertArrayEquals(new float[] {-4, 5}, h.toFloatArray());
  }

  @Test
  void memoryAccountingFollowsLiveTensors() {
    try (CpuBackend own = new CpuBackend(1)) {
      assertEquals(0, own.bytesInUse());
      Tensor a = own.empty(DType.F32, 10, 10);
      Tensor b = own.empty(DType.I32, 5);
      assertEquals(420, own.bytesInUse());
      Tensor view = a.view(10, 10);
      view.close(); // closing a view frees nothing
      assertEquals(420, own.bytesInUse());
      a.close();
      a.close(); // idempotent
      assertEquals(20, own.bytesInUse());
      assertEquals(420, own.peakBytes());
      own.resetPeak();
      assertEquals(20, own.peakBytes());
      IllegalStateException used =
          assertThrows(IllegalStateException.class, () -> own.scale(view, 2f));
      assertTrue(used.getMessage().contains("after close"), used.getMessage());
      b.close();
      assertEquals(0, own.bytesInUse());
    }
  }

  @Test
  void aViewKeepsItsOwnerAliveAndForgottenTensorsAreReleased() throws InterruptedException {
    try (CpuBackend own = new CpuBackend(1)) {
      // Only the reshaped view is kept; the owner object itself is unreachable.
      Tensor v = own.empty(DType.F32, 1000).reshape(10, 100);
      for (int i = 0; i < 3; i++) {
        System.gc();
        Thread.sleep(20);
      }
      own.fill(v, 1f);
      assertEquals(4000, own.bytesInUse());
      v = null;
      // A tensor nobody closed is released when the garbage collector finds it unreachable.
      for (int i = 0; i < 100 && own.bytesInUse() != 0; i++) {
        System.gc();
        Thread.sleep(20);
      }
      assertEquals(0, own.bytesInUse());
    }
  }

  @Test
  void foreignTensorsAndBadShapesNameTheOp() {
    Tensor a = be.empty(DType.F32, 3, 4);
    Tensor b = be.empty(DType.F32, 5, 6);
    Tensor c = be.empty(DType.F32, 3, 6);
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> be.matmul(a, false, b, false, c, 1, 0));
    assertTrue(e.getMessage().startsWith("matmul: op(A) is (3, 4)"), e.getMessage());
    try (CpuBackend other = new CpuBackend(1)) {
      Tensor x = other.empty(DType.F32, 3, 4);
      // Another CPU backend's tensor works (same storage kind), a null does not.
      be.add(x, a, a);
      assertThrows(IllegalArgumentException.class, () -> be.add(null, a, a));
    }
  }
}
