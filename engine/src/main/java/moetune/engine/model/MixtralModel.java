package moetune.engine.model;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.IntConsumer;
import moetune.engine.backend.Backend;
import moetune.engine.backend.Communicator;
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
 * LossWeights}: given to forward and backward; a trainer passes its run's, without them the model
 * uses config.json's aux coefficient and no z-loss). The z term is the ST-MoE router z-loss (Zoph
 * et al. 2022, eq. 5), logsumexp(router logits)^2, averaged over layers and tokens: one mean over
 * all L*N router rows, padding excluded by the same row mask as the aux loss.
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
  private MixtralStep step; // the last forward, until its backward or the next forward

  MixtralModel(MixtralConfig config, Backend be, ModelOptions options, Parameters params) {
    this.config = config;
    this.be = be;
    this.options = options;
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

  /** Master weights, gradients and the working copy, as flat buffers with named views. */
  public Parameters parameters() {
    return params;
  }

  // ------------------------------------------------------------------ forward

  /**
   * Training forward (router jitter on when configured): computes the logits and, when the batch
   * has labels, the losses. Keeps what {@link #backward} needs. Without labels the returned losses
   * are all zero with 0 targets, and only {@link #logits()} is of use.
   */
  public Loss forward(Batch batch) {
    return forward(batch, LossWeights.of(config));
  }

  /**
   * As {@link #forward(Batch)} with the router losses weighted by {@code weights} in the total (a
   * trainer passes its run's, from TrainOptions); its backward must be given the same weights.
   */
  public Loss forward(Batch batch, LossWeights weights) {
    return forward(batch, true, weights);
  }

  /** Evaluation forward: as {@link #forward} without router jitter. Backward may still follow. */
  public Loss evaluate(Batch batch) {
    return evaluate(batch, LossWeights.of(config));
  }

  /** As {@link #evaluate(Batch)} with the given loss weights. */
  public Loss evaluate(Batch batch, LossWeights weights) {
    return forward(batch, false, weights);
  }

  private Loss forward(Batch batch, boolean training, LossWeights weights) {
    java.util.Objects.requireNonNull(weights, "weights");
    releaseStep();
    step = new MixtralStep(this);
    return step.forward(batch, training, weights);
  }

  /**
   * The logits of the last forward, F32 (B, T, V). Valid between a forward and its backward (the
   * backward overwrites the logits with their gradient).
   */
  public HostTensor logits() {
    return lastStep("logits()").logits();
  }

  /**
   * The router's choices in the last forward, valid until its backward (which frees them): {probs
   * F32 (L*N, E), topIdx I32 (L*N, K)}, layer after layer, downloaded for expert-load statistics
   * (the trainer's router-collapse monitor).
   */
  public HostTensor[] lastRouting() {
    return lastStep("lastRouting()").lastRouting();
  }

  /**
   * Adds the last forward's expert-load statistics to acc F32 (L, E+2) on the device ({@link
   * Backend#expertLoadStats}, padding excluded); nothing is downloaded. Valid until its backward.
   */
  public void accumulateExpertLoad(Tensor acc) {
    lastStep("accumulateExpertLoad()").accumulateExpertLoad(acc);
  }

  /** The last forward's step, or one line saying there is none. */
  private MixtralStep lastStep(String what) {
    if (step == null) {
      throw new IllegalStateException(what + ": no forward since the last backward");
    }
    return step;
  }

  // ------------------------------------------------------------------ backward

  /**
   * Backward of the last forward's total loss under config.json's loss weights (a forward given
   * none); parameter gradients accumulate (+=).
   */
  public void backward() {
    backward(1f);
  }

  /** As {@link #backward(float, LossWeights)} with config.json's loss weights. */
  public void backward(float scale) {
    backward(scale, LossWeights.of(config));
  }

  /**
   * Backward of scale * total loss (for gradient accumulation over micro-batches, scale = 1 /
   * micro-batches, or a token-weighted share). Gradients accumulate (+=) into {@link
   * Parameters#gradFlat()}; the forward's saved state is freed. {@code weights} are the router
   * losses' weights in the total, the ones the forward was given (a trainer passes its run's).
   */
  public void backward(float scale, LossWeights weights) {
    if (step == null) {
      throw new IllegalStateException("backward(): needs a forward with labels first");
    }
    step.backward(scale, weights, gradientsDone);
    releaseStep();
  }

  /**
   * A fresh generator of the next training forward's noise (router jitter, LoRA dropout): seeded by
   * (seed, noiseStep) alone, and noiseStep counts on.
   */
  SplittableRandom nextNoise() {
    return new SplittableRandom(options.seed() * 0x9E3779B97F4A7C15L + noiseStep++);
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

  /**
   * Sets every parameter gradient to zero; the next backward then writes the expert weights'
   * gradients instead of adding to them (the same values without reading the zeros), so their
   * memset waits for a read that comes before any backward wrote them ({@link
   * Parameters#zeroGradDeferring}), which is none in a training step.
   */
  public void zeroGrad() {
    List<Parameters.DeferredZero> later = new ArrayList<>();
    for (DecoderLayer layer : layers) {
      layer.gradsZeroed(later);
    }
    params.zeroGradDeferring(later);
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
    // only this slice is settled (a deferred expert gradient elsewhere stays deferred)
    return be.download(params.gradRange(s.offset(), s.numel()).view(0, s.shape()));
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

  DecoderLayer[] layers() {
    return layers;
  }

  /** The LM head weight (the embeddings when tied). */
  Tensor lmHead() {
    return params.weight(config.tieWordEmbeddings ? MixtralNames.EMBED : MixtralNames.LM_HEAD);
  }

  /** The LM head weight's gradient, or null when it is frozen. */
  Tensor lmHeadGrad() {
    return params.grad(config.tieWordEmbeddings ? MixtralNames.EMBED : MixtralNames.LM_HEAD);
  }

  /** The sliding attention window, 0: none. */
  int window() {
    Integer w = config.slidingWindow;
    return w == null ? 0 : w;
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
