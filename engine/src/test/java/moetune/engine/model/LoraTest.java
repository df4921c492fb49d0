package moetune.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import moetune.engine.backend.Backend;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LoRA on the CPU oracle: the backward against central differences, forward and backward against a
 * plain model with the adapters merged into its weights, frozen storage, and PEFT files.
 */
class LoraTest {
  static final Set<String> ALL = Set.copyOf(LoraConfig.ALL_TARGETS);

  static Batch batch(MixtralConfig c, int b, int t, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    int[][] ids = new int[b][t];
    int[][] labels = new int[b][t];
    for (int i = 0; i < b; i++) {
      for (int j = 0; j < t; j++) {
        ids[i][j] = r.nextInt(c.vocabSize);
        labels[i][j] = j % 5 == 3 ? -100 : r.nextInt(c.vocabSize);
      }
    }
    return Batch.of(ids, labels);
  }

  /** A model with adapters on the given targets whose B are random too (B = 0 hides A's role). */
  static MixtralModel loraModel(
      MixtralConfig c, Map<String, float[]> w, Backend be, LoraConfig lora, long seed) {
    return loraModel(c, w, be, lora, seed, DType.F32);
  }

  /** As above computing in the given activation dtype (BF16 on the GPU). */
  static MixtralModel loraModel(
      MixtralConfig c, Map<String, float[]> w, Backend be, LoraConfig lora, long seed, DType act) {
    MixtralModel m = RandomMixtral.create(c, w, be, new ModelOptions(act, 1).withLora(lora));
    SplittableRandom r = new SplittableRandom(seed);
    for (Parameters.Slice s : m.parameters().slices()) {
      if (s.isLora() && s.name().contains("lora_B")) {
        float[] v = new float[Math.toIntExact(s.numel())];
        for (int i = 0; i < v.length; i++) {
          v[i] = (float) (0.3 * r.nextGaussian() / Math.sqrt(lora.r()));
        }
        m.setParameter(s.name(), HostTensor.ofFloats(v, s.shape()));
      }
    }
    return m;
  }

  static Map<String, HostTensor> adapters(MixtralModel m) {
    Map<String, HostTensor> out = new LinkedHashMap<>();
    for (Parameters.Slice s : m.parameters().slices()) {
      if (s.isLora()) {
        out.put(s.name(), m.parameter(s.name()));
      }
    }
    return out;
  }

  /** The base weights with the adapters merged, by hub name. */
  static Map<String, HostTensor> merged(MixtralModel m) {
    Map<String, HostTensor> a = adapters(m);
    Map<String, HostTensor> out = new LinkedHashMap<>();
    for (String n : m.parameters().hubNames()) {
      out.put(n, LoraWeights.merged(m.parameters().lora(), m.config(), n, m.parameter(n), a::get));
    }
    return out;
  }

  @Test
  void frozenTensorsHaveNoMasterGradientOrState() {
    MixtralConfig c = RandomMixtral.awkwardConfig(0);
    Map<String, float[]> w = RandomMixtral.weights(c, 3);
    Batch b = batch(c, 2, 9, 4);
    try (CpuBackend be = new CpuBackend(2);
        MixtralModel full = RandomMixtral.create(c, w, be, 1);
        MixtralModel frozen =
            RandomMixtral.create(
                c,
                w,
                be,
                new ModelOptions(DType.F32, 1)
                    .withFrozen(n -> n.contains("self_attn") || n.contains("experts")))) {
      Parameters p = frozen.parameters();
      long attnAndExperts = 0;
      for (Parameters.Slice s : full.parameters().slices()) {
        if (s.name().contains("self_attn") || s.name().contains("experts")) {
          attnAndExperts += s.numel();
        }
      }
      assertEquals(full.parameters().count() - attnAndExperts, p.count());
      assertEquals(attnAndExperts, p.frozenCount());
      assertEquals(p.count(), p.masterFlat().numel());
      assertEquals(p.count(), p.gradFlat().numel());
      assertNull(p.grad("model.layers.0.self_attn.q_proj.weight"));
      assertThrows(
          IllegalArgumentException.class,
          () -> frozen.gradient("model.layers.1.block_sparse_moe.experts.2.w3.weight"));
      // same forward, and the trainable tensors' gradients are those of the unfrozen model
      float lossFull = full.forward(b).total();
      full.backward();
      float lossFrozen = frozen.forward(b).total();
      frozen.backward();
      assertEquals(lossFull, lossFrozen);
      for (String n :
          List.of(
              "model.embed_tokens.weight",
              "model.layers.0.block_sparse_moe.gate.weight",
              "model.layers.0.input_layernorm.weight",
              "model.layers.1.post_attention_layernorm.weight",
              "model.norm.weight")) {
        assertArrayEquals(full.gradient(n).toFloatArray(), frozen.gradient(n).toFloatArray(), n);
      }
      assertArrayEquals(
          w.get("model.layers.1.self_attn.o_proj.weight"),
          frozen.parameter("model.layers.1.self_attn.o_proj.weight").toFloatArray());
    }
  }

  @Test
  void backwardMatchesCentralDifferences() {
    MixtralConfig c = RandomMixtral.awkwardConfig(0);
    Map<String, float[]> w = RandomMixtral.weights(c, 5);
    LoraConfig lora = new LoraConfig(3, 6, 0, ALL, false, 9);
    Batch b = batch(c, 2, 7, 6);
    try (CpuBackend be = new CpuBackend(2);
        MixtralModel m = loraModel(c, w, be, lora, 8)) {
      m.zeroGrad();
      m.evaluate(b);
      int[] routing = m.lastRouting()[1].toIntArray();
      m.backward();
      Map<String, HostTensor> a = adapters(m);
      Map<String, float[]> grads = new LinkedHashMap<>();
      for (String n : a.keySet()) {
        grads.put(n, m.gradient(n).toFloatArray());
      }
      SplittableRandom rnd = new SplittableRandom(17);
      List<String> failures = new ArrayList<>();
      for (String n : a.keySet()) {
        float[] g = grads.get(n);
        float[] orig = a.get(n).toFloatArray();
        float[] u = new float[g.length];
        double norm = 0;
        double gn = 0;
        for (float x : g) {
          gn += (double) x * x;
        }
        gn = Math.sqrt(gn);
        for (int i = 0; i < u.length; i++) {
          u[i] =
              (float)
                  ((gn == 0 ? 0 : 0.8 * g[i] / gn)
                      + 0.2 * rnd.nextGaussian() / Math.sqrt(u.length));
          norm += (double) u[i] * u[i];
        }
        double dot = 0;
        for (int i = 0; i < u.length; i++) {
          u[i] /= (float) Math.sqrt(norm);
          dot += (double) u[i] * g[i];
        }
        // Richardson extrapolation of two central differences, (4 D(h/2) - D(h)) / 3, cancels
        // the h^2 term (the loss is strongly curved along the adapters at h = 1e-2), so that steps
        // large enough to keep float32 rounding of the loss (about 1e-6 of it, divided by h) far
        // below the tolerance stay accurate. The direction is mostly the gradient's, so that the
        // derivative compared is not a small difference of large terms. A step size
        // whose perturbed runs route any token differently is skipped (routing is piecewise).
        String outcome = "routing flipped at every step size";
        for (float h : new float[] {5e-2f, 2e-2f, 1e-2f, 4e-3f, 2e-3f, 1e-3f}) {
          double[] diff = new double[2];
          boolean flipped = false;
          for (int k = 0; k < 2 && !flipped; k++) {
            float step = k == 0 ? h : h / 2;
            double[] l = new double[2];
            for (int side = 0; side < 2; side++) {
              float[] moved = orig.clone();
              for (int i = 0; i < u.length; i++) {
                moved[i] += (side == 0 ? step : -step) * u[i];
              }
              m.setParameter(n, HostTensor.ofFloats(moved, a.get(n).shape()));
              l[side] = m.evaluate(b).total();
              flipped |= !java.util.Arrays.equals(m.lastRouting()[1].toIntArray(), routing);
            }
            diff[k] = (l[0] - l[1]) / (2 * step);
          }
          if (flipped) {
            continue;
          }
          double fd = (4 * diff[1] - diff[0]) / 3;
          outcome =
              Math.abs(fd - dot) <= 5e-3 * Math.abs(fd) + 1e-6
                  ? null
                  : String.format("backward %.7f, central differences %.7f (h=%.0e)", dot, fd, h);
          System.out.printf("  %-52s backward %.7f, differences %.7f (h=%.0e)%n", n, dot, fd, h);
          break;
        }
        m.setParameter(n, a.get(n));
        if (outcome != null) {
          failures.add(n + ": " + outcome);
        }
      }
      assertTrue(failures.isEmpty(), String.join("\n", failures));
    }
  }

  @Test
  void forwardAndBackwardMatchTheMergedWeights() {
    MixtralConfig c = RandomMixtral.awkwardConfig(0);
    Map<String, float[]> w = RandomMixtral.weights(c, 11);
    LoraConfig lora = new LoraConfig(4, 8, 0, ALL, true, 12);
    Batch b = batch(c, 2, 11, 13);
    try (CpuBackend be = new CpuBackend(2);
        MixtralModel m = loraModel(c, w, be, lora, 14);
        MixtralModel plain =
            MixtralModel.create(c, merged(m), be, new ModelOptions(DType.F32, 1))) {
      m.zeroGrad();
      m.evaluate(b);
      float[] logits = m.logits().toFloatArray();
      m.backward();
      plain.zeroGrad();
      plain.evaluate(b);
      Parity.assertClose("logits", logits, plain.logits().toFloatArray(), 1e-5);
      plain.backward();
      float s = lora.scaling();
      int r = lora.r();
      for (int l = 0; l < c.numHiddenLayers; l++) {
        String p = "model.layers." + l + ".";
        for (String t :
            List.of(
                "self_attn.q_proj",
                "self_attn.k_proj",
                "self_attn.v_proj",
                "self_attn.o_proj",
                "block_sparse_moe.gate")) {
          String ln = p + (t.equals("block_sparse_moe.gate") ? "mlp.gate" : t);
          HostTensor dw = plain.gradient(p + t + ".weight"); // (O, I)
          checkFactorGradients(
              m,
              ln + ".lora_A.weight",
              ln + ".lora_B.weight",
              dw.toFloatArray(),
              (int) dw.dim(0),
              (int) dw.dim(1),
              r,
              s,
              0,
              0,
              0);
        }
        int e = c.numLocalExperts;
        int f = c.intermediateSize;
        int d = c.hiddenSize;
        for (int x = 0; x < e; x++) {
          String hub = p + "block_sparse_moe.experts." + x + ".";
          float[] gu = new float[2 * f * d];
          System.arraycopy(plain.gradient(hub + "w1.weight").toFloatArray(), 0, gu, 0, f * d);
          System.arraycopy(plain.gradient(hub + "w3.weight").toFloatArray(), 0, gu, f * d, f * d);
          checkFactorGradients(
              m,
              p + "mlp.experts.gate_up_proj.lora_A",
              p + "mlp.experts.gate_up_proj.lora_B",
              gu,
              2 * f,
              d,
              r,
              s,
              (long) x * r * d,
              (long) x * 2 * f * r,
              x);
          checkFactorGradients(
              m,
              p + "mlp.experts.down_proj.lora_A",
              p + "mlp.experts.down_proj.lora_B",
              plain.gradient(hub + "w2.weight").toFloatArray(),
              d,
              f,
              r,
              s,
              (long) x * r * f,
              (long) x * d * r,
              x);
        }
      }
    }
  }

  /**
   * With W' = W + s B A, d/dB = s dW' A^T and d/dA = s B^T dW': the adapter's gradients from the
   * merged model's weight gradient dW (O, I), for the expert at the given element offsets.
   */
  static void checkFactorGradients(
      MixtralModel m,
      String an,
      String bn,
      float[] dw,
      int o,
      int in,
      int r,
      float s,
      long aOff,
      long bOff,
      int expert) {
    float[] a = m.parameter(an).toFloatArray();
    float[] b = m.parameter(bn).toFloatArray();
    float[] ga = m.gradient(an).toFloatArray();
    float[] gb = m.gradient(bn).toFloatArray();
    float[] wantA = new float[r * in];
    float[] gotA = new float[r * in];
    float[] wantB = new float[o * r];
    float[] gotB = new float[o * r];
    for (int q = 0; q < r; q++) {
      for (int j = 0; j < in; j++) {
        double acc = 0;
        for (int i = 0; i < o; i++) {
          acc += (double) b[(int) (bOff + i * r + q)] * dw[i * in + j];
        }
        wantA[q * in + j] = (float) (s * acc);
        gotA[q * in + j] = ga[(int) (aOff + q * in + j)];
      }
    }
    for (int i = 0; i < o; i++) {
      for (int q = 0; q < r; q++) {
        double acc = 0;
        for (int j = 0; j < in; j++) {
          acc += (double) dw[i * in + j] * a[(int) (aOff + q * in + j)];
        }
        wantB[i * r + q] = (float) (s * acc);
        gotB[i * r + q] = gb[(int) (bOff + i * r + q)];
      }
    }
    Parity.assertClose(an + " expert " + expert, gotA, wantA, 1e-4);
    Parity.assertClose(bn + " expert " + expert, gotB, wantB, 1e-4);
  }

  @Test
  void peftFilesRoundTripAndMergedExportGivesTheSameLogits(@TempDir Path tmp) {
    MixtralConfig c = RandomMixtral.awkwardConfig(0);
    Map<String, float[]> w = RandomMixtral.weights(c, 21);
    LoraConfig lora =
        new LoraConfig(2, 5, 0, Set.of("q_proj", "v_proj", "w1", "w3", "w2"), false, 22);
    Batch b = batch(c, 1, 8, 23);
    try (CpuBackend be = new CpuBackend(2);
        MixtralModel m = loraModel(c, w, be, lora, 24)) {
      m.evaluate(b);
      float[] want = m.logits().toFloatArray();
      Path base = tmp.resolve("base");
      m.save(base); // the base weights, without adapters
      Path adapter = tmp.resolve("adapter");
      moetune.engine.io.ModelDirectory.replace(
          adapter, dir -> LoraWeights.write(dir, m, base.toString()));
      try (MixtralModel back =
          MixtralModel.load(base, adapter, be, new ModelOptions(DType.F32, 1))) {
        assertEquals(lora.targets(), back.parameters().lora().targets());
        back.evaluate(b);
        assertArrayEquals(want, back.logits().toFloatArray());
      }
      try (MixtralModel mergedModel =
          MixtralModel.create(c, merged(m), be, new ModelOptions(DType.F32, 1))) {
        mergedModel.evaluate(b);
        Parity.assertClose("merged logits", mergedModel.logits().toFloatArray(), want, 1e-5);
      }
    }
  }

  @Test
  void configRefusesWhatPeftCannotLoad() {
    assertThrows(
        IllegalArgumentException.class,
        () -> new LoraConfig(8, 16, 0, Set.of("w1"), false, 0),
        "w1 without w3");
    assertThrows(
        IllegalArgumentException.class,
        () -> new LoraConfig(8, 16, 0.1, Set.of("q_proj", "gate"), false, 0),
        "dropout with a target_parameters target");
    assertThrows(
        IllegalArgumentException.class,
        () -> new LoraConfig(8, 16, 0, Set.of("lm_head"), false, 0));
    assertEquals(16f / 8, new LoraConfig(8, 16, 0, Set.of("q_proj"), false, 0).scaling());
    assertEquals(
        (float) (16 / Math.sqrt(8)), new LoraConfig(8, 16, 0, Set.of("q_proj"), true, 0).scaling());
  }
}
