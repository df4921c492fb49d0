package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.GpuTesting.check;
import static moetune.engine.backend.cuda.GpuTesting.cpu;
import static moetune.engine.backend.cuda.GpuTesting.gpu;
import static moetune.engine.backend.cuda.GpuTesting.ints;
import static moetune.engine.backend.cuda.GpuTesting.poisoned;
import static moetune.engine.backend.cuda.GpuTesting.randn;
import static moetune.engine.backend.cuda.GpuTesting.sync;
import static moetune.engine.backend.cuda.GpuTesting.tol;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import moetune.engine.backend.AttnSpec;
import moetune.engine.backend.cuda.GpuTesting.Pair;
import moetune.engine.tensor.DType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * cuDNN's fused attention (CudnnAttention) called directly, so a graph cuDNN refuses fails here
 * instead of falling back to the own kernels as the backend does: forward and backward against the
 * CPU oracle in bf16 for causal attention, GQA 32/8 and 4/2, MHA, head dims 64 and 128 (and 72, a
 * multiple of 8 the own tensor-core kernels do not take), sliding windows, lengths that are not
 * tile multiples, and packed documents with padding (cuDNN's ragged sequences). Skipped visibly
 * where cuDNN 9 is not installed.
 */
@Tag("gpu")
class CudnnAttentionTest {
  private static CudnnAttention cudnn;

  @BeforeAll
  static void load() {
    Assumptions.assumeFalse(
        "0".equals(System.getenv("MOETUNE_TEST_CUDNN")), "cuDNN tests off (MOETUNE_TEST_CUDNN=0)");
    CudaBackend g = gpu();
    try {
      cudnn = new CudnnAttention(new Cudnn(g.streamAddress()));
    } catch (CudaException e) {
      Assumptions.abort("cuDNN 9 not available here: " + e.getMessage());
    }
    System.out.println("cuDNN " + cudnn.cudnn().version() + " from " + cudnn.cudnn().library());
  }

  @AfterAll
  static void unload() {
    if (cudnn != null) cudnn.close();
  }

  record Case(int b, int t, int h, int hkv, int hd, int window, boolean docs) {
    Case(int b, int t, int h, int hkv, int hd, int window) {
      this(b, t, h, hkv, hd, window, false);
    }
  }

  @Test
  void forwardAndBackwardAgainstOracle() {
    Case[] cases = {
      new Case(2, 200, 4, 2, 128, 0),
      new Case(2, 200, 4, 4, 64, 0),
      new Case(1, 150, 32, 8, 128, 0),
      new Case(1, 256, 32, 8, 64, 0),
      new Case(2, 300, 4, 2, 128, 40),
      new Case(1, 290, 4, 1, 64, 33),
      new Case(1, 130, 4, 2, 72, 0),
    };
    for (Case c : cases) {
      run(c);
    }
  }

  /**
   * Packed documents (random lengths, some a single token) with left padding in one row and
   * trailing padding in the other, as ragged sequences: outputs, log-sum-exp (-inf at padding) and
   * gradients against the oracle's doc-id mask.
   */
  @Test
  void packedDocumentsWithPaddingAgainstOracle() {
    Case[] cases = {
      new Case(2, 200, 4, 2, 128, 0, true),
      new Case(2, 257, 4, 4, 64, 0, true),
      new Case(1, 300, 32, 8, 128, 0, true),
      new Case(2, 190, 4, 2, 64, 24, true),
    };
    for (Case c : cases) {
      run(c);
    }
  }

  /**
   * Doc ids of B rows of T: documents of random length, row 0 padded at the end, row 1 at the
   * start.
   */
  static int[] docIds(int b, int t, java.util.Random rnd) {
    int[] ids = new int[b * t];
    for (int r = 0; r < b; r++) {
      int doc = 0, lead = r % 2 == 1 ? 5 : 0, tail = r % 2 == 0 ? 7 : 0;
      for (int j = 0; j < t; j++) {
        if (j > lead && rnd.nextInt(j < 12 ? 3 : 45) == 0) doc++;
        ids[r * t + j] = j < lead || j >= t - tail ? -1 : doc;
      }
    }
    return ids;
  }

  @Test
  void saysWhatItDoesNotTake() {
    try (Pair q = randn(DType.BF16, 1, 8, 2, 64)) {
      CudaTensor t = gpu().ct(q.g(), "test", "q");
      assertNull(CudnnAttention.unsupported(AttnSpec.causal(1, 8, 0), 64, t));
      assertEquals(
          "query length < key length (decoding with a cache)",
          CudnnAttention.unsupported(new AttnSpec(1, 4, 8, null, 0), 64, t));
      assertEquals(
          "head dim 136 (cuDNN takes multiples of 8 up to 128)",
          CudnnAttention.unsupported(AttnSpec.causal(1, 8, 0), 136, t));
    }
    try (Pair f = randn(DType.F32, 1, 8, 2, 64)) {
      assertNotNull(
          CudnnAttention.unsupported(AttnSpec.causal(1, 8, 0), 64, gpu().ct(f.g(), "test", "q")));
    }
  }

  private static void run(Case c) {
    String what = "cuDNN " + c;
    long n = (long) c.b * c.t;
    Pair docs = c.docs ? ints(docIds(c.b, c.t, new java.util.Random(c.t)), n) : null;
    try {
      run(c, what, docs, n);
    } finally {
      if (docs != null) docs.close();
    }
  }

  private static void run(Case c, String what, Pair docs, long n) {
    AttnSpec cs = new AttnSpec(c.b, c.t, c.t, docs == null ? null : docs.c(), c.window);
    AttnSpec spec = new AttnSpec(c.b, c.t, c.t, docs == null ? null : docs.g(), c.window);
    assertNull(cudnn.unsupportedDocuments(gpu().context(), spec, c.hd), what);
    CudaBackend g = gpu();
    try (Pair q = randn(DType.BF16, 1, n, c.h, c.hd);
        Pair k = randn(DType.BF16, 1, n, c.hkv, c.hd);
        Pair v = randn(DType.BF16, 1, n, c.hkv, c.hd);
        Pair out = poisoned(DType.BF16, n, c.h, c.hd);
        Pair lse = poisoned(DType.F32, n, c.h)) {
      cpu().attentionForward(q.c(), k.c(), v.c(), cs, out.c(), lse.c());
      Runnable forward =
          () ->
              cudnn.forward(
                  g.context(),
                  g.ct(q.g(), "test", "q"),
                  g.ct(k.g(), "test", "k"),
                  g.ct(v.g(), "test", "v"),
                  g.ct(out.g(), "test", "out"),
                  g.ct(lse.g(), "test", "lse"),
                  spec,
                  c.h,
                  c.hkv,
                  c.hd);
      forward.run();
      // the same pointers again: the finalized variant pack is reused, none is added
      int packs = cudnn.variantPacks();
      forward.run();
      assertEquals(packs, cudnn.variantPacks(), "variant packs after a repeated call, " + what);
      check("forward out " + what, out, tol(DType.BF16));
      check("forward lse " + what, lse, tol(DType.BF16));
      sync(out);
      sync(lse);
      try (Pair dOut = randn(DType.BF16, 1, n, c.h, c.hd);
          Pair dq = poisoned(DType.BF16, n, c.h, c.hd);
          Pair dk = poisoned(DType.BF16, n, c.hkv, c.hd);
          Pair dv = poisoned(DType.BF16, n, c.hkv, c.hd)) {
        cpu()
            .attentionBackward(
                dOut.c(), q.c(), k.c(), v.c(), out.c(), lse.c(), cs, dq.c(), dk.c(), dv.c());
        cudnn.backward(
            g.context(),
            g.ct(dOut.g(), "test", "dOut"),
            g.ct(q.g(), "test", "q"),
            g.ct(k.g(), "test", "k"),
            g.ct(v.g(), "test", "v"),
            g.ct(out.g(), "test", "out"),
            g.ct(lse.g(), "test", "lse"),
            spec,
            g.ct(dq.g(), "test", "dq"),
            g.ct(dk.g(), "test", "dk"),
            g.ct(dv.g(), "test", "dv"),
            c.h,
            c.hkv,
            c.hd);
        check("backward dq " + what, dq, tol(DType.BF16));
        check("backward dk " + what, dk, tol(DType.BF16));
        check("backward dv " + what, dv, tol(DType.BF16));
      }
    }
  }
}
