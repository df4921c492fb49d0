package moetune.engine.train;

import java.util.ArrayList;
import java.util.List;
import moetune.engine.backend.Backend;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.ModelOptions;
import moetune.sequences.PackedSequence;

/** A small Mixtral and synthetic packed data for trainer tests on the CPU. */
final class TinyMixtral {
  private TinyMixtral() {}

  static final int VOCAB = 48;

  static MixtralConfig config(double aux) {
    return MixtralConfig.builder()
        .set(
            b -> {
              b.vocabSize = VOCAB;
              b.hiddenSize = 16;
              b.intermediateSize = 24;
              b.numHiddenLayers = 2;
              b.numAttentionHeads = 4;
              b.numKeyValueHeads = 2;
              b.numLocalExperts = 4;
              b.numExpertsPerTok = 2;
              b.maxPositionEmbeddings = 128;
              b.routerAuxLossCoef = aux;
              b.initializerRange = 0.1;
            })
        .build();
  }

  static MixtralModel model(Backend be, MixtralConfig c, long seed) {
    return model(be, c, seed, ModelOptions.defaults());
  }

  static MixtralModel model(Backend be, MixtralConfig c, long seed, ModelOptions options) {
    return MixtralModel.create(c, FreshModel.weights(c, seed), be, options);
  }

  /**
   * count sequences of length t, each packing two documents of a counting pattern with a pad tail,
   * so document masks, restarting positions and padding all take part.
   */
  static SequenceSource data(int count, int t, long seed) {
    List<PackedSequence> out = new ArrayList<>();
    long x = seed;
    for (int s = 0; s < count; s++) {
      int[] ids = new int[t];
      int[] labels = new int[t];
      int[] pos = new int[t];
      int[] docs = new int[t];
      x = DataOrder.mix(x + 1);
      int split = t / 2 - 1 + (int) Long.remainderUnsigned(x, 3);
      int end = t - 2;
      for (int i = 0; i < t; i++) {
        boolean pad = i >= end;
        int doc = i < split ? 0 : 1;
        int start = doc == 0 ? 0 : split;
        x = DataOrder.mix(x + 1);
        int base = (int) Long.remainderUnsigned(x >>> 20, 4);
        ids[i] = pad ? 0 : (3 + (i - start) * 2 + base * (i == start ? 1 : 0)) % VOCAB;
        pos[i] = pad ? 0 : i - start;
        docs[i] = pad ? -1 : doc;
      }
      for (int i = 0; i < t; i++) { // HF labels: every token but a document's first and padding
        boolean firstOfDoc = i == 0 || docs[i] != docs[i - 1];
        labels[i] = docs[i] < 0 || firstOfDoc ? -100 : ids[i];
      }
      out.add(new PackedSequence(ids, labels, pos, docs));
    }
    return SequenceSource.of(out);
  }
}
