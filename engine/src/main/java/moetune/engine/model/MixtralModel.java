package moetune.engine.model;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.IntConsumer;
import moetune.engine.backend.AttnSpec;
import moetune.engine.backend.Backend;
import moetune.engine.backend.LmHeadChunks;
import moetune.engine.dist.Communicator;
import moetune.engine.hf.GenerationConfig;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.io.SafetensorsWriter;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * A HuggingFace Mixtral (MixtralForCausalLM) on a {@link Backend}, with an explicit backward.
 *
 * <p>Typical use: {@link #load}, then per step {@link #zeroGrad}, {@link #forward} (returns the
 * losses), {@link #backward}, and an optimizer step over {@link #parameters()} (see {@code
 * moetune.engine.optim.AdamW}); {@link #save} writes a HuggingFace directory.
 *
 * <p>The forward keeps what the backward needs (per layer, in {@link DecoderLayer.Saved}); the
 * backward frees it layer by layer. {@link ModelOptions#recompute} trades compute for memory: with
 * {@link Recompute#LAYER} the forward keeps only each layer's input (the residual stream) and the
 * backward reruns a layer's forward just before its backward; with {@link Recompute#ATTENTION} only
 * the attention's inner state is recomputed. Every layer draws its noise (LoRA dropout, router
 * jitter) from its own seed, kept in the step, so a recomputation repeats it exactly. Shape
 * letters: B rows, T tokens per row, N = B*T, D hidden, V vocabulary, L layers, E experts, K
 * experts per token.
 *
 * <p>Losses: total = ce + aux coefficient * aux + z coefficient * z (see {@link Loss}, {@link
 * LossWeights}; a trainer sets its run's, a model on its own uses config.json's aux one). The z
 * term is the ST-MoE router z-loss (Zoph et al. 2022, eq. 5), logsumexp(router logits)^2, averaged
 * over layers and tokens: one mean over all L*N router rows, padding excluded by the same row mask
 * as the aux loss.
 *
 * <p>Not thread-safe: one forward/backward at a time.
 */
public final class MixtralModel implements AutoCloseable {
  private final MixtralConfig config;
  private final Backend be;
  private final ModelOptions options;
  private final Parameters params;
  private final DecoderLayer[] layers;
  // Router jitter noise of the n-th training forward is drawn from a generator seeded by (seed,
  // n) alone, so a resumed run that restores n (noiseStep) draws exactly the noise an
  // uninterrupted run would.
  private long noiseStep;
  private Path sourceDir; // the directory loaded from, whose tokenizer files save() copies; or null
  private GenerationConfig generation; // from the loaded directory, or null
  private Step step; // the last forward's state, until backward or the next forward
  private LossWeights lossWeights; // the router losses' weights in the total

  MixtralModel(MixtralConfig config, Backend be, ModelOptions options, Parameters params) {
    this.config = config;
    this.be = be;
    this.options = options;
    this.lossWeights = LossWeights.of(config);
    this.params = params;
    this.layers = new DecoderLayer[config.numHiddenLayers];
    for (int l = 0; l < layers.length; l++) {
      layers[l] = new DecoderLayer(params, l, config, options.activations());
    }
  }

  /** How many training forwards have drawn router-jitter noise (the noise generator's state). */
  public long noiseStep() {
    return noiseStep;
  }

  /** Restores {@link #noiseStep()} from a checkpoint, so the next noise is as if never stopped. */
  public void setNoiseStep(long step) {
    if (step < 0) {
      throw new IllegalArgumentException("noise step must be >= 0, got " + step);
    }
    noiseStep = step;
  }

  /** Loads a HuggingFace Mixtral directory (config.json and safetensors) in float32. */
  public static MixtralModel load(Path dir, Backend backend) {
    return load(dir, backend, ModelOptions.defaults());
  }

  /**
   * Loads a HuggingFace Mixtral directory with the given options. A directory that also holds a
   * PEFT adapter (adapter_config.json, adapter_model.safetensors: a LoRA run's checkpoint) loads
   * with its adapters; options.lora(), when given, must then agree with the adapter's settings.
   */
  public static MixtralModel load(Path dir, Backend backend, ModelOptions options) {
    return MixtralWeights.load(dir, backend, options);
  }

  /**
   * A base model directory with a PEFT adapter directory on top (to generate with it or to continue
   * training it).
   */
  public static MixtralModel load(
      Path dir, Path adapterDir, Backend backend, ModelOptions options) {
    return MixtralWeights.load(dir, adapterDir, backend, options);
  }

  /**
   * A model from a config and its weights by checkpoint name (hub or fused transformers-5 names,
   * any float dtype). Every parameter must be covered exactly once; with tied embeddings an {@code
   * lm_head.weight} is ignored, as transformers ignores it.
   */
  public static MixtralModel create(
      MixtralConfig config,
      Map<String, HostTensor> weights,
      Backend backend,
      ModelOptions options) {
    return MixtralWeights.create(config, weights, backend, options);
  }

  /**
   * As above, storing only the experts of {@code shard} (expert parallel: each rank holds, trains
   * and steps E/ranks experts of every layer; {@link #setExpertParallel} must then be given the
   * group). The other ranks' experts among {@code weights} are skipped; a fused expert tensor of
   * all E experts contributes this rank's block.
   */
  public static MixtralModel create(
      MixtralConfig config,
      Map<String, HostTensor> weights,
      Backend backend,
      ModelOptions options,
      ExpertShard shard) {
    return MixtralWeights.create(config, weights, backend, options, shard);
  }

  /**
   * A model of the config's shape with random weights made on the backend itself, never on the host
   * (a 46.7B-parameter model has no 187 GB float32 host copy to go through): every matrix normal
   * with standard deviation initializer_range ({@link Backend#randomNormal}, its own counter range
   * per tensor, so no two tensors or rows repeat each other), every norm weight 1; LoRA adapters
   * initialised as a fresh run's. Frozen weights are written straight into their store (bf16 in a
   * bf16 mode). For benchmarks and memory checks of real shapes.
   */
  public static MixtralModel createRandom(
      MixtralConfig config, Backend backend, ModelOptions options, long seed) {
    return MixtralWeights.createRandom(config, backend, options, seed);
  }

  public MixtralConfig config() {
    return config;
  }

  public Backend backend() {
    return be;
  }

  public ModelOptions options() {
    return options;
  }

  /** The router losses' weights in the total (the config's aux coefficient unless set). */
  public LossWeights lossWeights() {
    return lossWeights;
  }

  /**
   * Sets the router losses' weights for the next forward and backward: a trainer passes its run's
   * (TrainOptions' aux and z-loss coefficients).
   */
  public void setLossWeights(LossWeights w) {
    this.lossWeights = java.util.Objects.requireNonNull(w, "lossWeights");
  }

  /** Master weights, gradients and the working copy, as flat buffers with named views. */
  public Parameters parameters() {
    return params;
  }

  // ------------------------------------------------------------------ forward

  /** State of one forward that the backward consumes. */
  private static final class Step implements AutoCloseable {
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
    Tensor rowMask; // F32 (L*N) or null: attention mask repeated per layer, for the router losses
    Tensor rstdFinal; // F32 (N)
    Tensor normed; // (N, D) final norm output
    Tensor logits; // (N, V), only from a forward without labels (with labels: the fused head)
    Tensor targets; // I32 (N) shifted labels, or null
    int targetCount;

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
  }

  /**
   * Training forward (router jitter on when configured): computes the logits and, when the batch
   * has labels, the losses. Keeps what {@link #backward} needs. Without labels the returned losses
   * are all zero with 0 targets, and only {@link #logits()} is of use.
   */
  public Loss forward(Batch batch) {
    return forward(batch, true);
  }

  /** Evaluation forward: as {@link #forward} without router jitter. Backward may still follow. */
  public Loss evaluate(Batch batch) {
    return forward(batch, false);
  }

  private Loss forward(Batch batch, boolean training) {
    releaseStep();
    int n = batch.tokens();
    long d = config.hiddenSize;
    int numLayers = layers.length;
    DType act = options.activations();
    Step s = new Step();
    step = s;
    s.batch = batch;
    s.streams = new Tensor[numLayers + 1];
    s.saved = new DecoderLayer.Saved[numLayers];
    Recompute mode = options.recompute();
    checkIds(batch.inputIds());
    int[] targets = batch.labels() == null ? null : checkedTargets(batch); // before any device work
    s.ids = be.upload(HostTensor.ofInts(batch.inputIds(), n));
    s.positions = be.upload(HostTensor.ofInts(batch.positionsOrDefault(), n));
    int[] doc = batch.attentionDocIds();
    s.docIds = doc == null ? null : be.upload(HostTensor.ofInts(doc, n));
    s.spec = new AttnSpec(batch.batchSize(), batch.seqLen(), batch.seqLen(), s.docIds, window());

    s.streams[0] = be.empty(options.residual(), n, d);
    be.embeddingForward(s.ids, params.weight(MixtralNames.EMBED), s.streams[0]);
    int e = config.numLocalExperts;
    int k = config.numExpertsPerTok;
    s.routerLogits = be.empty(DType.F32, (long) numLayers * n, e);
    s.probs = be.empty(DType.F32, (long) numLayers * n, e);
    s.topIdx = be.empty(DType.I32, (long) numLayers * n, k);
    Tensor[] out = new Tensor[1];
    SplittableRandom noise =
        training ? new SplittableRandom(options.seed() * 0x9E3779B97F4A7C15L + noiseStep++) : null;
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
    if (batch.attentionMask() != null) {
      float[] mask = new float[numLayers * n];
      for (int i = 0; i < mask.length; i++) {
        mask[i] = batch.attentionMask()[i % n] != 0 ? 1f : 0f;
      }
      s.rowMask = be.upload(HostTensor.ofFloats(mask, mask.length));
    }
    float zCoef = (float) lossWeights.z();
    try (Tensor losses = be.empty(DType.F32, n);
        Tensor values = be.zeros(DType.F32, 3)) {
      be.lmHeadCrossEntropy(s.normed, lmHead(), s.targets, losses, null, null, 0f, headChunk());
      be.sum(losses, s.targetCount == 0 ? 0f : 1f / s.targetCount, values.view(0, 1));
      be.loadBalancingLoss(s.probs, s.topIdx, s.rowMask, values.view(1, 1), null, 0f);
      if (zCoef != 0f) { // values[2] stays 0 otherwise: the z-loss is off and not computed
        be.routerZLoss(s.routerLogits, s.rowMask, values.view(2, 1), null, 0f);
      }
      float[] v = be.download(values).toFloatArray(); // {ce, aux, z}
      if (expertParallel != null) { // the group's aux loss, as one device's over all its rows
        v[1] =
            GlobalLoadBalancing.compute(expertParallel, s.probs, s.topIdx, s.rowMask, null, 0f, 0f);
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
  public HostTensor logits() {
    if (step == null || (step.logits == null && step.normed == null)) {
      throw new IllegalStateException("logits(): no forward since the last backward");
    }
    Batch b = step.batch;
    HostTensor host;
    if (step.logits != null) {
      host = be.download(step.logits);
    } else { // a training forward kept no logits (the fused head): the same product, once more
      try (Tensor l = headLogits(step.normed)) {
        host = be.download(l);
      }
    }
    return host.to(DType.F32).reshape(b.batchSize(), b.seqLen(), config.vocabSize);
  }

  /** normed @ lmHead^T, (N, V) in normed's dtype. */
  private Tensor headLogits(Tensor normed) {
    Tensor logits = be.empty(normed.dtype(), normed.rows(), config.vocabSize);
    be.matmul(normed, false, lmHead(), true, logits, 1f, 0f);
    return logits;
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
  public HostTensor[] lastRouting() {
    if (step == null || step.probs == null) {
      throw new IllegalStateException("lastRouting(): no forward since the last backward");
    }
    return new HostTensor[] {be.download(step.probs), be.download(step.topIdx)};
  }

  /**
   * Adds the last forward's expert-load statistics to acc F32 (L, E+2) on the device ({@link
   * Backend#expertLoadStats}, padding excluded); nothing is downloaded. Valid until its backward.
   */
  public void accumulateExpertLoad(Tensor acc) {
    if (step == null || step.probs == null) {
      throw new IllegalStateException("accumulateExpertLoad(): no forward since the last backward");
    }
    be.expertLoadStats(step.probs, step.topIdx, expertLoadMask(step), acc);
  }

  /** The per-router-row mask of real tokens for the expert-load monitor, or null: every row. */
  private Tensor expertLoadMask(Step s) {
    if (s.rowMask != null || s.batch.attentionMask() == null) {
      return s.rowMask;
    }
    // an evaluation forward without labels has no row mask yet: build it as the forward would
    int n = s.batch.tokens();
    float[] mask = new float[layers.length * n];
    for (int i = 0; i < mask.length; i++) {
      mask[i] = s.batch.attentionMask()[i % n] != 0 ? 1f : 0f;
    }
    s.rowMask = be.upload(HostTensor.ofFloats(mask, mask.length));
    return s.rowMask;
  }

  // ------------------------------------------------------------------ backward

  /** Backward of the last forward's total loss; parameter gradients accumulate (+=). */
  public void backward() {
    backward(1f);
  }

  /**
   * Backward of scale * total loss (for gradient accumulation over micro-batches, scale = 1 /
   * micro-batches, or a token-weighted share). Gradients accumulate (+=) into {@link
   * Parameters#gradFlat()}; the forward's saved state is freed.
   */
  public void backward(float scale) {
    IntConsumer done = gradientsDone;
    Step s = step;
    if (s == null || s.targets == null) {
      throw new IllegalStateException("backward(): needs a forward with labels first");
    }
    int n = s.batch.tokens();
    long d = config.hiddenSize;
    int numLayers = layers.length;
    DType act = options.activations();
    Tensor dNormed = be.empty(act, n, d);
    try (Tensor losses = be.empty(DType.F32, n)) { // the head's gradient (null when frozen)
      be.lmHeadCrossEntropy(
          s.normed,
          lmHead(),
          s.targets,
          losses,
          dNormed,
          lmHeadGrad(),
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
      done.accept(HEAD_AND_NORM);
    }

    Tensor dProbs = null; // F32 (L*N, E)
    float auxScale = (float) lossWeights.aux() * scale;
    if (auxScale != 0f) {
      dProbs = be.empty(DType.F32, s.probs.shape());
      try (Tensor lossOut = be.empty(DType.F32, 1)) {
        if (expertParallel != null) {
          GlobalLoadBalancing.compute(
              expertParallel,
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
        Tensor[] out = new Tensor[1];
        s.saved[l] = layerForward(s, l, true, out);
        out[0].close(); // equal to streams[l + 1]
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
    releaseStep();
  }

  /**
   * Layer l's training forward from streams[l] (its output in out[0]), with a fresh noise generator
   * from the layer's seed. The router outputs go to the layer's views of the model-wide buffers; a
   * recomputation rewrites them with the same values.
   */
  private DecoderLayer.Saved layerForward(Step s, int l, boolean keepAttention, Tensor[] out) {
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
  private static SplittableRandom layerNoise(Step s, int l) {
    return s.layerSeeds == null ? null : new SplittableRandom(s.layerSeeds[l]);
  }

  private Communicator expertParallel; // null: every expert on this process

  /**
   * Splits every layer's experts over the ranks of comm (expert parallel, see {@link
   * ExpertParallelMoe}); the aux loss is then the group's ({@link GlobalLoadBalancing}). Each rank
   * runs its own tokens; every rank must run the same forwards and backwards in the same order.
   * null: back to all experts on this process.
   */
  public void setExpertParallel(Communicator comm) {
    ExpertShard shard = params.expertShard();
    if (shard.split()
        && (comm == null || comm.size() != shard.ranks() || comm.rank() != shard.rank())) {
      throw new IllegalArgumentException(
          "this model holds the experts of rank "
              + shard.rank()
              + " of "
              + shard.ranks()
              + "; expert parallel needs that group, not "
              + (comm == null ? "none" : "rank " + comm.rank() + " of " + comm.size()));
    }
    for (DecoderLayer layer : layers) {
      layer.expertParallel(comm);
    }
    this.expertParallel = comm == null || comm.size() == 1 ? null : comm;
  }

  /** The expert-parallel group, or null when every expert runs on this process. */
  public Communicator expertParallel() {
    return expertParallel;
  }

  /**
   * Every expert of every layer by hub name (float32), gathered from the ranks that hold them: what
   * a checkpoint in the one-device format needs when the experts are split ({@link ExpertShard}). A
   * collective over the expert-parallel group: every rank calls it, in the same order as the
   * others; only where {@code keep} are the tensors downloaded (rank 0, which writes them), the
   * others return an empty map. Unsplit: every expert from this process, no communication.
   */
  public Map<String, HostTensor> gatherExperts(boolean keep) {
    return ExpertGather.experts(expertParallel, params, keep);
  }

  /** What {@link #onGradientsDone} reports once the final norm's and the LM head's are done. */
  public static final int HEAD_AND_NORM = -1;

  private IntConsumer gradientsDone; // null: nobody waits for finished gradients

  /**
   * A listener told, during each following {@link #backward}, which parameters' gradients are final
   * for this backward as soon as they are: {@link #HEAD_AND_NORM} (lm_head and model.norm, unless
   * the embeddings are tied) after the final norm's backward, then layer l after layer l's
   * backward, l = L-1 down to 0, on the calling thread, with the ops queued but not necessarily
   * run. The embedding's gradient is final only when backward returns. For a data-parallel
   * optimizer that reduces finished gradients while the backward runs; null removes it.
   */
  public void onGradientsDone(IntConsumer listener) {
    this.gradientsDone = listener;
  }

  /** Sets every parameter gradient to zero. */
  public void zeroGrad() {
    params.zeroGrad();
  }

  // ------------------------------------------------------------------ named access

  /**
   * The accumulated gradient of a parameter by checkpoint name, F32: a hub name ({@code
   * model.layers.0.block_sparse_moe.experts.1.w1.weight}) or a fused transformers-5 name ({@code
   * model.layers.0.mlp.experts.gate_up_proj}).
   */
  public HostTensor gradient(String hfName) {
    Parameters.Slice s = params.resolve(hfName);
    if (s.frozen()) {
      throw new IllegalArgumentException("'" + hfName + "' is frozen and has no gradient");
    }
    return be.download(Parameters.view(params.gradFlat(), s));
  }

  /**
   * A parameter's value by checkpoint name (hub, fused or adapter), float32: the master of a
   * trainable one, the stored value of a frozen one.
   */
  public HostTensor parameter(String hfName) {
    return be.download(params.value(params.resolve(hfName))).to(DType.F32);
  }

  /**
   * Overwrites a parameter's master value (and its working copy) by checkpoint name (hub or fused);
   * value has the parameter's element count, any float dtype.
   */
  public void setParameter(String hfName, HostTensor value) {
    Parameters.Slice s = params.resolve(hfName);
    if (value.numel() != s.numel()) {
      throw new IllegalArgumentException(
          "setParameter("
              + hfName
              + "): "
              + value.numel()
              + " values for "
              + s.numel()
              + " elements");
    }
    params.set(s, value);
  }

  /** Every parameter in the hub checkpoint layout, float32, for saving. */
  public Map<String, HostTensor> hubTensors() {
    Map<String, HostTensor> out = new LinkedHashMap<>();
    for (String name : params.hubNames()) {
      out.put(name, parameter(name));
    }
    return out;
  }

  /**
   * Writes the model as a HuggingFace directory in the hub layout, atomically (an existing
   * directory is replaced only once the new one is complete): config.json, generation_config.json,
   * sharded safetensors of at most 5 GB, in the dtype config.json names (float32 when none), and
   * the other files of the directory the model was loaded from (tokenizer files) copied along.
   */
  public void save(Path dir) {
    save(dir, MixtralWeights.configDtype(config), SafetensorsWriter.parseSize("5GB"));
  }

  /** As {@link #save(Path)} with an explicit weight dtype (F32, BF16, F16) and shard size. */
  public void save(Path dir, DType dtype, long maxShardBytes) {
    MixtralWeights.save(this, dir, dtype, maxShardBytes);
  }

  /** The directory the model was loaded from (its tokenizer files go along on save), or null. */
  Path sourceDir() {
    return sourceDir;
  }

  /** The loaded directory's generation_config.json, or null. */
  GenerationConfig generation() {
    return generation;
  }

  /** Records the directory the model was loaded from and its generation config (on load). */
  void loadedFrom(Path dir, GenerationConfig generation) {
    this.sourceDir = dir;
    this.generation = generation;
  }

  // ------------------------------------------------------------------ generation

  /** A KV cache for decoding batch rows of up to capacity tokens each. */
  public KvCache newKvCache(int batch, int capacity) {
    return MixtralDecoding.newKvCache(this, batch, capacity);
  }

  /**
   * Runs tokens[b][t] (B rows of Tq new tokens) after the cache's tokens, appends their keys and
   * values to the cache, and returns the logits of each row's last new token, F32 (B, V). The first
   * call with the whole prompt is the prefill; later calls pass one token per row.
   */
  public HostTensor decode(KvCache cache, int[][] tokens) {
    return MixtralDecoding.decode(this, cache, tokens);
  }

  // ------------------------------------------------------------------ helpers

  int numLayers() {
    return layers.length;
  }

  DecoderLayer layer(int l) {
    return layers[l];
  }

  /** The LM head weight (the embeddings when tied). */
  Tensor lmHead() {
    return params.weight(config.tieWordEmbeddings ? MixtralNames.EMBED : MixtralNames.LM_HEAD);
  }

  private Tensor lmHeadGrad() {
    return params.grad(config.tieWordEmbeddings ? MixtralNames.EMBED : MixtralNames.LM_HEAD);
  }

  /** The sliding attention window, 0: none. */
  int window() {
    Integer w = config.slidingWindow;
    return w == null ? 0 : w;
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

  /** Every id inside the vocabulary, or one line naming the first outside it. */
  void checkIds(int[] ids) {
    for (int i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= config.vocabSize) {
        throw new IllegalArgumentException(
            "token id "
                + ids[i]
                + " at index "
                + i
                + " is outside the vocabulary [0, "
                + config.vocabSize
                + ")");
      }
    }
  }

  private void releaseStep() {
    if (step != null) {
      step.close();
      step = null;
    }
  }

  @Override
  public void close() {
    releaseStep();
    params.close();
  }
}
