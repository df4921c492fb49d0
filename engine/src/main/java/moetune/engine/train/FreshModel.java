package moetune.engine.train;

import java.util.LinkedHashMap;
import java.util.Map;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.tensor.HostTensor;

/**
 * Initial weights for a new Mixtral, as transformers' {@code _init_weights} makes them: every
 * linear and embedding weight drawn from normal(0, initializer_range), every RMSNorm weight 1.
 * (transformers also zeroes the padding token's embedding row when pad_token_id is set.)
 *
 * <p>Deterministic in (config, seed) on every JDK: the normals come from SplitMix64 through the
 * Box-Muller transform, tensor after tensor in hub-name order.
 */
public final class FreshModel {
  private FreshModel() {}

  /** Hub-layout weights by name, float32. */
  public static Map<String, HostTensor> weights(MixtralConfig config, long seed) {
    Map<String, HostTensor> out = new LinkedHashMap<>();
    Normal normal = new Normal(seed);
    float std = (float) config.initializerRange;
    for (Map.Entry<String, long[]> e : MixtralNames.hubShapes(config).entrySet()) {
      long[] shape = e.getValue();
      float[] v = new float[Math.toIntExact(HostTensor.numel(shape))];
      if (shape.length == 1) {
        java.util.Arrays.fill(v, 1f);
      } else {
        for (int i = 0; i < v.length; i++) {
          v[i] = std * normal.next();
        }
        if (e.getKey().equals(MixtralNames.EMBED)
            && config.padTokenId != null
            && config.padTokenId >= 0
            && config.padTokenId < config.vocabSize) {
          java.util.Arrays.fill(
              v,
              config.padTokenId * config.hiddenSize,
              (config.padTokenId + 1) * config.hiddenSize,
              0f);
        }
      }
      out.put(e.getKey(), HostTensor.ofFloats(v, shape));
    }
    return out;
  }

  /** Standard normal samples from SplitMix64 (Box-Muller, both values used). */
  static final class Normal {
    private long state;
    private float spare;
    private boolean hasSpare;

    Normal(long seed) {
      state = seed;
    }

    float next() {
      if (hasSpare) {
        hasSpare = false;
        return spare;
      }
      double u1 = uniform();
      double u2 = uniform();
      double r = Math.sqrt(-2 * Math.log(u1));
      spare = (float) (r * Math.sin(2 * Math.PI * u2));
      hasSpare = true;
      return (float) (r * Math.cos(2 * Math.PI * u2));
    }

    /** Uniform in (0, 1]. */
    private double uniform() {
      state += 0x9e3779b97f4a7c15L;
      return ((DataOrder.mix(state) >>> 11) + 1) * 0x1.0p-53;
    }
  }
}
