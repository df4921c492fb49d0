package moetune.engine.io;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;

/** Small random Mixtral checkpoints for error and save tests (not the parity fixture). */
final class TinyModels {
  private TinyModels() {}

  /** V=50, D=8, F=12, L=2, H=2, Hkv=1, E=3, K=2. */
  static MixtralConfig config() {
    return MixtralConfig.builder()
        .set(
            b -> {
              b.vocabSize = 50;
              b.hiddenSize = 8;
              b.intermediateSize = 12;
              b.numHiddenLayers = 2;
              b.numAttentionHeads = 2;
              b.numKeyValueHeads = 1;
              b.numLocalExperts = 3;
              b.numExpertsPerTok = 2;
              b.dtype = "float32";
            })
        .build();
  }

  /** Random F32 weights for every canonical tensor, seeded. */
  static Map<String, HostTensor> weights(MixtralConfig c, long seed) {
    Random r = new Random(seed);
    Map<String, HostTensor> m = new java.util.LinkedHashMap<>();
    for (Map.Entry<String, long[]> e : MixtralNames.hubShapes(c).entrySet()) {
      float[] v = new float[(int) HostTensor.numel(e.getValue())];
      for (int i = 0; i < v.length; i++) {
        v[i] = (float) r.nextGaussian();
      }
      m.put(e.getKey(), HostTensor.ofFloats(v, e.getValue()));
    }
    return m;
  }

  /** Saves a model directory with these weights. */
  static void save(Path dir, MixtralConfig c, Map<String, HostTensor> w, long maxShard) {
    MixtralCheckpoint.save(dir, c, null, w::get, DType.F32, maxShard, List.of());
  }

  /** Items for writing a model.safetensors by hand. */
  static List<SafetensorsWriter.Item> items(Map<String, HostTensor> w) {
    List<SafetensorsWriter.Item> items = new ArrayList<>();
    w.forEach((n, t) -> items.add(SafetensorsWriter.Item.of(n, t)));
    return items;
  }
}
