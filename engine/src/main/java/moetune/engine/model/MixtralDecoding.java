package moetune.engine.model;

import moetune.engine.backend.Backend;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * Cached decoding of a {@link MixtralModel} (the path {@code moetune.engine.generate} uses): a
 * prefill of the prompt and then one token per row, each layer reading and extending its {@link
 * KvCache}. The entry points are {@link MixtralModel#newKvCache} and {@link MixtralModel#decode}.
 */
final class MixtralDecoding {
  private MixtralDecoding() {}

  static KvCache newKvCache(MixtralModel m, int batch, int capacity) {
    return new KvCache(
        m.backend(),
        m.numLayers(),
        batch,
        capacity,
        m.config().numKeyValueHeads,
        m.config().headDim(),
        m.options().activations());
  }

  static HostTensor decode(MixtralModel m, KvCache cache, int[][] tokens) {
    MixtralConfig config = m.config();
    ModelOptions options = m.options();
    Backend be = m.backend();
    int batch = tokens.length;
    int tq = tokens[0].length;
    if (batch != cache.batch()) {
      throw new IllegalArgumentException(
          "decode: " + batch + " rows for a cache of " + cache.batch());
    }
    cache.checkRoom(tq);
    int n = batch * tq;
    int[] ids = new int[n];
    int[] pos = new int[n];
    for (int b = 0; b < batch; b++) {
      if (tokens[b].length != tq) {
        throw new IllegalArgumentException(
            "decode: row " + b + " has " + tokens[b].length + " tokens, row 0 " + tq);
      }
      for (int t = 0; t < tq; t++) {
        ids[b * tq + t] = tokens[b][t];
        pos[b * tq + t] = cache.length() + t;
      }
    }
    m.checkIds(ids);
    long d = config.hiddenSize;
    DType act = options.activations();
    Tensor x;
    try (Tensor idsT = be.upload(HostTensor.ofInts(ids, n));
        Tensor posT = be.upload(HostTensor.ofInts(pos, n))) {
      x = be.empty(options.residual(), n, d);
      be.embeddingForward(idsT, m.parameters().weight(MixtralNames.EMBED), x);
      for (int l = 0; l < m.numLayers(); l++) {
        Tensor next = m.layer(l).forwardCached(x, posT, cache.layer(l), batch, m.window());
        x.close();
        x = next;
      }
    }
    cache.advance(tq);
    try (Tensor last = be.empty(options.residual(), batch, d);
        Tensor normed = be.empty(act, batch, d);
        Tensor rstd = be.empty(DType.F32, batch);
        Tensor logits = be.empty(act, batch, config.vocabSize)) {
      for (int b = 0; b < batch; b++) {
        be.copy(x.view(((long) b * tq + tq - 1) * d, 1, d), last.view(b * d, 1, d));
      }
      x.close();
      be.rmsnormForward(
          last,
          null,
          m.parameters().weight(MixtralNames.NORM),
          (float) config.rmsNormEps,
          normed,
          rstd);
      be.matmul(normed, false, m.lmHead(), true, logits, 1f, 0f);
      return be.download(logits).to(DType.F32);
    }
  }
}
