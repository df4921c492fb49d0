package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.GpuTesting.RND;
import static moetune.engine.backend.cuda.GpuTesting.check;
import static moetune.engine.backend.cuda.GpuTesting.cpu;
import static moetune.engine.backend.cuda.GpuTesting.gpu;
import static moetune.engine.backend.cuda.GpuTesting.ints;
import static moetune.engine.backend.cuda.GpuTesting.poisoned;
import static moetune.engine.backend.cuda.GpuTesting.randn;
import static moetune.engine.backend.cuda.GpuTesting.sync;
import static moetune.engine.backend.cuda.GpuTesting.tol;

import moetune.engine.backend.AttnSpec;
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
    AttnSpec sc = new AttnSpec(c.b, c.tq, c.tk, docs == null ? null : docs.c(), c.window);
    AttnSpec sg = new AttnSpec(c.b, c.tq, c.tk, docs == null ? null : docs.g(), c.window);
    long nq = (long) c.b * c.tq, nk = (long) c.b * c.tk;
    try (Pair q = randn(dt, 1, nq, c.h, c.hd);
        Pair k = randn(dt, 1, nk, c.hkv, c.hd);
        Pair v = randn(dt, 1, nk, c.hkv, c.hd);
        Pair out = poisoned(dt, nq, c.h, c.hd);
        Pair lse = poisoned(DType.F32, nq, c.h)) {
      cpu().attentionForward(q.c(), k.c(), v.c(), sc, out.c(), lse.c());
      gpu().attentionForward(q.g(), k.g(), v.g(), sg, out.g(), lse.g());
      check("attentionForward out " + what, out, tol(dt));
      check("attentionForward lse " + what, lse, tol(dt));
      sync(out);
      sync(lse);
      try (Pair dOut = randn(dt, 1, nq, c.h, c.hd);
          Pair dq = poisoned(dt, nq, c.h, c.hd);
          Pair dk = poisoned(dt, nk, c.hkv, c.hd);
          Pair dv = poisoned(dt, nk, c.hkv, c.hd)) {
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
    } finally {
      if (docs != null) docs.close();
    }
  }
}
