package moetune.engine.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import moetune.engine.backend.cuda.LayerOps.AttentionPath;
import moetune.engine.tensor.DType;
import org.junit.jupiter.api.Test;

/** MOETUNE_ATTENTION parsing (no GPU needed). */
class AttentionPathTest {
  @Test
  void defaultIsOwnAndNamesParse() {
    assertEquals(AttentionPath.OWN, AttentionPath.fromEnv(null));
    assertEquals(AttentionPath.OWN, AttentionPath.fromEnv(" "));
    assertEquals(AttentionPath.OWN, AttentionPath.fromEnv("own"));
    assertEquals(AttentionPath.OWN, AttentionPath.fromEnv("FA2"));
    assertEquals(AttentionPath.SCALAR, AttentionPath.fromEnv("Scalar"));
    assertEquals(AttentionPath.CUDNN, AttentionPath.fromEnv("cuDNN"));
    assertTrue(AttentionPath.CUDNN.describe().contains("cuDNN"));
    assertTrue(AttentionPath.SCALAR.describe().contains("scalar"));
    assertTrue(AttentionPath.OWN.describe().contains("tensor-core"));
  }

  @Test
  void planSaysWhichKernelsAndWhy() {
    assertEquals(
        "attention: own tensor-core kernels (FlashAttention-2, bf16, head dim 128) in every layer",
        AttentionPath.OWN.plan(DType.BF16, 128));
    assertTrue(AttentionPath.OWN.plan(DType.BF16, 96).contains("head dim 96"));
    assertTrue(AttentionPath.OWN.plan(DType.F32, 64).contains("F32 activations"));
    assertTrue(AttentionPath.SCALAR.plan(DType.BF16, 64).contains("MOETUNE_ATTENTION=scalar"));
    assertTrue(AttentionPath.CUDNN.plan(DType.BF16, 128).contains("cuDNN fused flash attention"));
    assertTrue(AttentionPath.CUDNN.plan(DType.BF16, 136).contains("head dim 136"));
  }

  @Test
  void unknownValueSaysWhatToUse() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> AttentionPath.fromEnv("flash3"));
    assertTrue(e.getMessage().startsWith("MOETUNE_ATTENTION=flash3"), e.getMessage());
    assertTrue(
        e.getMessage().contains("own")
            && e.getMessage().contains("cudnn")
            && e.getMessage().contains("scalar"),
        e.getMessage());
  }
}
