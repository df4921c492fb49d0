package moetune.engine.model;

import java.util.SplittableRandom;
import java.util.function.IntConsumer;
import moetune.engine.backend.AttnSpec;
import moetune.engine.backend.Backend;
import moetune.engine.backend.LmHeadChunks;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * One forward of a {@link MixtralModel} and the backward that consumes it: the model's logits and
 * losses, the state the backward needs (per layer, in {@link DecoderLayer.Saved}; what {@link
 * Recompute} leaves out is rebuilt here), and the backward of the total loss. The model holds at
 * most one, the last forward's, and delegates {@code forward}, {@code evaluate}, {@code logits},
 * {@code lastRouting}, {@code accumulateExpertLoad} and {@code backward} to it. Shape letters as in
 * {@link MixtralModel}: N = B*T tokens, D hidden, V vocabulary, L layers, E experts, K experts per
 * token.
 *
 * <p>Inside forward and backward {@code s} names this step (the state fields), the rest is the
 * model's (config, backend, parameters, layers).
 */
final class MixtralStep implements AutoCloseable {
  private final MixtralModel model;
  private final MixtralConfig config;
  private final Backend be;
  private final ModelOptions options;
  private final Parameters params;
  private final DecoderLayer[] layers;

  Batch batch;
  Tensor ids; // I32 (N)
  Tensor positions; // I32 (N)
  Tensor docIds; // I32 (N) or null
  AttnSpec spec;
  Tensor[] streams; // (N, D) residual stream: streams[l] is layer l's input, streams[L] the last
  DecoderLayer.Saved[] saved; // null entries: not kept (Recompute.LAYER), rebuilt by backward
  long[] layerSeeds; // (L) each layer's noise seed, or null in an evaluation forward
  Tensor routerLogits; // F32 (L*N, E) router logits, every layer (the z-loss reads them)
  Tensor probs; // F32 (L*N, E) router probabilities, every layer
  Tensor topIdx; // I32 (L*N, K)
  Tensor rowMask; // F32 (L*N) or null: real tokens (docId >= 0) per layer, for the router losses
  Tensor rstdFinal; // F32 (N)
  Tensor normed; // (N, D) final norm output
  Tensor logits; // (N, V), only from a forward without labels (with labels: the fused head)
  Tensor targets; // I32 (N) shifted labels, or null
  int targetCount;
  LossWeights lossWeights; // the forward's router-loss weights, which its backward must be given

  MixtralStep(MixtralModel model) {
    this.model = model;
    this.config = model.config();
    this.be = model.backend();
    this.options = model.options();
    this.params = model.parameters();
    this.layers = model.layers();
  }

  @Override
  public void close() {
    for (int l = saved.length - 1; l >= 0; l--) {
      if (saved[l] != null) {
        saved[l].close();
      }
    }
    for (Tensor t : streams) {
      if (t != null) {
        t.close();
      }
    }
    for (Tensor t :
        new Tensor[] {
          ids,
          positions,
          docIds,
          routerLogits,
          probs,
          topIdx,
          rowMask,
          rstdFinal,
          normed,
          logits,
          targets
        }) {
      if (t != null) {
        t.close();
      }
    }
  }

  // ------------------------------------------------------------------ forward

  /**
   * The forward of {@code batch} (router jitter on when {@code training}): computes the logits and,
   * when the batch has labels, the losses, keeping what {@link #backward} needs.
   */
  Loss forward(Batch batch, boolean training, LossWeights lossWeights) {
    int n = batch.tokens();
    long d = config.hiddenSize;
    int numLayers = layers.length;
    DType act = options.activations();
    MixtralStep s = this;
    s.batch = batch;
    s.lossWeights = lossWeights;
    s.streams = new Tensor[numLayers + 1];
    s.saved = new DecoderLayer.Saved[numLayers];
    Recompute mode = options.recompute();
    model.checkIds(batch.inputIds());
    int[] targets = batch.labels() == null ? null : checkedTargets(batch); // before any device work
    s.ids = be.upload(HostTensor.ofInts(batch.inputIds(), n));
    s.positions = be.upload(HostTensor.ofInts(batch.positionsOrDefault(), n));
    int[] doc = batch.docIds(); // padding is -1: never attended to
    s.docIds = doc == null ? null : be.upload(HostTensor.ofInts(doc, n));
    s.spec =
        new AttnSpec(
            batch.batchSize(), batch.seqLen(), batch.seqLen(), s.docIds, model.window(), doc);

    s.streams[0] = be.empty(options.residual(), n, d);
    be.embeddingForward(s.ids, params.weight(MixtralNames.EMBED), s.streams[0]);
    int e = config.numLocalExperts;
    int k = config.numExpertsPerTok;
    s.routerLogits = be.empty(DType.F32, (long) numLayers * n, e);
    s.probs = be.empty(DType.F32, (long) numLayers * n, e);
    s.topIdx = be.empty(DType.I32, (long) numLayers * n, k);
    Tensor[] out = new Tensor[1];
    SplittableRandom noise = training ? model.nextNoise() : null;
    s.layerSeeds = noise == null ? null : new long[numLayers];
    for (int l = 0; l < numLayers; l++) {
      if (noise != null) {
        s.layerSeeds[l] = noise.nextLong();
      }
      s.saved[l] = layerForward(s, l, mode != Recompute.ATTENTION, out);
      s.streams[l + 1] = out[0];
      if (mode == Recompute.LAYER) {
        s.saved[l].close(); // the input streams[l] stays: the backward recomputes from it
        s.saved[l] = null;
      }
    }
    s.rstdFinal = be.empty(DType.F32, n);
    s.normed = be.empty(act, n, d);
    be.rmsnormForward(
        s.streams[numLayers],
        null,
        params.weight(MixtralNames.NORM),
        (float) config.rmsNormEps,
        s.normed,
        s.rstdFinal);
    if (targets == null) { // no loss: the logits are the output (logits())
      s.logits = headLogits(s.normed);
      return new Loss(0f, 0f, 0f, 0f, 0);
    }
    for (int t : targets) {
      s.targetCount += t == Batch.IGNORE_INDEX ? 0 : 1;
    }
    s.targets = be.upload(HostTensor.ofInts(targets, n));
    s.rowMask = rowMask(batch);
    float zCoef = (float) lossWeights.z();
    try (Tensor losses = be.empty(DType.F32, n);
        Tensor values = be.zeros(DType.F32, 3)) {
      be.lmHeadCrossEntropy(
          s.normed, model.lmHead(), s.targets, losses, null, null, 0f, headChunk());
      be.sum(losses, s.targetCount == 0 ? 0f : 1f / s.targetCount, values.view(0, 1));
      be.loadBalancingLoss(s.probs, s.topIdx, s.rowMask, values.view(1, 1), null, 0f);
      if (zCoef != 0f) { // values[2] stays 0 otherwise: the z-loss is off and not computed
        be.routerZLoss(s.routerLogits, s.rowMask, values.view(2, 1), null, 0f);
      }
      float[] v = be.download(values).toFloatArray(); // {ce, aux, z}
      if (model.expertParallel()
          != null) { // the group's aux loss, as one device's over all its rows
        v[1] =
            GlobalLoadBalancing.compute(
                model.expertParallel(), s.probs, s.topIdx, s.rowMask, null, 0f, 0f);
      }
      float total = v[0] + (float) lossWeights.aux() * v[1];
      if (zCoef != 0f) {
        total += zCoef * v[2]; // skipped at 0 so that the total stays bit-identical without z
      }
      return new Loss(v[0], v[1], v[2], total, s.targetCount);
    }
  }

  /**
   * The logits of the last forward, F32 (B, T, V). Valid between a forward and its backward (the
   * backward overwrites the logits with their gradient).
   */
  HostTensor logits() {
    if (logits == null && normed == null) {
      throw new IllegalStateException("logits(): no forward since the last backward");
    }
    Batch b = batch;
    HostTensor host;
    if (logits != null) {
      host = be.download(logits);
    } else { // a training forward kept no logits (the fused head): the same product, once more
      try (Tensor l = headLogits(normed)) {
        host = be.download(l);
      }
    }
    return host.to(DType.F32).reshape(b.batchSize(), b.seqLen(), config.vocabSize);
  }

  /** normed @ lmHead^T, (N, V) in normed's dtype. */
  private Tensor headLogits(Tensor normed) {
    Tensor out = be.empty(normed.dtype(), normed.rows(), config.vocabSize);
    be.matmul(normed, false, model.lmHead(), true, out, 1f, 0f);
    return out;
  }

  /** Rows per chunk of the fused LM head + cross-entropy (the logits are never held whole). */
  private int headChunk() {
    return LmHeadChunks.rows(config.vocabSize, options.activations());
  }

  /**
   * The router's choices in the last forward, valid until its backward (which frees them): {probs
   * F32 (L*N, E), topIdx I32 (L*N, K)}, layer after layer, downloaded for expert-load statistics
   * (the trainer's router-collapse monitor).
   */
  HostTensor[] lastRouting() {
    if (probs == null) {
      throw new IllegalStateException("lastRouting(): no forward since the last backward");
    }
    return new HostTensor[] {be.download(probs), be.download(topIdx)};
  }

  /**
   * Adds the last forward's expert-load statistics to acc F32 (L, E+2) on the device ({@link
   * Backend#expertLoadStats}, padding excluded); nothing is downloaded. Valid until its backward.
   */
  void accumulateExpertLoad(Tensor acc) {
    if (probs == null) {
      throw new IllegalStateException("accumulateExpertLoad(): no forward since the last backward");
    }
    be.expertLoadStats(probs, topIdx, expertLoadMask(this), acc);
  }

  /** The per-router-row mask of real tokens for the expert-load monitor, or null: every row. */
  private Tensor expertLoadMask(MixtralStep s) {
    if (s.rowMask == null) {
      // an evaluation forward without labels has no row mask yet: build it as the forward would
      s.rowMask = rowMask(s.batch);
    }
    return s.rowMask;
  }

  /** F32 (L*N) 1 for real tokens, 0 for padding, per layer; null when the batch has no padding. */
  private Tensor rowMask(Batch batch) {
    float[] mask = batch.realTokenRows(layers.length);
    return mask == null ? null : be.upload(HostTensor.ofFloats(mask, mask.length));
  }

  // ------------------------------------------------------------------ backward

  /**
   * Backward of scale * total loss (for gradient accumulation over micro-batches, scale = 1 /
   * micro-batches, or a token-weighted share). Gradients accumulate (+=) into {@link
   * Parameters#gradFlat()} under {@code lossWeights}, which must be the forward's (the total it
   * computed is the one differentiated); each layer's saved state is freed as its backward finishes
   * (the model closes the step afterwards). {@code done}, when not null, is told which gradients
   * are final as soon as they are (see {@link MixtralModel#onGradientsDone}).
   */
  void backward(float scale, LossWeights lossWeights, IntConsumer done) {
    MixtralStep s = this;
    if (s.targets == null) {
      throw new IllegalStateException("backward(): needs a forward with labels first");
    }
    if (!lossWeights.equals(s.lossWeights)) {
      throw new IllegalArgumentException(
          "backward(): loss weights "
              + lossWeights
              + " differ from the forward's "
              + s.lossWeights
              + "; pass the forward's");
    }
    int n = s.batch.tokens();
    long d = config.hiddenSize;
    int numLayers = layers.length;
    DType act = options.activations();
    Tensor dNormed = be.empty(act, n, d);
    try (Tensor losses = be.empty(DType.F32, n)) { // the head's gradient (null when frozen)
      be.lmHeadCrossEntropy(
          s.normed,
          model.lmHead(),
          s.targets,
          losses,
          dNormed,
          model.lmHeadGrad(),
          s.targetCount == 0 ? 0f : scale / s.targetCount,
          headChunk());
    }
    Tensor dStream =
        be.zeros(options.residual(), n, d); // d loss / d residual stream, in place per layer
    be.rmsnormBackward(
        dNormed,
        s.streams[numLayers],
        params.weight(MixtralNames.NORM),
        s.rstdFinal,
        dStream,
        params.grad(MixtralNames.NORM));
    dNormed.close();
    if (done != null && !config.tieWordEmbeddings) { // tied: the embedding's gradient grows later
      done.accept(MixtralModel.HEAD_AND_NORM);
    }

    Tensor dProbs = null; // F32 (L*N, E)
    float auxScale = (float) lossWeights.aux() * scale;
    if (auxScale != 0f) {
      dProbs = be.empty(DType.F32, s.probs.shape());
      try (Tensor lossOut = be.empty(DType.F32, 1)) {
        if (model.expertParallel() != null) {
          GlobalLoadBalancing.compute(
              model.expertParallel(),
              s.probs,
              s.topIdx,
              s.rowMask,
              dProbs,
              (float) lossWeights.aux(),
              scale);
        } else {
          be.loadBalancingLoss(s.probs, s.topIdx, s.rowMask, lossOut, dProbs, auxScale);
        }
      }
    }
    Tensor dZLogits = null; // F32 (L*N, E): zScale * d z / d router logits
    float zScale = (float) lossWeights.z() * scale;
    if (zScale != 0f) {
      dZLogits = be.zeros(DType.F32, s.routerLogits.shape()); // routerZLoss accumulates (+=)
      try (Tensor lossOut = be.empty(DType.F32, 1)) {
        be.routerZLoss(s.routerLogits, s.rowMask, lossOut, dZLogits, zScale);
      }
    }
    int e = config.numLocalExperts;
    for (int l = numLayers - 1; l >= 0; l--) {
      long at = (long) l * n * e;
      if (s.saved[l] == null) { // Recompute.LAYER: rerun the forward from the kept input
        s.saved[l] = layerForward(s, l, true, null); // no output: streams[l + 1] has it
      }
      layers[l].backward(
          s.saved[l],
          dStream,
          dProbs == null ? null : dProbs.view(at, n, e),
          dZLogits == null ? null : dZLogits.view(at, n, e),
          layerNoise(s, l));
      s.saved[l].close();
      s.saved[l] = null;
      s.streams[l + 1].close();
      s.streams[l + 1] = null;
      if (done != null) {
        done.accept(l);
      }
    }
    if (dProbs != null) {
      dProbs.close();
    }
    if (dZLogits != null) {
      dZLogits.close();
    }
    Tensor embedGrad = params.grad(MixtralNames.EMBED);
    if (embedGrad != null) {
      be.embeddingBackward(s.ids, dStream, embedGrad);
    }
    dStream.close();
  }

  /**
   * Layer l's training forward from streams[l] (its output in out[0]; out null: a recomputation for
   * the backward, which makes no output and skips the experts' down product), with a fresh noise
   * generator from the layer's seed. The router outputs go to the layer's views of the model-wide
   * buffers; a recomputation rewrites them with the same values.
   */
  private DecoderLayer.Saved layerForward(
      MixtralStep s, int l, boolean keepAttention, Tensor[] out) {
    int n = s.batch.tokens();
    int e = config.numLocalExperts;
    int k = config.numExpertsPerTok;
    return layers[l].forward(
        s.streams[l],
        s.positions,
        s.spec,
        s.routerLogits.view((long) l * n * e, n, e),
        s.probs.view((long) l * n * e, n, e),
        s.topIdx.view((long) l * n * k, n, k),
        layerNoise(s, l),
        keepAttention,
        out);
  }

  /** A fresh generator of layer l's noise, or null in an evaluation forward. */
  private static SplittableRandom layerNoise(MixtralStep s, int l) {
    return s.layerSeeds == null ? null : new SplittableRandom(s.layerSeeds[l]);
  }

  /** HF's shifted targets of a batch with labels, each -100 or a token id. */
  private int[] checkedTargets(Batch batch) {
    int[] targets = batch.shiftedTargets();
    for (int t : targets) {
      if (t != Batch.IGNORE_INDEX && (t < 0 || t >= config.vocabSize)) {
        throw new IllegalArgumentException(
            "label "
                + t
                + " is outside the vocabulary [0, "
                + config.vocabSize
                + ") and is not -100");
      }
    }
    return targets;
  }
}
