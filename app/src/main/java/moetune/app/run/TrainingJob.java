package moetune.app.run;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.function.Consumer;
import moetune.app.config.ConfigException;
import moetune.app.config.RunConfig;
import moetune.app.config.RunConfigCheck;
import moetune.datasets.ChatTokenizer;
import moetune.engine.backend.Backend;
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

  private final RunConfig config;
  private final Path out;
  private final Backend backend;
  private final MixtralTrainable trainable;
  private final Trainer trainer;
  private final MetricsLog metrics;
  private final TrainingData data;

  private TrainingJob(
      RunConfig config,
      Path out,
      Backend backend,
      MixtralTrainable trainable,
      Trainer trainer,
      MetricsLog metrics,
      TrainingData data) {
    this.config = config;
    this.out = out;
    this.backend = backend;
    this.trainable = trainable;
    this.trainer = trainer;
    this.metrics = metrics;
    this.data = data;
  }

  /**
   * Sets a run up; with {@code resume} (a checkpoint directory, see {@link Trainer#findCheckpoint})
   * it continues that run. Lines for the user go to {@code log}.
   */
  public static TrainingJob prepare(RunConfig cfg, Path resume, Consumer<String> log)
      throws IOException {
    TemplateRegistry templates = TemplateRegistry.builtin();
    if (cfg.templateFile() != null) {
      templates = templates.with(Path.of(cfg.templateFile()));
    }
    RunConfigCheck.check(cfg, templates);
    Path out = Path.of(cfg.out());
    Path checkpoint = resume == null ? null : Trainer.findCheckpoint(resume);
    if (checkpoint == null
        && !new CheckpointStore(out.resolve("checkpoints")).complete().isEmpty()) {
      throw new ConfigException(
          "field 'out': "
              + out
              + " already holds the checkpoints of a run; continue it with "
              + "--resume "
              + out
              + " or choose a new --out (nothing was changed)");
    }
    Files.createDirectories(out);
    writeConfig(cfg, out);
    Backend backend = Devices.open(cfg.device(), log);
    try {
      ModelSetup setup = ModelSetup.resolve(cfg.model(), cfg.tokenizer(), cfg.seed(), out);
      log.accept("model: " + setup.describe());
      TrainingData data;
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
      }
      log.accept("data: " + data.summary());
      double aux = setup.auxLossCoef(cfg.auxLossCoef());
      var options = cfg.trainOptions(aux);
      LoraConfig lora = cfg.lora();
      MixtralModel model =
          setup.build(
              backend, Devices.precision(cfg.precision(), backend), options, cfg.seed(), lora);
      if (cfg.loraAdapter() != null && checkpoint == null) {
        LoraWeights.load(Path.of(cfg.loraAdapter()), model);
        log.accept("lora: continuing the adapter in " + cfg.loraAdapter());
      }
      log.accept(MemoryPlan.of(model).describe());
      MixtralTrainable trainable =
          new MixtralTrainable(
              model, setup.config(), setup.generation(), setup.tokenizerFiles(), options);
      trainable.warnings().forEach(w -> log.accept("warning: " + w));
      Trainer trainer =
          new Trainer(trainable, data.train(), data.eval(), options, out.resolve("checkpoints"));
      trainer.addListener(logTo(log));
      if (checkpoint != null) {
        trainer.resumeFrom(checkpoint);
      }
      Path metricsFile = out.resolve("metrics.jsonl");
      MetricsLog metrics =
          checkpoint == null
              ? MetricsLog.create(metricsFile)
              : MetricsLog.resume(metricsFile, trainer.step());
      trainer.addListener(metrics);
      return new TrainingJob(cfg, out, backend, trainable, trainer, metrics, data);
    } catch (IOException | RuntimeException e) {
      backend.close();
      throw e;
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
    Path tmp = out.resolve(CONFIG_FILE + ".tmp");
    Files.writeString(tmp, cfg.toYaml(), StandardCharsets.UTF_8);
    Files.move(
        tmp,
        out.resolve(CONFIG_FILE),
        StandardCopyOption.ATOMIC_MOVE,
        StandardCopyOption.REPLACE_EXISTING);
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

  /** Trains to the end or a stop request (blocks). */
  public RunSummary run() {
    return trainer.run();
  }

  @Override
  public void close() throws IOException {
    try {
      metrics.close();
    } finally {
      trainable.close();
      backend.close();
    }
  }
}
