package moetune.engine.backend;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The shape contracts both backends share for matmul, attention, the grouped products and the
 * losses: the dims they derive and the one-line message of a mismatch (tensors only carry shapes
 * here; no op runs).
 */
class OpShapesTest {
  private static CpuBackend be;

  @BeforeAll
  static void open() {
    be = new CpuBackend(1);
  }

  @AfterAll
  static void close() {
    be.close();
  }

  private static Tensor f32(long... shape) {
    return be.empty(DType.F32, shape);
  }

  private static Tensor i32(long... shape) {
    return be.empty(DType.I32, shape);
  }

  @Test
  void matmulDerivesMnkAndNamesTheOperands() {
    assertArrayEquals(
        new long[] {3, 5, 4}, OpShapes.matmul(f32(4, 3), true, f32(5, 4), true, f32(15)));
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> OpShapes.matmul(f32(3, 4), false, f32(5, 6), false, f32(3, 6)));
    assertEquals(
        "matmul: op(A) is (3, 4) from A F32[3, 4], op(B) is (5, 6) from B F32[5, 6], C F32[3, 6]"
            + " must be (3, 6)",
        e.getMessage());
  }

  @Test
  void attentionDerivesHeadsAndChecksTheGradients() {
    AttnSpec spec = AttnSpec.causal(2, 3, 0);
    Tensor q = f32(6, 4, 8), k = f32(6, 2, 8);
    assertArrayEquals(
        new int[] {4, 2, 8},
        OpShapes.attentionForward(q, k, f32(6, 2, 8), spec, f32(6, 4, 8), f32(24)));
    IllegalArgumentException heads =
        assertThrows(
            IllegalArgumentException.class,
            () -> OpShapes.attention("attentionForward", f32(6, 3, 8), k, f32(6, 2, 8), spec));
    assertEquals(
        "attentionForward: 3 query heads are not a multiple of 2 key/value heads",
        heads.getMessage());
    IllegalArgumentException dk =
        assertThrows(
            IllegalArgumentException.class,
            () -> OpShapes.attentionBackward(q, q, k, k, q, f32(24), spec, q, f32(6, 1, 8), k));
    assertEquals(
        "attentionBackward: dk F32[6, 1, 8] has 48 elements, expected 96", dk.getMessage());
  }

  @Test
  void groupedProductsDeriveTheirDims() {
    Tensor w = f32(2, 3, 4); // (E, O, I)
    assertArrayEquals(
        new int[] {2, 4, 3, 6},
        OpShapes.scatter2scatter(
            f32(3, 4), w, f32(2, 3), true, 2, i32(6), i32(6), false, f32(6, 3)));
    assertArrayEquals(
        new int[] {2, 3, 4, 5}, OpShapes.groupXtY(f32(5, 4), f32(5, 3), i32(2), w, null));
    IllegalArgumentException fan =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                OpShapes.scatter2scatter(
                    f32(3, 4), w, null, true, 4, i32(6), i32(6), false, f32(6, 3)));
    assertEquals(
        "scatter2scatter: fanOut=4 must be >= 1 and divide the 6 routed rows", fan.getMessage());
  }

  @Test
  void lossesDeriveTheirDims() {
    assertArrayEquals(new int[] {4, 7}, OpShapes.crossEntropy(f32(4, 7), i32(4), f32(4), null));
    assertArrayEquals(
        new int[] {6, 4, 2, 3}, OpShapes.expertLoadStats(f32(6, 4), i32(6, 2), null, f32(3, 6)));
    IllegalArgumentException acc =
        assertThrows(
            IllegalArgumentException.class,
            () -> OpShapes.expertLoadStats(f32(6, 4), i32(6, 2), null, f32(4, 6)));
    assertEquals(
        "expertLoadStats: acc F32[4, 6] must be (L, E+2) = (L, 6) with L dividing the 6 rows of"
            + " probs",
        acc.getMessage());
    IllegalArgumentException out =
        assertThrows(
            IllegalArgumentException.class,
            () -> OpShapes.routerZLoss(f32(6, 4), null, f32(2), null));
    assertEquals("routerZLoss: lossOut F32[2] has 2 elements, expected 1", out.getMessage());
  }
}
