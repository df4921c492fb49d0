package moetune.engine.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import moetune.engine.backend.Communicator;
import moetune.engine.hf.GenerationConfig;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.io.MixtralCheckpoint;
import moetune.engine.io.SafetensorsReader;
import moetune.engine.io.SafetensorsWriter;
import moetune.engine.model.Batch;
import moetune.engine.model.ExpertStream;
import moetune.engine.model.LoraWeights;
import moetune.engine.model.Loss;
import moetune.engine.model.LossWeights;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.ModelOptions;
import moetune.engine.model.Parameters;
import moetune.engine.optim.AdamW;
import moetune.engine.optim.Optimizer;
import moetune.engine.optim.ShardedAdamW;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * The Mixtral model and its AdamW as a {@link TrainableModel}: applies freezing, collects routing
 * statistics, and saves and restores the whole training state.
 *
 * <p>A checkpoint directory is a HuggingFace model directory (float32 hub-layout safetensors,
 * config.json, generation_config.json, the tokenizer files), so {@code generate} and {@code export}
 * take it directly, plus {@code optimizer.safetensors}: AdamW's moments by hub name with the step
 * count in its metadata.
 *
 * <p>The model must be built with {@link #trainingOptions} (the run's frozen parameters are stored
 * without gradient or optimizer state). The run's aux and z-loss coefficients are passed to every
 * forward and backward as {@link LossWeights}; the model config keeps the checkpoint's
 * router_aux_loss_coef, and saved checkpoints keep the original config.
 */
public final class MixtralTrainable implements TrainableModel {
  public static final String OPTIMIZER_FILE = "optimizer.safetensors";
  private static final String STEP_KEY = "adamw_step";
  // the model's router-jitter noise position (see MixtralModel#noiseStep), for exact resumes
  private static final String NOISE_KEY = "router_noise_step";

  private final MixtralModel model;
  private final LossWeights lossWeights; // the run's aux and z-loss coefficients (TrainOptions)
  private final MixtralConfig savedConfig;
  private final GenerationConfig generation;
  private final List<Path> tokenizerFiles;
  private final Optimizer adamw;
  private final long trainable;
  private final int rank; // data-parallel rank: only rank 0 writes checkpoints
  private Path baseDir; // a LoRA run's base model directory: checkpoints then hold adapters only
  private Tensor expertLoad; // F32 (L, E+2) routing sums since the last takeRouterStats, or null

  /**
   * @param model built with {@link #trainingOptions}(modelOptions, options)
   * @param savedConfig the config checkpoints are saved with
   * @param generation generation_config.json of checkpoints, or null to derive it
   * @param tokenizerFiles copied into every checkpoint (tokenizer.json, tokenizer_config.json)
   */
  public MixtralTrainable(
      MixtralModel model,
      MixtralConfig savedConfig,
      GenerationConfig generation,
      List<Path> tokenizerFiles,
      TrainOptions options) {
    this(model, savedConfig, generation, tokenizerFiles, options, null);
  }

  /**
   * As above, one data-parallel rank of {@code dataParallel} (null or a group of one: no data
   * parallelism): the optimizer state is sharded over the ranks ({@link ShardedAdamW}), {@link
   * #save} is a collective in which only rank 0 writes.
   */
  public MixtralTrainable(
      MixtralModel model,
      MixtralConfig savedConfig,
      GenerationConfig generation,
      List<Path> tokenizerFiles,
      TrainOptions options,
      Communicator dataParallel) {
    this(
        model,
        savedConfig,
        generation,
        tokenizerFiles,
        options,
        dataParallel,
        ShardedAdamW.DEFAULT_CHUNK);
  }

  /**
   * As above, with ZeRO buckets of {@code bucketChunk} elements per rank (the unit in which
   * gradients are reduce-scattered, as DDP's bucket_cap_mb; smaller buckets start sooner in the
   * backward, larger ones make fewer collectives).
   */
  public MixtralTrainable(
      MixtralModel model,
      MixtralConfig savedConfig,
      GenerationConfig generation,
      List<Path> tokenizerFiles,
      TrainOptions options,
      Communicator dataParallel,
      long bucketChunk) {
    this.lossWeights = new LossWeights(options.auxLossCoef(), options.routerZLossCoef());
    this.model = model;
    this.savedConfig = savedConfig;
    this.generation = generation;
    this.tokenizerFiles = List.copyOf(tokenizerFiles);
    Parameters params = model.parameters();
    for (Parameters.Slice s : params.slices()) {
      if (options.freeze().isFrozen(s.name()) && !s.frozen()) {
        throw new IllegalArgumentException(
            "MixtralTrainable: the run freezes "
                + s.name()
                + " but the model was built with it trainable; build the model with"
                + " trainingOptions()");
      }
    }
    // Frozen tensors live outside the flat buffers (no gradient, no optimizer state): AdamW and
    // the grad norm see only the trainable ones.
    this.trainable = params.count();
    AdamWOptions o = options.optimizer();
    Predicate<Parameters.Slice> decay = s -> o.decay().predicate().test(s);
    this.rank = dataParallel == null ? 0 : dataParallel.rank();
    this.adamw =
        dataParallel == null || dataParallel.size() == 1
            ? new AdamW(params, o.settings(options.clipNorm()), decay)
            : new ShardedAdamW(
                params, o.settings(options.clipNorm()), decay, dataParallel, bucketChunk);
  }

  private boolean overlapReduction = true;

  /**
   * Whether the sharded optimizer reduces each bucket as soon as the last backward of a step
   * finishes it (the default) or all buckets when the optimizer steps: the same sums either way.
   */
  public MixtralTrainable overlapReduction(boolean on) {
    this.overlapReduction = on;
    return this;
  }

  /** The optimizer ({@link AdamW}, or {@link ShardedAdamW} over several ranks). */
  public Optimizer optimizer() {
    return adamw;
  }

  /**
   * For a LoRA run on a base model that is on disk: checkpoints then hold only the adapters (PEFT's
   * adapter_config.json naming this directory as base_model_name_or_path), the optimizer state and
   * the tokenizer files, not another copy of the frozen base.
   */
  public MixtralTrainable withBaseDir(Path dir) {
    this.baseDir = dir == null ? null : dir.toAbsolutePath().normalize();
    return this;
  }

  /**
   * The model options a model must be built with to train with the run's frozen parameters (stored
   * once, without gradient or optimizer state).
   */
  public static ModelOptions trainingOptions(ModelOptions base, TrainOptions options) {
    FreezeSpec freeze = options.freeze();
    return base.withFrozen(freeze::isFrozen).withRecompute(options.recompute());
  }

  public MixtralModel model() {
    return model;
  }

  /** The run's router-loss weights, passed to every forward and backward. */
  public LossWeights lossWeights() {
    return lossWeights;
  }

  /** Warnings about this setup for the run's log (empty when there are none). */
  public List<String> warnings() {
    List<String> w = new ArrayList<>();
    if (lossWeights.aux() == 0) {
      w.add(
          "router aux-loss coefficient is 0: nothing keeps the experts' load balanced; "
              + "watch expert_load in metrics.jsonl for router collapse");
    }
    return w;
  }

  @Override
  public long trainableParameters() {
    return trainable;
  }

  @Override
  public String device() {
    return model.backend().describe();
  }

  @Override
  public void zeroGrad() {
    model.zeroGrad();
    adamw.gradientsZeroed();
  }

  @Override
  public MicroStep forwardBackward(Batch batch, double weight) {
    return forwardBackward(batch, weight, false);
  }

  /**
   * With the optimizer sharded over ranks and {@code lastOfStep}, each layer's gradients are handed
   * to {@link ShardedAdamW#gradientsDone} as the backward finishes them (in buckets, the
   * reduce-scatter overlapping the rest of the backward).
   */
  @Override
  public MicroStep forwardBackward(Batch batch, double weight, boolean lastOfStep) {
    if (lastOfStep && overlapReduction && adamw instanceof ShardedAdamW sharded) {
      model.onGradientsDone(group -> reportDone(sharded, group));
    }
    try {
      return forwardBackwardOnce(batch, weight);
    } finally {
      model.onGradientsDone(null);
    }
  }

  /** The trainable slices of a {@link MixtralModel#onGradientsDone} group, to the optimizer. */
  private void reportDone(ShardedAdamW sharded, int group) {
    String prefix = group == MixtralModel.HEAD_AND_NORM ? null : MixtralNames.layer(group);
    for (Parameters.Slice s : model.parameters().trainableSlices()) {
      boolean in =
          prefix == null
              ? s.name().equals(MixtralNames.LM_HEAD) || s.name().equals(MixtralNames.NORM)
              : s.name().startsWith(prefix);
      if (in) {
        sharded.gradientsDone(s.offset(), s.numel());
      }
    }
  }

  private MicroStep forwardBackwardOnce(Batch batch, double weight) {
    Loss loss = model.forward(batch, lossWeights);
    if (expertLoad == null) {
      MixtralConfig c = model.config();
      expertLoad = model.backend().zeros(DType.F32, c.numHiddenLayers, c.numLocalExperts + 2);
    }
    model.accumulateExpertLoad(expertLoad); // read once per step by takeRouterStats
    model.backward((float) weight, lossWeights);
    return new MicroStep(
        (double) loss.ce() * loss.targetTokens(), loss.targetTokens(), loss.aux(), loss.z(), null);
  }

  /** Share of routed slots per expert and router entropy per layer, padding excluded. */
  @Override
  public RouterStats takeRouterStats() {
    if (expertLoad == null) {
      return null;
    }
    MixtralConfig c = model.config();
    float[] sums = model.backend().download(expertLoad).toFloatArray();
    model.backend().fill(expertLoad, 0f);
    return RouterStats.ofSums(c.numHiddenLayers, c.numLocalExperts, sums);
  }

  @Override
  public double evalLossSum(Batch batch) {
    return evalLossSum(model, batch);
  }

  /** Sum of token cross-entropies of a batch under a model, without gradients. */
  public static double evalLossSum(MixtralModel model, Batch batch) {
    Loss loss = model.evaluate(batch);
    return (double) loss.ce() * loss.targetTokens();
  }

  @Override
  public double gradNorm() {
    return adamw.measureGradNorm();
  }

  @Override
  public double step(double lr) {
    adamw.step((float) lr);
    return adamw.lastGradNorm();
  }

  @Override
  public void save(Path dir) throws IOException {
    if (rank != 0) {
      joinSave();
      return;
    }
    ShardedAdamW split = splitExpertOptimizer();
    Map<String, HostTensor> optimizerState = // a collective: first
        split != null ? split.replicatedStateToHost() : adamw.stateToHost();
    boolean lora = model.parameters().lora() != null;
    if (lora && baseDir != null) {
      // adapters only: the base is frozen and already on disk
      Files.createDirectories(dir);
      for (Path f : tokenizerFiles) {
        Files.copy(f, dir.resolve(f.getFileName()));
      }
      LoraWeights.write(dir, model, baseDir.toString());
    } else {
      try (ExpertStream experts = expertStream()) { // split experts: streamed from their ranks
        MixtralCheckpoint.save(
            dir,
            savedConfig,
            generation,
            name -> experts.carries(name) ? experts.next(name) : model.parameter(name),
            DType.F32,
            SafetensorsWriter.DEFAULT_MAX_SHARD_BYTES,
            tokenizerFiles);
        experts.finish(); // had the writer failed, the others would wait here: none left
      }
      if (lora) {
        // the adapters in PEFT's format beside the base weights (a fresh model's run): generate,
        // eval, export and a resumed run load them from here
        LoraWeights.write(dir, model, null);
      }
    }
    Map<String, String> meta = new LinkedHashMap<>();
    meta.put("format", "moetune-adamw");
    meta.put(STEP_KEY, Integer.toString(adamw.stepCount()));
    meta.put(NOISE_KEY, Long.toString(model.noiseStep()));
    if (split == null) {
      List<SafetensorsWriter.Item> items = new ArrayList<>();
      for (Map.Entry<String, HostTensor> e : optimizerState.entrySet()) {
        items.add(SafetensorsWriter.Item.of(e.getKey(), e.getValue()));
      }
      SafetensorsWriter.writeFile(dir.resolve(OPTIMIZER_FILE), items, meta);
      return;
    }
    // split experts: their moments streamed from their ranks as the writer reaches them
    List<String> order = split.stateNames();
    Map<String, long[]> shapes = MixtralNames.hubShapes(savedConfig);
    try (ExpertStream moments = split.expertMoments(order)) {
      List<SafetensorsWriter.Item> items = new ArrayList<>();
      for (String name : order) {
        HostTensor whole = optimizerState.get(name);
        if (whole != null) {
          items.add(SafetensorsWriter.Item.of(name, whole));
        } else if (moments.carries(name)) {
          String hub = name.substring(name.indexOf('.') + 1);
          items.add(
              new SafetensorsWriter.Item(
                  name, DType.F32, shapes.get(hub), () -> moments.next(name)));
        } else {
          throw new IllegalStateException("no moment for " + name);
        }
      }
      SafetensorsWriter.writeFile(dir.resolve(OPTIMIZER_FILE), items, meta);
      moments.finish();
    }
  }

  /**
   * The sharded optimizer when it steps split experts (their moments stream to rank 0), or null.
   */
  private ShardedAdamW splitExpertOptimizer() {
    return adamw instanceof ShardedAdamW s && s.splitExperts() ? s : null;
  }

  @Override
  public void joinSave() {
    ShardedAdamW split = splitExpertOptimizer();
    if (split == null) {
      adamw.stateToHost(); // the gather of the sharded moments; rank 0 writes them
    } else {
      split.replicatedStateToHost();
    }
    try (ExpertStream experts = expertStream()) {
      experts.serve(); // expert parallel: this rank's experts to rank 0, as its writer asks
    }
    if (split != null) {
      try (ExpertStream moments = split.expertMoments(split.stateNames())) {
        moments.serve(); // and their moments, as rank 0 writes the optimizer file
      }
    }
  }

  /**
   * The split experts' weights on their way to rank 0's checkpoint writer, in its order (the hub
   * layout's, {@link MixtralNames#hubShapes}); carries nothing when the experts are not split.
   */
  private ExpertStream expertStream() {
    Parameters p = model.parameters();
    return new ExpertStream(
        model.expertParallel(), p, p::value, MixtralNames.hubShapes(savedConfig).keySet());
  }

  @Override
  public void load(Path dir) throws IOException {
    Parameters params = model.parameters();
    if (params.lora() == null || LoraWeights.hasWeights(dir)) {
      try (MixtralCheckpoint ckpt = MixtralCheckpoint.load(dir)) {
        for (String name : ckpt.names()) {
          if (!(savedConfig.tieWordEmbeddings && name.equals(MixtralNames.LM_HEAD))
              && params.holds(name)) { // expert parallel: this rank's experts only
            params.set(params.resolve(name), params.localPart(name, ckpt.tensor(name)));
          }
        }
      }
    } // else an adapter-only checkpoint: the model was built from its (frozen) base
    if (params.lora() != null) {
      LoraWeights.load(dir, model);
    }
    Path opt = dir.resolve(OPTIMIZER_FILE);
    if (!Files.isRegularFile(opt)) {
      throw new IOException(
          dir
              + ": no "
              + OPTIMIZER_FILE
              + "; this is a model, not a training "
              + "checkpoint (train from it with --model instead of --resume)");
    }
    try (SafetensorsReader r = SafetensorsReader.open(opt)) {
      Map<String, HostTensor> state = new LinkedHashMap<>();
      for (String name : r.names()) {
        state.put(name, r.read(name));
      }
      String step = r.metadata().get(STEP_KEY);
      if (step == null) {
        throw new IOException(opt + ": metadata lacks '" + STEP_KEY + "'");
      }
      adamw.loadState(state, Integer.parseInt(step));
      String noise = r.metadata().get(NOISE_KEY);
      if (noise == null) {
        throw new IOException(opt + ": metadata lacks '" + NOISE_KEY + "'");
      }
      model.setNoiseStep(Long.parseLong(noise));
    }
  }

  @Override
  public void close() {
    if (expertLoad != null) {
      expertLoad.close();
    }
    adamw.close();
    model.close();
  }
}
