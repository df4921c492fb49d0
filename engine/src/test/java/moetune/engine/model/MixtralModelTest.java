package moetune.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import moetune.engine.backend.Backend;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Whole-model behaviour beyond the fixture: gradients of an awkward random model (tied embeddings,
 * sliding window, GQA 5:1, top-3 of 5 experts, padding, router jitter) against finite differences;
 * the attention-mask form of the load-balancing loss; packed documents; cached decoding.
 */
class MixtralModelTest {
  static Backend be;

  @BeforeAll
  static void start() {
    be = new CpuBackend();
  }

  @AfterAll
  static void stop() {
    be.close();
  }

  /** B=2, T=11, vocab 50; row 1 is right-padded (last 3 tokens masked), some labels ignored. */
  static Batch awkwardBatch() {
    SplittableRandom rnd = new SplittableRandom(9);
    int[][] ids = new int[2][11];
    int[][] labels = new int[2][11];
    int[][] mask = new int[2][11];
    for (int b = 0; b < 2; b++) {
      for (int t = 0; t < 11; t++) {
        ids[b][t] = rnd.nextInt(50);
        boolean pad = b == 1 && t >= 8;
        mask[b][t] = pad ? 0 : 1;
        labels[b][t] = pad || t < 2 ? Batch.IGNORE_INDEX : ids[b][t];
      }
    }
    return Batch.of(ids, labels).withAttentionMask(mask);
  }

  /**
   * Directional derivatives of the total loss (CE + 0.05 aux, with an attention mask) along a mix
   * of the gradient's direction and a random one, per parameter tensor, against central differences
   * ({@link GradientCheck}).
   */
  @ParameterizedTest(name = "router_jitter_noise={0}")
  @ValueSource(doubles = {0.0, 0.1})
  void awkwardModelGradientsMatchFiniteDifferences(double jitter) {
    MixtralConfig c = RandomMixtral.awkwardConfig(jitter);
    GradientCheck.matchesFiniteDifferences(
        c,
        RandomMixtral.weights(c, 17),
        new ModelOptions(DType.F32, 5),
        awkwardBatch(),
        be,
        "jitter " + jitter);
  }

  /**
   * transformers' load_balancing_loss_func with an attention mask is the unmasked function over the
   * real tokens only: a right-padded row with its mask gives the losses and gradients of the
   * unpadded row (the padding's labels are -100 and no real token attends to it).
   */
  @Test
  void maskedAuxLossAndGradientsEqualTheUnpaddedRow() {
    int[] tokens = {1, 733, 16289, 28793, 1824, 349, 574, 16020, 2076, 2487};
    int[] padded = Arrays.copyOf(tokens, 14);
    int[] mask = new int[14];
    int[] labelsPadded = new int[14];
    Arrays.fill(labelsPadded, Batch.IGNORE_INDEX);
    for (int t = 0; t < 14; t++) {
      mask[t] = t < tokens.length ? 1 : 0;
      if (t >= tokens.length) {
        padded[t] = 2;
      } else if (t >= 3) {
        labelsPadded[t] = tokens[t];
      }
    }
    int[] labels = Arrays.copyOf(labelsPadded, tokens.length);
    try (MixtralModel m = RandomMixtral.fixture(be, b -> {})) {
      m.zeroGrad();
      Loss plain = m.forward(Batch.of(new int[][] {tokens}, new int[][] {labels}));
      m.backward();
      float[] gradPlain =
          m.parameters().gradFlat() == null
              ? null
              : be.download(m.parameters().gradFlat()).toFloatArray();
      m.zeroGrad();
      Loss masked =
          m.forward(
              Batch.of(new int[][] {padded}, new int[][] {labelsPadded})
                  .withAttentionMask(new int[][] {mask}));
      m.backward();
      float[] gradMasked = be.download(m.parameters().gradFlat()).toFloatArray();
      Loss unmasked = m.evaluate(Batch.of(new int[][] {padded}, new int[][] {labelsPadded}));
      System.out.printf(
          "aux: unpadded %.7f, padded+mask %.7f, padded without mask %.7f%n",
          plain.aux(), masked.aux(), unmasked.aux());
      Parity.assertScalar("aux with mask vs unpadded", masked.aux(), plain.aux(), 1e-5);
      Parity.assertScalar("ce with mask vs unpadded", masked.ce(), plain.ce(), 1e-5);
      assertNotEquals(
          plain.aux(), unmasked.aux(), "without the mask the padding counts in the aux loss");
      Parity.assertClose("gradients, padded+mask vs unpadded", gradMasked, gradPlain, 1e-5);
    }
  }

  /**
   * Two documents packed in one row (docIds, positions restarting, the second document's first
   * label ignored) give the logits of each document run alone, and the gradients of the two runs
   * weighted by their target counts (aux coefficient 0: the aux loss is not additive over runs).
   */
  @Test
  void packedRowEqualsDocumentsRunSeparately() {
    int[] a = {1, 733, 16289, 28793, 1824, 349, 574, 16020, 2076};
    int[] b = {1, 2487, 28804, 733, 28748, 16289, 28793};
    int t = a.length + b.length;
    int[] ids = new int[t];
    int[] pos = new int[t];
    int[] doc = new int[t];
    int[] labels = new int[t];
    for (int i = 0; i < t; i++) {
      boolean first = i < a.length;
      ids[i] = first ? a[i] : b[i - a.length];
      pos[i] = first ? i : i - a.length;
      doc[i] = first ? 0 : 1;
      labels[i] = pos[i] == 0 ? Batch.IGNORE_INDEX : ids[i];
    }
    try (MixtralModel m = RandomMixtral.fixture(be, c -> c.routerAuxLossCoef = 0.0)) {
      m.zeroGrad();
      Loss packed =
          m.forward(
              Batch.of(new int[][] {ids}, new int[][] {labels})
                  .withPacking(new int[][] {pos}, new int[][] {doc}));
      float[] logitsPacked = m.logits().toFloatArray();
      m.backward();
      float[] gradPacked = be.download(m.parameters().gradFlat()).toFloatArray();

      m.zeroGrad();
      int v = m.config().vocabSize;
      float[] logitsSeparate = new float[t * v];
      double ceSum = 0;
      int targets = 0;
      int offset = 0;
      for (int[] d : new int[][] {a, b}) {
        int[] l = d.clone();
        l[0] = Batch.IGNORE_INDEX;
        Loss loss = m.forward(Batch.of(new int[][] {d}, new int[][] {l}));
        System.arraycopy(m.logits().toFloatArray(), 0, logitsSeparate, offset * v, d.length * v);
        m.backward((float) loss.targetTokens() / packed.targetTokens());
        ceSum += (double) loss.ce() * loss.targetTokens();
        targets += loss.targetTokens();
        offset += d.length;
      }
      float[] gradSeparate = be.download(m.parameters().gradFlat()).toFloatArray();
      assertEquals(packed.targetTokens(), targets);
      Parity.assertClose("logits, packed vs separate", logitsPacked, logitsSeparate, 1e-5);
      Parity.assertScalar("ce, packed vs separate", packed.ce(), ceSum / targets, 1e-5);
      Parity.assertClose("gradients, packed vs separate", gradPacked, gradSeparate, 1e-5);
    }
  }

  @Test
  void savedDirectoryReloadsBitIdentically(
      @org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) {
    try (MixtralModel m = MixtralModel.load(Parity.fixtures().resolve("tiny-mixtral"), be)) {
      m.save(tmp.resolve("copy"));
      try (MixtralModel back = MixtralModel.load(tmp.resolve("copy"), be)) {
        assertEquals(m.parameters().hubNames(), back.parameters().hubNames());
        assertArrayEquals(
            be.download(m.parameters().masterFlat()).toFloatArray(),
            be.download(back.parameters().masterFlat()).toFloatArray());
      }
    }
  }

  @Test
  void badInputsAreRefusedInOneLine() {
    try (MixtralModel m = RandomMixtral.fixture(be, c -> {})) {
      IllegalArgumentException e =
          org.junit.jupiter.api.Assertions.assertThrows(
              IllegalArgumentException.class,
              () -> m.forward(Batch.of(new int[][] {{1, 32000}}, null)));
      assertEquals(
          "token id 32000 at index 1 is outside the vocabulary [0, 32000)", e.getMessage());
      e =
          org.junit.jupiter.api.Assertions.assertThrows(
              IllegalArgumentException.class,
              () -> m.forward(Batch.of(new int[][] {{1, 2}}, new int[][] {{1, -5}})));
      assertEquals("label -5 is outside the vocabulary [0, 32000) and is not -100", e.getMessage());
      e =
          org.junit.jupiter.api.Assertions.assertThrows(
              IllegalArgumentException.class,
              () ->
                  MixtralModel.load(
                      Parity.fixtures().resolve("tiny-mixtral"),
                      be,
                      ModelOptions.defaults().withActivations(moetune.engine.tensor.DType.BF16)));
      assertTrue(e.getMessage().contains("does not compute in BF16"), e.getMessage());
    }
  }

  /** Prefill then one token at a time through the KV cache gives the full forward's logits. */
  @ParameterizedTest(name = "sliding_window={0}")
  @ValueSource(ints = {0, 5})
  void cachedDecodingEqualsFullForward(int window) {
    int[][] rows = {
      {1, 733, 16289, 28793, 1824, 349, 574, 16020, 2076, 2487, 28804, 733},
      {1, 28748, 16289, 28793, 5, 6, 7, 8, 9, 10, 11, 12}
    };
    int prompt = 5;
    try (MixtralModel m =
            RandomMixtral.fixture(be, c -> c.slidingWindow = window == 0 ? null : window);
        KvCache cache = m.newKvCache(2, 16)) {
      m.evaluate(Batch.of(rows, null));
      float[] full = m.logits().toFloatArray(); // (2, 12, V)
      int v = m.config().vocabSize;
      int t = rows[0].length;
      int[][] first = {Arrays.copyOf(rows[0], prompt), Arrays.copyOf(rows[1], prompt)};
      HostTensor out = m.decode(cache, first);
      for (int pos = prompt - 1; pos < t; pos++) {
        if (pos >= prompt) {
          out = m.decode(cache, new int[][] {{rows[0][pos]}, {rows[1][pos]}});
        }
        float[] got = out.toFloatArray();
        for (int b = 0; b < 2; b++) {
          float[] want = Arrays.copyOfRange(full, (b * t + pos) * v, (b * t + pos + 1) * v);
          Parity.assertClose(
              "row " + b + " position " + pos + " cached vs full",
              Arrays.copyOfRange(got, b * v, (b + 1) * v),
              want,
              1e-5);
        }
      }
      assertEquals(t, cache.length());
    }
  }
}
