package moetune.engine.model;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import moetune.engine.backend.Backend;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.io.MixtralCheckpoint;
import moetune.engine.tensor.HostTensor;

/** Test models: random awkward ones, and the fixture's weights by name. */
final class RandomMixtral {
  private RandomMixtral() {}

  /**
   * An awkward config: hidden 100, 5 query heads of dim 20 over 1 kv head, intermediate 80, 5
   * experts, top-3, vocab 50, 2 layers, tied embeddings, sliding window 6.
   */
  static MixtralConfig awkwardConfig(double jitter) {
    MixtralConfig.Builder b = MixtralConfig.builder();
    b.vocabSize = 50;
    b.hiddenSize = 100;
    b.intermediateSize = 80;
    b.numHiddenLayers = 2;
    b.numAttentionHeads = 5;
    b.numKeyValueHeads = 1;
    b.numLocalExperts = 5;
    b.numExpertsPerTok = 3;
    b.tieWordEmbeddings = true;
    b.slidingWindow = 6;
    b.ropeTheta = 10000;
    b.routerAuxLossCoef = 0.05;
    b.routerJitterNoise = jitter;
    b.bosTokenId = 1;
    b.eosTokenIds = java.util.List.of(2);
    return b.build();
  }

  /** Random weights by fused name, scaled so activations stay O(1). */
  static Map<String, float[]> weights(MixtralConfig c, long seed) {
    SplittableRandom rnd = new SplittableRandom(seed);
    Map<String, float[]> out = new LinkedHashMap<>();
    try (Backend probe = new moetune.engine.backend.cpu.CpuBackend(1);
        Parameters p = Parameters.allocate(probe, c, moetune.engine.tensor.DType.F32)) {
      for (Parameters.Slice s : p.slices()) {
        float[] v = new float[Math.toIntExact(s.numel())];
        String n = s.name();
        double std =
            n.contains("embed")
                ? 1.0
                : n.endsWith("gate.weight")
                    ? 10.0 / Math.sqrt(c.hiddenSize)
                    : n.endsWith("down_proj")
                        ? 1.0 / Math.sqrt(c.intermediateSize)
                        : 1.0 / Math.sqrt(s.shape()[s.shape().length - 1]);
        for (int i = 0; i < v.length; i++) {
          v[i] =
              s.isVector()
                  ? (float) (1 + 0.2 * rnd.nextGaussian())
                  : (float) (std * rnd.nextGaussian());
        }
        out.put(n, v);
      }
    }
    return out;
  }

  static MixtralModel create(MixtralConfig c, Map<String, float[]> w, Backend be, long seed) {
    return create(c, w, be, new ModelOptions(moetune.engine.tensor.DType.F32, seed));
  }

  static MixtralModel create(MixtralConfig c, Map<String, float[]> w, Backend be, ModelOptions o) {
    Map<String, HostTensor> host = new LinkedHashMap<>();
    try (Backend probe = new moetune.engine.backend.cpu.CpuBackend(1);
        Parameters p = Parameters.allocate(probe, c, moetune.engine.tensor.DType.F32)) {
      for (Map.Entry<String, float[]> e : w.entrySet()) {
        host.put(e.getKey(), HostTensor.ofFloats(e.getValue(), p.slice(e.getKey()).shape()));
      }
    }
    return MixtralModel.create(c, host, be, o);
  }

  /** The fixture's weights by hub name, and its config changed by the builder function. */
  static MixtralModel fixture(
      Backend be, java.util.function.Consumer<MixtralConfig.Builder> change) {
    try (MixtralCheckpoint ck = MixtralCheckpoint.load(Parity.fixtures().resolve("tiny-mixtral"))) {
      Map<String, HostTensor> w = new LinkedHashMap<>();
      for (String n : ck.names()) {
        w.put(n, ck.tensor(n));
      }
      MixtralConfig c = ck.config().toBuilder().set(change).build();
      return MixtralModel.create(c, w, be, ModelOptions.defaults());
    }
  }
}
