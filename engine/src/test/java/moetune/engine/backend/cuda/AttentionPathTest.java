package moetune.engine.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import moetune.engine.backend.cuda.CudaAttention.AttentionPath;
import moetune.engine.tensor.DType;
import org.junit.jupiter.api.Test;

/** MOETUNE_ATTENTION parsing (no GPU needed). */
class AttentionPathTest {
  @Test
  void defaultIsCudnnAndNamesParse() {
    assertEquals(AttentionPath.CUDNN, AttentionPath.fromEnv(null));
    assertEquals(AttentionPath.CUDNN, AttentionPath.fromEnv(" "));
    assertEquals(AttentionPath.CUDNN, AttentionPath.DEFAULT);
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
    assertTrue(AttentionPath.CUDNN.plan(DType.BF16, 128).contains("ragged"));
    assertTrue(AttentionPath.CUDNN.plan(DType.BF16, 72).contains("multiple of 16"));
    assertEquals(
        "attention: scalar kernels in every layer: head dim 136 (the tensor-core kernels take 64 or"
            + " 128): head dim 136 (cuDNN takes multiples of 8 up to 128)",
        AttentionPath.CUDNN.plan(DType.BF16, 136));
    assertTrue(AttentionPath.CUDNN.plan(DType.F32, 128).contains("F32 activations"));
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

  @Test
  void backwardVariantsParseAndSizeTheirBlocks() {
    assertEquals("v2", CudaAttention.fa2BwdVariant("V2", 128));
    assertEquals("v1", CudaAttention.fa2BwdVariant(" v1 ", 64));
    assertEquals("v3", CudaAttention.fa2BwdVariant("v3", 64));
    assertEquals("v4", CudaAttention.fa2BwdVariant("v4", 64));
    String at128 = CudaAttention.fa2BwdVariant(null, 128);
    assertTrue(at128.matches("v[128]"), at128);
    assertEquals(at128, CudaAttention.fa2BwdVariant("v4", 128), "v3 and v4 are head dim 64 only");
    assertTrue(CudaAttention.fa2BwdVariant("", 64).matches("v[1234]"));
    // the kernels' bwd_smem: v1 at hd 128 as before this variant split, v4's 32-query tiles
    assertEquals((2 * 128 * 128 + 4 * 64 * 128 + 128 * 64) * 2 + 1536, fa2(128, "v1"));
    assertEquals((2 * 64 * 64 + 4 * 64 * 64 + 64 * 64) * 2 + 1536, fa2(64, "v2"));
    assertEquals((2 * 128 * 64 + 4 * 32 * 64 + 128 * 32) * 2 + 768, fa2(64, "v4"));
    assertEquals(256, CudaAttention.fa2BwdThreads("v1"));
    assertEquals(128, CudaAttention.fa2BwdThreads("v4"));
    assertEquals(64, CudaAttention.fa2BwdKeys("v3"));
    assertEquals(fa2(128, "v1") + 128 * 64 * 2, fa2(128, "v8"));
    assertEquals("v8", CudaAttention.fa2BwdVariant("v8", 128));
    assertEquals(256, CudaAttention.fa2BwdThreads("v8"));
    // the warp-pair variants v5-v7 are the lab's (kernels/lab/attention), not shipped
    for (String lab : new String[] {"v5", "v6", "V7"}) {
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> CudaAttention.fa2BwdVariant(lab, 128));
      assertTrue(e.getMessage().contains("kernels/lab/attention"), e.getMessage());
    }
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> CudaAttention.fa2BwdVariant("v9", 64));
    assertTrue(e.getMessage().startsWith("MOETUNE_FA2_BWD=v9"), e.getMessage());
  }

  private static int fa2(int hd, String variant) {
    return CudaAttention.fa2BwdSmem(hd, variant);
  }
}
