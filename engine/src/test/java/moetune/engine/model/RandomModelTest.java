package moetune.engine.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.tensor.DType;
import org.junit.jupiter.api.Test;

/** {@link MixtralModel#createRandom}: weights made on the backend, of the right scale, routable. */
class RandomModelTest {

  @Test
  void weightsHaveTheInitializerScaleNormsAreOneAndRoutingIsSpread() {
    MixtralConfig c =
        RandomMixtral.awkwardConfig(0).toBuilder().set(b -> b.initializerRange = 0.05).build();
    LoraConfig lora = new LoraConfig(4, 8, 0, Set.of("q_proj", "w1", "w3"), false, 3);
    try (CpuBackend cpu = new CpuBackend(2);
        MixtralModel m =
            MixtralModel.createRandom(c, cpu, new ModelOptions(DType.F32, 1).withLora(lora), 9)) {
      float[] q = m.parameter("model.layers.0.self_attn.q_proj.weight").toFloatArray();
      float[] q1 = m.parameter("model.layers.1.self_attn.q_proj.weight").toFloatArray();
      double sq = 0;
      int same = 0;
      for (int i = 0; i < q.length; i++) {
        sq += (double) q[i] * q[i];
        same += q[i] == q1[i] ? 1 : 0;
      }
      assertEquals(0.05, Math.sqrt(sq / q.length), 0.05 * 0.05, "q_proj's standard deviation");
      assertEquals(0, same, "two tensors share no values");
      for (float v : m.parameter("model.layers.1.input_layernorm.weight").toFloatArray()) {
        assertEquals(1f, v);
      }
      assertEquals(lora.parameterCount(c), m.parameters().count(), "only the adapters train");
      // routing is spread over the experts, not collapsed onto one
      Batch b = LoraTest.batch(c, 2, 50, 4);
      m.forward(b);
      int[] top = m.lastRouting()[1].toIntArray();
      int[] load = new int[c.numLocalExperts];
      for (int e : top) {
        load[e]++;
      }
      for (int e = 0; e < load.length; e++) {
        assertTrue(load[e] > top.length / (4 * load.length), "expert " + e + " load " + load[e]);
      }
      m.backward();
    }
  }
}
