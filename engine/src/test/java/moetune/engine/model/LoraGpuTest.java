package moetune.engine.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.Map;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.backend.cuda.CudaBackend;
import moetune.engine.backend.cuda.CudaProbe;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * LoRA on the CUDA backend against the CPU oracle ({@link LoraTest}'s models): the adapters are
 * plain backend ops (dense products, and grouped products with the rank as their width on the
 * experts), so the float32 GPU mode must hold the CPU parity bound, 1e-4 relative, on the logits
 * and every adapter gradient. The bf16 mode stores the frozen base once, in bf16. Skips visibly
 * without a CUDA device.
 */
@Tag("gpu")
class LoraGpuTest {
  static CudaBackend gpu;

  static synchronized CudaBackend gpu() {
    String why = CudaProbe.unavailableReason(0);
    Assumptions.assumeTrue(why == null, () -> "GPU test skipped: " + why);
    if (gpu == null) {
      gpu = new CudaBackend(0, false);
      System.out.println("LoraGpuTest on " + gpu.describe());
    }
    return gpu;
  }

  @AfterAll
  static void close() {
    if (gpu != null) {
      gpu.close();
    }
  }

  /** {logits, then every adapter's gradient by name} of one forward and backward. */
  static Map<String, float[]> run(MixtralModel m, Batch b) {
    Map<String, float[]> out = new LinkedHashMap<>();
    m.zeroGrad();
    m.evaluate(b);
    out.put("logits", m.logits().toFloatArray());
    m.backward();
    for (Parameters.Slice s : m.parameters().slices()) {
      if (s.isLora()) {
        out.put(s.name(), m.gradient(s.name()).toFloatArray());
      }
    }
    return out;
  }

  @Test
  void float32MatchesTheCpuOracle() {
    MixtralConfig c = RandomMixtral.awkwardConfig(0);
    Map<String, float[]> w = RandomMixtral.weights(c, 11);
    LoraConfig lora = new LoraConfig(4, 8, 0, LoraTest.ALL, true, 12);
    Batch b = LoraTest.batch(c, 2, 11, 13);
    Map<String, float[]> want;
    try (CpuBackend cpu = new CpuBackend(2);
        MixtralModel m = LoraTest.loraModel(c, w, cpu, lora, 14)) {
      want = run(m, b);
    }
    try (MixtralModel m = LoraTest.loraModel(c, w, gpu(), lora, 14)) {
      assertEquals(lora.parameterCount(c), m.parameters().gradFlat().numel());
      assertNull(m.parameters().grad("model.layers.0.mlp.experts.gate_up_proj"));
      Map<String, float[]> got = run(m, b);
      for (String n : want.keySet()) {
        double err = Parity.assertClose(n, got.get(n), want.get(n), 1e-4);
        System.out.printf("  %-48s relative error %.2e%n", n, err);
      }
    }
  }

  @Test
  void bf16StoresTheFrozenBaseOnceInBf16() {
    MixtralConfig c = RandomMixtral.awkwardConfig(0);
    Map<String, float[]> w = RandomMixtral.weights(c, 21);
    LoraConfig lora = new LoraConfig(4, 8, 0, LoraTest.ALL, false, 22);
    Batch b = LoraTest.batch(c, 2, 9, 23);
    long base = 0;
    for (long[] shape : MixtralNames.hubShapes(c).values()) {
      base += HostTensor.numel(shape);
    }
    float[] want;
    try (CpuBackend cpu = new CpuBackend(2);
        MixtralModel m = LoraTest.loraModel(c, w, cpu, lora, 24)) {
      want = run(m, b).get("logits");
    }
    try (MixtralModel m = LoraTest.loraModel(c, w, gpu(), lora, 24, DType.BF16)) {
      Parameters p = m.parameters();
      assertEquals(DType.BF16, p.frozenFlat().dtype());
      assertEquals(base, p.frozenFlat().numel(), "every base weight, once");
      assertEquals(lora.parameterCount(c), p.masterFlat().numel());
      Map<String, float[]> got = run(m, b);
      // bf16 rounding of weights and activations: the bound of MixtralModelGpuTest's bf16 logits
      double err = Parity.relError(got.get("logits"), want);
      System.out.printf("  bf16 logits vs CPU float32: relative error %.2e%n", err);
      assertTrue(err < 3e-2, "bf16 logits relative error " + err);
      for (Map.Entry<String, float[]> e : got.entrySet()) {
        for (float v : e.getValue()) {
          assertTrue(Float.isFinite(v), e.getKey() + " has a non-finite value");
        }
      }
    }
  }
}
