package moetune.app.run;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;
import moetune.app.config.ConfigException;
import moetune.app.config.RunConfig;
import moetune.app.config.RunConfigCheck;
import moetune.datasets.ChatTokenizer;
import moetune.engine.backend.Backend;
import moetune.engine.backend.Communicator;
import moetune.engine.dist.LaunchEnv;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.model.LoraConfig;
import moetune.engine.model.LoraWeights;
import moetune.engine.model.MixtralModel;
import moetune.engine.train.CheckpointStore;
import moetune.engine.train.MemoryPlan;
import moetune.engine.train.MetricsLog;
import moetune.engine.train.MixtralTrainable;
import moetune.engine.train.RunSummary;
import moetune.engine.train.Trainer;
import moetune.engine.train.TrainingListener;
import moetune.files.AtomicFiles;
import moetune.templates.TemplateRegistry;

/**
 * A training run set up from a {@link RunConfig}: what {@code moetune train} and the GUI both run,
 * so the same config and seed give the same losses in both. {@link #prepare} checks the config,
 * opens the device, prepares the data and the model and builds the {@link Trainer}; {@link #run}
 * trains; {@link #close} frees the device.
 *
 * <p>Output directory: {@code run-config.yaml} (the full config), {@code metrics.jsonl}, {@code
 * checkpoints/step-N/} (each a HuggingFace model directory plus the optimizer state) and, for a new
 * model, {@code base/} (its config and tokenizer).
 */
public final class TrainingJob implements AutoCloseable {
  public static final String CONFIG_FILE = "run-config.yaml";
  public static final String METRICS_FILE = "metrics.jsonl";

  private final RunConfig config;
  private final Path out;
  private final Backend backend;
  private final MixtralTrainable trainable;
  private final Trainer trainer;
  private final MetricsLog metrics;
  private final TrainingData data;
  private final TensorBoardLog tensorBoard; // null unless report-to has tensorboard
  private final Communicator comm; // null: one device
  private final Path scratch; // a rank > 0's private directory for files only rank 0 keeps, or null

  private TrainingJob(
      RunConfig config,
      Path out,
      Backend backend,
      MixtralTrainable trainable,
      Trainer trainer,
      MetricsLog metrics,
      TrainingData data,
      TensorBoardLog tensorBoard,
      Communicator comm,
      Path scratch) {
    this.config = config;
    this.out = out;
    this.backend = backend;
    this.trainable = trainable;
    this.trainer = trainer;
    this.metrics = metrics;
    this.data = data;
    this.tensorBoard = tensorBoard;
    this.comm = comm;
    this.scratch = scratch;
  }

  /**
   * Sets a run up; with {@code resume} (a checkpoint directory, see {@link Trainer#findCheckpoint})
   * it continues that run. Lines for the user go to {@code log}.
   */
  public static TrainingJob prepare(RunConfig cfg, Path resume, Consumer<String> log)
      throws IOException {
    return prepare(cfg, resume, log, null);
  }

  /**
   * As above, as one rank of a data-parallel group when {@code launch} is not null (WORLD_SIZE,
   * RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT; see docs/multi-gpu.md): the rank opens {@code
   * cuda:LOCAL_RANK} (or the CPU for {@code --device cpu}), joins the group (NCCL with the id
   * handed out by {@link Rendezvous} on CUDA, a {@link TcpCommunicator} on the CPU), trains its
   * share of every step's micro-batches with the optimizer state sharded ({@link
   * moetune.engine.optim.ShardedAdamW}), and only rank 0 writes into the output directory
   * (run-config.yaml, metrics, TensorBoard, checkpoints). Every rank must be given the same config.
   */
  public static TrainingJob prepare(
      RunConfig cfg, Path resume, Consumer<String> log, LaunchEnv launch) throws IOException {
    return prepare(cfg, resume, log, launch, 1);
  }

  /**
   * Which experts this rank stores: its block when expert parallel (each rank holds, trains and
   * steps E/N experts), all of them otherwise. The divisibility and LoRA checks are the model's
   * one-line refusals, raised here before any weight is loaded.
   */
  private static moetune.engine.model.ExpertShard expertShard(
      int expertParallel, Communicator comm, int experts, LoraConfig lora) {
    if (expertParallel <= 1 || comm == null) {
      return moetune.engine.model.ExpertShard.ALL;
    }
    if (lora != null && (lora.gateUp() || lora.down())) {
      return moetune.engine.model.ExpertShard.ALL; // refused with one line by setExpertParallel
    }
    var shard = new moetune.engine.model.ExpertShard(comm.rank(), expertParallel);
    try {
      shard.perRank(experts);
    } catch (IllegalArgumentException e) {
      throw new ConfigException(e.getMessage());
    }
    return shard;
  }

  /**
   * As above with the experts of every MoE layer split over the group ({@code expertParallel} > 1,
   * which must be the group's size): each rank still trains its own micro-batches, their routed
   * rows go to the experts' ranks by all-to-all, and the aux loss is the group's (see
   * docs/multi-gpu.md).
   */
  public static TrainingJob prepare(
      RunConfig cfg, Path resume, Consumer<String> log, LaunchEnv launch, int expertParallel)
      throws IOException {
    int world = launch == null ? 1 : launch.worldSize();
    if (expertParallel < 1 || (expertParallel > 1 && expertParallel != world)) {
      throw new ConfigException(
          "--expert-parallel "
              + expertParallel
              + " with "
              + world
              + " rank(s): the experts are split over all ranks, so give --expert-parallel "
              + world
              + (world == 1 ? " (or start several ranks with --gpus N)" : ""));
    }
    int rank = launch == null ? 0 : launch.rank();
    TemplateRegistry templates = TemplateRegistry.builtin();
    if (cfg.templateFile() != null) {
      templates = templates.with(Path.of(cfg.templateFile()));
    }
    RunConfigCheck.check(cfg, templates);
    Path out = Path.of(cfg.out());
    Path checkpoint = resume == null ? null : Trainer.findCheckpoint(resume);
    // Checks of the output directory on rank 0 only: the others would race its first writes.
    if (rank == 0
        && checkpoint == null
        && !new CheckpointStore(out.resolve("checkpoints")).complete().isEmpty()) {
      throw new ConfigException(
          "field 'out': "
              + out
              + " already holds the checkpoints of a run; continue it with "
              + "--resume "
              + out
              + " or choose a new --out (nothing was changed)");
    }
    // The model's config, read ahead so a run that cannot fit its model fails before anything is
    // written or allocated (null: unreadable, and ModelSetup says why below).
    MixtralConfig modelConfig = peekConfig(cfg.model());
    if (modelConfig != null) {
      checkAgainstModel(cfg, modelConfig, log);
    }
    if (rank == 0 && checkpoint == null && Files.exists(out.resolve(METRICS_FILE))) {
      throw new ConfigException(
          "field 'out': "
              + out
              + " holds the "
              + METRICS_FILE
              + " of an earlier run (with no checkpoint to resume); delete it or choose a new"
              + " --out (nothing was changed)");
    }
    // Where this rank writes the files a run makes before training (a new model's base/, the
    // tokenizer with the chat template): the output directory on rank 0, a private one elsewhere
    // (the same content, made from the same config and seed, never read by anyone else).
    try {
      if (rank == 0) {
        Files.createDirectories(out);
        writeConfig(cfg, out);
      }
    } catch (java.nio.file.FileSystemException e) {
      throw new ConfigException(
          "field 'out': cannot write to "
              + out
              + " ("
              + (e.getReason() != null ? e.getReason() : e.getClass().getSimpleName())
              + (e.getFile() != null && !Path.of(e.getFile()).equals(out)
                  ? " at " + e.getFile()
                  : "")
              + "); choose a directory you can write");
    }
    Backend backend = Devices.open(RankGroup.device(cfg.device(), launch), log);
    Communicator comm = null;
    Path scratch = null;
    try {
      comm = RankGroup.join(backend, launch, log);
      scratch = rank == 0 ? null : Files.createTempDirectory("moetune-rank" + rank + "-");
      Path writeDir = scratch == null ? out : scratch;
      if (modelConfig != null) {
        checkFitsHeap(modelConfig, backend);
      }
      ModelSetup setup = ModelSetup.resolve(cfg.model(), cfg.tokenizer(), cfg.seed(), writeDir);
      if (cfg.addSpecialTokens()) {
        setup = ChatTemplateNotes.addSpecialTokens(cfg, templates, setup, writeDir, log);
      }
      log.accept("model: " + setup.describe());
      if (backend instanceof moetune.engine.backend.cuda.CudaBackend cuda) {
        log.accept(
            cuda.attentionPlan(
                Devices.precision(cfg.precision(), backend), setup.config().headDim()));
      }
      TrainingData data;
      List<Path> tokenizerFiles;
      try (ChatTokenizer tok = ChatTokenizer.load(setup.tokenizerDir())) {
        if (tok.vocabSize() > setup.config().vocabSize) {
          throw new ConfigException(
              "field 'model': the tokenizer in "
                  + setup.tokenizerDir()
                  + " has "
                  + tok.vocabSize()
                  + " tokens but the model's vocab_size is "
                  + setup.config().vocabSize);
        }
        data = TrainingData.prepare(cfg, tok);
        tokenizerFiles =
            ChatTemplateNotes.apply(cfg, templates, tok, setup.tokenizerFiles(), writeDir, log);
      }
      log.accept("data: " + data.summary());
      double aux = setup.auxLossCoef(cfg.auxLossCoef());
      var options = cfg.trainOptions(aux);
      LoraConfig lora = cfg.lora();
      MixtralModel model =
          setup.build(
              backend,
              Devices.precision(cfg.precision(), backend),
              options,
              cfg.seed(),
              lora,
              expertShard(expertParallel, comm, setup.config().numLocalExperts, lora));
      if (cfg.loraAdapter() != null && checkpoint == null) {
        LoraWeights.load(Path.of(cfg.loraAdapter()), model);
        log.accept("lora: continuing the adapter in " + cfg.loraAdapter());
      }
      log.accept(MemoryPlan.of(model, comm == null ? 1 : comm.size()).describe());
      log.accept(
          MemoryPlan.describeActivations(
              model.config(), model.options(), (long) options.microBatch() * cfg.maxLength()));
      log.accept(
          MemoryPlan.describeHead(
              model.config(), model.options(), (long) options.microBatch() * cfg.maxLength()));
      if (backend instanceof moetune.engine.backend.cuda.CudaBackend cuda) {
        String attentionScratch =
            cuda.attentionScratch(
                options.microBatch(),
                cfg.maxLength(),
                model.config().numAttentionHeads,
                model.config().numKeyValueHeads,
                model.config().headDim(),
                model.options().activations());
        if (attentionScratch != null) {
          log.accept(attentionScratch);
        }
      }
      MixtralTrainable trainable =
          new MixtralTrainable(
                  model, setup.config(), setup.generation(), tokenizerFiles, options, comm)
              .withBaseDir(setup.weightsDir()); // LoRA on a base on disk: adapter-only checkpoints
      trainable.warnings().forEach(w -> log.accept("warning: " + w));
      Trainer trainer =
          new Trainer(trainable, data.train(), data.eval(), options, out.resolve("checkpoints"));
      if (expertParallel > 1) {
        try {
          model.setExpertParallel(comm);
        } catch (IllegalArgumentException e) {
          throw new ConfigException(e.getMessage());
        }
        log.accept(
            "expert parallel: experts "
                + comm.rank() * (setup.config().numLocalExperts / expertParallel)
                + ".."
                + ((comm.rank() + 1) * (setup.config().numLocalExperts / expertParallel) - 1)
                + " of each layer on rank "
                + comm.rank());
      }
      if (comm != null) {
        try {
          trainer.setDataParallel(comm);
        } catch (IllegalArgumentException e) {
          throw new ConfigException("field 'grad-accum': " + e.getMessage());
        }
      }
      if (options.warmupSteps() > trainer.totalSteps()) {
        // A warning, not an error: the demo's warmup with a short --max-steps is a fair test run.
        log.accept(
            "warning: warmup-steps "
                + options.warmupSteps()
                + " is more than the run's "
                + trainer.totalSteps()
                + " steps, so the learning rate never reaches lr (it peaks at "
                + String.format(
                    java.util.Locale.ROOT, "%.3g", trainer.schedule().lr(trainer.totalSteps() - 1))
                + "); lower warmup-steps or raise max-steps/epochs");
      }
      trainer.addListener(logTo(log));
      if (checkpoint != null) {
        trainer.resumeFrom(checkpoint);
      }
      MetricsLog metrics = null; // rank 0 alone logs the (group's) metrics
      if (rank == 0) {
        Path metricsFile = out.resolve(METRICS_FILE);
        metrics =
            checkpoint == null
                ? MetricsLog.create(metricsFile)
                : MetricsLog.resume(metricsFile, trainer.step());
        trainer.addListener(metrics);
      }
      TensorBoardLog tensorBoard = null;
      if (rank == 0 && cfg.tensorBoard()) {
        tensorBoard = TensorBoardLog.create(out);
        trainer.addListener(tensorBoard);
        log.accept("tensorboard: " + tensorBoard.file() + " (tensorboard --logdir " + out + ")");
      }
      return new TrainingJob(
          cfg, out, backend, trainable, trainer, metrics, data, tensorBoard, comm, scratch);
    } catch (IOException | RuntimeException e) {
      if (comm != null) {
        comm.close();
      }
      backend.close();
      deleteScratch(scratch);
      throw e;
    }
  }

  private static void deleteScratch(Path scratch) {
    if (scratch == null) {
      return;
    }
    try (var files = Files.walk(scratch)) {
      files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException e) {
      // a temporary directory left behind: harmless
    }
  }

  /** The config.json of a model value (a directory or new:CONFIG.json), or null if unreadable. */
  static MixtralConfig peekConfig(String model) {
    try {
      Path file =
          model.startsWith(RunConfigCheck.NEW_PREFIX)
              ? Path.of(model.substring(RunConfigCheck.NEW_PREFIX.length()))
              : Path.of(model).resolve("config.json");
      return MixtralConfig.load(file);
    } catch (RuntimeException e) {
      return null;
    }
  }

  /**
   * Checks of the run config against the model: frozen layers exist, and max-length is within the
   * positions the model was trained for (a warning).
   */
  static void checkAgainstModel(RunConfig cfg, MixtralConfig c, Consumer<String> log) {
    for (int layer : cfg.freezeSpec().layers()) {
      if (layer >= c.numHiddenLayers) {
        throw new ConfigException(
            "field 'freeze': layer:"
                + layer
                + " does not exist; the model has "
                + c.numHiddenLayers
                + " layers (layer:0 to layer:"
                + (c.numHiddenLayers - 1)
                + ")");
      }
    }
    if (cfg.maxLength() > c.maxPositionEmbeddings) {
      log.accept(
          "warning: max-length "
              + cfg.maxLength()
              + " is above the model's max_position_embeddings "
              + c.maxPositionEmbeddings
              + "; positions past it were never trained (RoPE extrapolates), so quality there is"
              + " unknown");
    }
  }

  /**
   * A CPU run's weights, gradients and AdamW moments (16 bytes per parameter) must fit the Java
   * heap: checked before any is allocated, so a too-large model is one line, not an OOM.
   */
  static void checkFitsHeap(MixtralConfig c, Backend backend) {
    if (backend instanceof moetune.engine.backend.cpu.CpuBackend) {
      long params = 0;
      for (long[] shape : MixtralNames.hubShapes(c).values()) {
        params += moetune.engine.tensor.HostTensor.numel(shape);
      }
      long need = 16 * params; // weights + gradients + two AdamW moments, float32
      long heap = Runtime.getRuntime().maxMemory();
      if (need > heap) {
        throw new ConfigException(
            String.format(
                java.util.Locale.ROOT,
                "field 'model': the model has %,d parameters; training it on the CPU needs at"
                    + " least %.1f GiB of Java heap (16 bytes per parameter) but the heap is"
                    + " %.1f GiB; use a smaller model, a GPU (--device cuda), or more heap, e.g."
                    + " MOETUNE_JAVA_OPTS=-Xmx%dg",
                params,
                need / (double) (1L << 30),
                heap / (double) (1L << 30),
                (need >> 30) * 2 + 2));
      }
    }
  }

  private static TrainingListener logTo(Consumer<String> log) {
    return new TrainingListener() {
      @Override
      public void onLog(String line) {
        log.accept(line);
      }
    };
  }

  /** Writes the full config as run-config.yaml, atomically. */
  private static void writeConfig(RunConfig cfg, Path out) throws IOException {
    AtomicFiles.writeString(out.resolve(CONFIG_FILE), cfg.toYaml());
  }

  public Trainer trainer() {
    return trainer;
  }

  public RunConfig config() {
    return config;
  }

  public Path outDir() {
    return out;
  }

  public TrainingData data() {
    return data;
  }

  public MixtralModel model() {
    return trainable.model();
  }

  /** This process's rank in its data-parallel group (0 for one device). */
  public int rank() {
    return comm == null ? 0 : comm.rank();
  }

  /** Trains to the end or a stop request (blocks). */
  public RunSummary run() {
    return trainer.run();
  }

  @Override
  public void close() throws IOException {
    try (TensorBoardLog tb = tensorBoard) {
      if (metrics != null) {
        metrics.close();
      }
    } finally {
      try {
        trainable.close();
        if (comm != null) {
          comm.close();
        }
        backend.close();
      } finally {
        deleteScratch(scratch);
      }
    }
  }
}
