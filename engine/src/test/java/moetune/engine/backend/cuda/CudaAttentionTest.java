package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.GpuTesting.RND;
import static moetune.engine.backend.cuda.GpuTesting.attentionMatchesCpu;
import static moetune.engine.backend.cuda.GpuTesting.gpu;
import static moetune.engine.backend.cuda.GpuTesting.ints;

import moetune.engine.backend.cuda.CudaAttention.AttentionPath;
import moetune.engine.backend.cuda.GpuTesting.Pair;
import moetune.engine.tensor.DType;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Attention on the GPU against the CPU oracle on both paths, at the head dims (64, 128) and lengths
 * where the tensor-core kernels run (several query and key tiles, partial last tiles), for every
 * mask: causal, GQA 32/8, sliding window, packed documents with padding, Tq < Tk, one token.
 */
@Tag("gpu")
class CudaAttentionTest {
  record Case(int b, int tq, int tk, int h, int hkv, int hd, int window, boolean docs) {}

  private static final Case[] CASES = {
    new Case(2, 200, 200, 4, 2, 128, 0, false),
    new Case(2, 200, 200, 4, 4, 64, 0, false),
    new Case(1, 150, 150, 32, 8, 128, 0, false),
    new Case(1, 150, 150, 32, 8, 64, 0, false),
    new Case(2, 300, 300, 4, 2, 128, 40, false),
    new Case(1, 290, 290, 4, 1, 64, 33, false),
    new Case(2, 260, 260, 4, 2, 128, 0, true),
    new Case(2, 270, 270, 6, 3, 64, 70, true),
    new Case(2, 37, 200, 4, 2, 128, 0, false),
    new Case(1, 45, 210, 4, 4, 64, 60, true),
    new Case(3, 1, 129, 4, 2, 64, 0, false),
    new Case(1, 1, 1, 2, 1, 128, 0, false),
  };

  @ParameterizedTest
  @EnumSource(AttentionPath.class)
  void bf16AgainstOracle(AttentionPath path) {
    skipCudnnIfOff(path);
    CudaAttention layers = gpu().attention();
    AttentionPath before = layers.attentionPath();
    layers.attentionPath(path);
    try {
      for (Case c : CASES) {
        run(DType.BF16, c, path + " " + c);
      }
    } finally {
      layers.attentionPath(before);
    }
  }

  /** float32 inputs always take the scalar kernels (the tensor-core ones are bf16 only). */
  @ParameterizedTest
  @EnumSource(AttentionPath.class)
  void f32AgainstOracle(AttentionPath path) {
    skipCudnnIfOff(path);
    CudaAttention layers = gpu().attention();
    AttentionPath before = layers.attentionPath();
    layers.attentionPath(path);
    try {
      run(DType.F32, CASES[0], path + " F32 " + CASES[0]);
      run(DType.F32, CASES[7], path + " F32 " + CASES[7]);
    } finally {
      layers.attentionPath(before);
    }
  }

  /** MOETUNE_TEST_CUDNN=0 leaves cuDNN out (a crashing cuDNN takes the whole JVM down). */
  static void skipCudnnIfOff(AttentionPath path) {
    org.junit.jupiter.api.Assumptions.assumeFalse(
        path == AttentionPath.CUDNN && "0".equals(System.getenv("MOETUNE_TEST_CUDNN")),
        "cuDNN tests off (MOETUNE_TEST_CUDNN=0)");
  }

  private static void run(DType dt, Case c, String what) {
    Pair docs = null;
    if (c.docs) {
      int[] ids = new int[c.b * c.tk];
      for (int b = 0; b < c.b; b++) {
        int doc = 0, pad = 3 + 5 * b;
        for (int j = 0; j < c.tk; j++) {
          if (j > 0 && RND.nextInt(40) == 0) doc++;
          ids[b * c.tk + j] = j >= c.tk - pad ? -1 : doc; // every row ends in padding
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
