package moetune.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Map;
import moetune.engine.backend.Backend;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.tensor.DType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The model's router z-loss (ST-MoE, averaged over layers and tokens): its value against a host
 * computation from independently computed router logits, its gradient against finite differences,
 * and that a zero coefficient changes nothing.
 */
class RouterZLossTest {
  static Backend be;

  @BeforeAll
  static void start() {
    be = new CpuBackend();
  }

  @AfterAll
  static void stop() {
    be.close();
  }

  private static final ModelOptions OPTIONS = new ModelOptions(DType.F32, 5);

  /** The config's aux coefficient and the given z-loss one. */
  private static LossWeights withZ(MixtralConfig c, double coef) {
    return new LossWeights(c.routerAuxLossCoef, coef);
  }

  /**
   * Total loss = CE + 0.05 aux + 0.02 z on the awkward model with padding: the z term (z is about
   * 150 here, so 0.02 z is of the order of the CE) moves every parameter's gradient, the router's
   * and, through the router's input, everything below it; without its gradient the check fails on
   * the embeddings by 1%.
   */
  @Test
  void gradientsWithZLossMatchFiniteDifferences() {
    MixtralConfig c = RandomMixtral.awkwardConfig(0);
    GradientCheck.matchesFiniteDifferences(
        c,
        RandomMixtral.weights(c, 17),
        OPTIONS,
        new LossWeights(c.routerAuxLossCoef, 0.02),
        MixtralModelTest.awkwardBatch(),
        be,
        "router z-loss coefficient 0.02");
  }

  /**
   * With every attention output and expert output projection zeroed, each layer's MoE input is
   * RMSNorm(embedding) * post_attention_layernorm, so the router logits, and z = mean over the real
   * tokens of all layers of logsumexp(logits)^2, can be computed on the host in double.
   */
  @Test
  void zEqualsMeanSquaredLogSumExpOfTheRouterLogits() {
    MixtralConfig c = RandomMixtral.awkwardConfig(0);
    Map<String, float[]> w = RandomMixtral.weights(c, 31);
    for (int l = 0; l < c.numHiddenLayers; l++) {
      Arrays.fill(w.get("model.layers." + l + ".self_attn.o_proj.weight"), 0f);
      Arrays.fill(w.get("model.layers." + l + ".mlp.experts.down_proj"), 0f);
    }
    Batch batch = MixtralModelTest.awkwardBatch();
    double masked = hostZ(c, w, batch, true);
    double unmasked = hostZ(c, w, batch, false);
    try (MixtralModel m = RandomMixtral.create(c, w, be, OPTIONS)) {
      Loss loss = m.forward(batch, withZ(c, 0.3));
      System.out.printf(
          "z: model %.7f, host %.7f (padding included: %.7f)%n", loss.z(), masked, unmasked);
      Parity.assertScalar("z vs host logsumexp^2", loss.z(), masked, 1e-5);
      assertTrue(
          Math.abs(unmasked - masked) > 1e-3 * masked,
          "the padding's rows change z, so the mask is checked: " + unmasked + " vs " + masked);
      Parity.assertScalar(
          "total", loss.total(), loss.ce() + 0.05 * loss.aux() + 0.3 * loss.z(), 1e-6);
    }
  }

  /** z from the host: router logits per layer and (real) token, in double. */
  private static double hostZ(
      MixtralConfig c, Map<String, float[]> w, Batch batch, boolean useMask) {
    int d = c.hiddenSize;
    int e = c.numLocalExperts;
    float[] emb = w.get("model.embed_tokens.weight"); // (V, D)
    double sum = 0;
    int rows = 0;
    for (int l = 0; l < c.numHiddenLayers; l++) {
      float[] norm2 = w.get("model.layers." + l + ".post_attention_layernorm.weight"); // (D)
      float[] wg = w.get("model.layers." + l + ".mlp.gate.weight"); // (E, D)
      for (int i = 0; i < batch.tokens(); i++) {
        if (useMask && batch.padding(i)) {
          continue;
        }
        int id = batch.inputIds()[i];
        double ms = 0;
        for (int j = 0; j < d; j++) {
          ms += (double) emb[id * d + j] * emb[id * d + j];
        }
        double rstd = 1 / Math.sqrt(ms / d + c.rmsNormEps);
        double[] logits = new double[e];
        double max = Double.NEGATIVE_INFINITY;
        for (int x = 0; x < e; x++) {
          for (int j = 0; j < d; j++) {
            logits[x] += wg[x * d + j] * (emb[id * d + j] * rstd * norm2[j]);
          }
          max = Math.max(max, logits[x]);
        }
        double se = 0;
        for (double v : logits) {
          se += Math.exp(v - max);
        }
        double lse = max + Math.log(se);
        sum += lse * lse;
        rows++;
      }
    }
    return sum / rows;
  }

  /**
   * A zero coefficient is the model without the z-loss, bit for bit: z is reported as 0 and total =
   * ce + aux_coef * aux exactly. A non-zero one leaves ce and aux bit-identical, adds exactly coef
   * * z to the total, and changes the gradients.
   */
  @Test
  void zeroCoefficientLeavesLossesAndGradientsBitIdentical() {
    MixtralConfig c = RandomMixtral.awkwardConfig(0);
    Map<String, float[]> w = RandomMixtral.weights(c, 17);
    Batch batch = MixtralModelTest.awkwardBatch();
    Loss plain;
    float[] gradPlain;
    try (MixtralModel m = RandomMixtral.create(c, w, be, new ModelOptions(DType.F32, 5))) {
      plain = m.forward(batch);
      m.backward();
      gradPlain = be.download(m.parameters().gradFlat()).toFloatArray();
    }
    Loss zero;
    float[] gradZero;
    try (MixtralModel m = RandomMixtral.create(c, w, be, OPTIONS)) {
      zero = m.forward(batch, withZ(c, 0.0));
      m.backward(1f, withZ(c, 0.0));
      gradZero = be.download(m.parameters().gradFlat()).toFloatArray();
    }
    assertEquals(0f, plain.z());
    assertEquals(plain.ce() + (float) c.routerAuxLossCoef * plain.aux(), plain.total());
    assertEquals(plain, zero);
    assertArrayEquals(gradPlain, gradZero);

    float coef = 0.02f;
    try (MixtralModel m = RandomMixtral.create(c, w, be, OPTIONS)) {
      Loss z = m.forward(batch, withZ(c, coef));
      m.backward(1f, withZ(c, coef));
      float[] gradZ = be.download(m.parameters().gradFlat()).toFloatArray();
      assertEquals(plain.ce(), z.ce());
      assertEquals(plain.aux(), z.aux());
      assertTrue(z.z() > 0, "z = " + z.z());
      assertEquals(plain.total() + coef * z.z(), z.total());
      assertFalse(Arrays.equals(gradPlain, gradZ), "the z-loss must move the gradients");
    }
  }

  @Test
  void negativeOrNonFiniteCoefficientIsRefused() {
    for (double bad : new double[] {-0.001, Double.NaN, Double.POSITIVE_INFINITY}) {
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> new LossWeights(0.02, bad));
      assertTrue(e.getMessage().contains("z-loss"), e.getMessage());
    }
  }
}
