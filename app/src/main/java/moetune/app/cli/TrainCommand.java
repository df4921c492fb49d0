package moetune.app.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import moetune.app.config.ConfigException;
import moetune.app.config.ConfigField;
import moetune.app.config.FieldType;
import moetune.app.config.RunConfig;
import moetune.app.config.RunConfigFields;
import moetune.app.config.RunConfigParser;
import moetune.app.run.DemoSetup;
import moetune.app.run.Exporter;
import moetune.app.run.TrainingJob;
import moetune.engine.dist.LaunchEnv;
import moetune.engine.io.SafetensorsWriter;
import moetune.engine.tensor.DType;
import moetune.engine.train.CheckpointEvent;
import moetune.engine.train.EvalMetrics;
import moetune.engine.train.RunSummary;
import moetune.engine.train.StepMetrics;
import moetune.engine.train.TrainingListener;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code moetune train}: a run from a config file and/or flags (every config field is a flag,
 * generated from {@link RunConfigFields}), {@code --resume} of an earlier run, or {@code --demo}.
 * Ctrl-C and SIGTERM stop the run at the next step boundary with a checkpoint.
 */
@Command(
    name = "train",
    mixinStandardHelpOptions = true,
    description = {
      "Finetune (or train from scratch) a Mixtral model.",
      "Every run config field is also a flag; flags override the --config file.",
      "Names may be written with _ or - (--learning_rate = --learning-rate = --lr); the",
      "names axolotl and transformers' TrainingArguments use are aliases of the fields.",
      "Example: moetune train --demo --out runs/demo"
    })
public final class TrainCommand implements Callable<Integer> {
  /** Seconds a stop signal waits for a run that shows no progress (see {@link StopHook}). */
  static final double STOP_GRACE_S = 120;

  @Spec CommandSpec spec;

  @Option(names = "--config", paramLabel = "FILE", description = "run config, JSON or YAML")
  Path config;

  @Option(
      names = "--resume",
      paramLabel = "DIR",
      description = "continue the run in DIR (its --out) from its latest checkpoint")
  Path resume;

  @Option(
      names = "--ignore-unknown",
      description =
          "skip fields of the --config file that moetune does not know (axolotl's wandb_project,"
              + " flash_attention, ...) with a warning each, instead of stopping at the first")
  boolean ignoreUnknown;

  @Option(
      names = "--demo",
      description = "train a tiny Mixtral on the bundled sample data and export it to OUT/export")
  boolean demo;

  @Option(
      names = "--gpus",
      paramLabel = "N",
      description =
          "data parallel on this host: start N processes, one per GPU (cuda:0 to cuda:N-1; with"
              + " --device cpu, N CPU processes), each taking every N-th micro-batch of a step"
              + " (--grad-accum must be a multiple of N); under torchrun or SLURM leave it out"
              + " (their WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT say it)")
  Integer gpus;

  @Option(
      names = "--expert-parallel",
      paramLabel = "N",
      description =
          "split the experts of every MoE layer over the N ranks (N = --gpus or WORLD_SIZE, and a"
              + " divisor of the experts): routed rows go to their experts' rank by all-to-all, the"
              + " aux loss is over all ranks' rows")
  Integer expertParallel;

  /** The command with its generated field options. */
  public static CommandLine commandLine() {
    CommandLine cl = new CommandLine(new TrainCommand());
    CommandSpec spec = cl.getCommandSpec();
    for (ConfigField f : RunConfigFields.ALL) {
      OptionSpec.Builder b =
          OptionSpec.builder(f.names().stream().map(n -> "--" + n).toArray(String[]::new))
              .type(String.class)
              .paramLabel(label(f))
              .description(
                  f.help() + (f.required() ? " (required)" : defaultNote(f.defaultValue())));
      if (f.type() == FieldType.BOOL) {
        b.arity("0..1").fallbackValue("true");
      } else {
        b.arity("1");
      }
      spec.addOption(b.build());
    }
    return cl;
  }

  /** The name of f the command line used (its last occurrence), for aliases with value maps. */
  private static String typedName(java.util.List<String> args, ConfigField f) {
    String typed = f.key();
    for (String a : args) {
      for (String n : f.names()) {
        if (a.equals("--" + n) || a.startsWith("--" + n + "=")) {
          typed = n;
        }
      }
    }
    return typed;
  }

  private static String label(ConfigField f) {
    return switch (f.type()) {
      case CHOICE -> String.join("|", f.choices());
      case INT, LONG -> "N";
      case DOUBLE -> "X";
      case BOOL -> "true|false";
      case LIST, DATASETS -> "A,B,...";
      case STRING -> f.key().toUpperCase(Locale.ROOT);
    };
  }

  /** " (default: v)", or nothing for fields without a default (their help says what happens). */
  private static String defaultNote(Object v) {
    return v == null || v instanceof java.util.List<?> l && l.isEmpty()
        ? ""
        : " (default: " + v + ")";
  }

  /** The run's Ctrl-C / SIGTERM hook once installed (train()), released last by call(). */
  private StopHook hook;

  @Override
  public Integer call() {
    try {
      return train();
    } catch (Exception e) {
      return CliErrors.report("train", e, System.err);
    } finally {
      // after the report: when a SIGTERM came first (the launcher stopping the ranks after another
      // rank died), done() lets the waiting hook return and the JVM end, which would cut this
      // rank's one line
      if (hook != null) {
        hook.done();
        hook = null;
      }
    }
  }

  private int train() throws IOException, InterruptedException {
    LaunchEnv launch;
    try {
      launch = LaunchEnv.from(System.getenv());
    } catch (IllegalArgumentException e) {
      throw new ConfigException(e.getMessage());
    }
    if (gpus != null && gpus < 1) {
      throw new ConfigException("--gpus " + gpus + ": give 1 or more processes");
    }
    if (launch != null && gpus != null && gpus != launch.worldSize()) {
      throw new ConfigException(
          "--gpus "
              + gpus
              + " but the launcher set WORLD_SIZE="
              + launch.worldSize()
              + "; under a launcher leave --gpus out");
    }
    if (launch == null && gpus != null && gpus > 1) {
      // this process only starts the ranks, each of which is this command without --gpus
      return new RankLauncher(
              "train",
              gpus,
              RankLauncher.withoutGpus(spec.commandLine().getParseResult().originalArgs()),
              Map.of(),
              System.err,
              STOP_GRACE_S)
          .run();
    }
    int rank = launch == null ? 0 : launch.rank();
    int world = launch == null ? 1 : launch.worldSize();
    try {
      return train(launch, rank, world);
    } finally {
      deleteTree(demoDirs);
    }
  }

  private final java.util.List<Path> demoDirs = new java.util.ArrayList<>();

  /** A private directory for a rank's copy of the demo's files, deleted when the run ends. */
  private Path demoScratch() throws IOException {
    Path d = Files.createTempDirectory("moetune-demo-");
    demoDirs.add(d);
    return d;
  }

  private static void deleteTree(java.util.List<Path> dirs) {
    for (Path d : dirs) {
      try (var files = Files.walk(d)) {
        files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      } catch (IOException e) {
        // a temporary directory left behind: harmless
      }
    }
  }

  private int train(LaunchEnv launch, int rank, int world) throws IOException {
    Map<String, String> flags = new LinkedHashMap<>();
    var parsed = spec.commandLine().getParseResult();
    for (ConfigField f : RunConfigFields.ALL) {
      if (parsed.hasMatchedOption("--" + f.key())) {
        String value = parsed.matchedOptionValue("--" + f.key(), (String) null);
        flags.put(f.key(), RunConfigParser.flagValue(typedName(parsed.originalArgs(), f), value));
      }
    }
    Path configFile = config;
    if (configFile == null && resume != null) {
      configFile = savedConfig(resume);
    }
    if (resume != null) {
      // A resumed run writes into the directory it was given (a copied or moved run stays where
      // it is); the out recorded in its run-config.yaml is only where it was first made.
      Path runDir = runDir(resume);
      String given = flags.get("out");
      if (given != null && !Path.of(given).toAbsolutePath().normalize().equals(runDir)) {
        throw new ConfigException(
            "--out "
                + given
                + " with --resume "
                + resume
                + ": a resumed run writes into its own directory "
                + runDir
                + "; drop --out (or copy the run there first and resume the copy)");
      }
      flags.put("out", runDir.toString());
    }
    if (demo) {
      String out = flags.get("out");
      if (out == null) {
        throw new ConfigException(
            "--demo needs --out DIR: where the run, its checkpoints and the export go");
      }
      long seed =
          flags.containsKey("seed")
              ? RunConfig.defaults().with("seed", flags.get("seed")).seed()
              : 42L;
      // Rank 0 writes the demo's files into the run; other ranks make the same files privately.
      Path demoOut = rank == 0 ? Path.of(out) : demoScratch();
      Map<String, String> merged = new LinkedHashMap<>(DemoSetup.write(demoOut, seed));
      merged.put("out", out);
      if (world > 1) {
        // the demo's step of 8 sequences, split over the ranks (one micro-batch each)
        merged.put("micro-batch", Integer.toString(Math.max(1, 8 / world)));
        merged.put("grad-accum", Integer.toString(world));
      }
      merged.putAll(flags);
      flags = merged;
      configFile = null;
    }
    // Ranks other than 0 print only their errors (the launcher prefixes them with the rank).
    boolean quiet = rank != 0;
    RunConfig cfg =
        RunConfigParser.parse(
            configFile, flags, ignoreUnknown, quiet ? line -> {} : System.out::println);
    if (!quiet) {
      System.out.println(
          "run config" + (configFile == null ? "" : " (" + configFile + " and flags)") + ":");
      System.out.print(cfg.toYaml().indent(2));
    }
    ProgressBar bar = ProgressBar.forStdout();
    // Ctrl-C / SIGTERM: the hook asks the loop to stop at the next step boundary, then holds the
    // JVM open until the checkpoint is written and the summary printed (call() releases it last).
    RunSummary summary;
    Path out;
    try (TrainingJob job =
        TrainingJob.prepare(
            cfg,
            resume,
            quiet ? line -> {} : bar::onLog,
            launch,
            expertParallel == null ? 1 : expertParallel)) {
      out = job.outDir();
      if (!quiet) {
        job.trainer().addListener(bar);
      }
      StopHook h =
          new StopHook(
              job.trainer()::requestStop, Thread.currentThread(), STOP_GRACE_S, System.err);
      job.trainer()
          .addListener(
              new TrainingListener() {
                @Override
                public void onStep(StepMetrics m) {
                  h.alive();
                }

                @Override
                public void onCheckpoint(CheckpointEvent e) {
                  h.alive();
                }
              });
      hook = h.install();
      summary = job.run();
    }
    if (quiet) {
      return summary.outcome() == RunSummary.Outcome.FAILED ? 1 : 0;
    }
    report(summary, out, world);
    if (demo && summary.outcome() == RunSummary.Outcome.FINISHED) {
      Path export = out.resolve("export");
      Exporter.export(
          summary.lastCheckpoint(), export, DType.F32, SafetensorsWriter.DEFAULT_MAX_SHARD_BYTES);
      System.out.println("exported the trained model to " + export + " (HuggingFace format)");
      System.out.println(
          "try it:   ./moetune generate --model "
              + export
              + " --template chatml --prompt 'What is 12 + 30?'");
    }
    return summary.outcome() == RunSummary.Outcome.FAILED ? 1 : 0;
  }

  private static void report(RunSummary s, Path out, int world) {
    System.out.println();
    System.out.println(
        "run " + s.outcome().name().toLowerCase(Locale.ROOT) + " at step " + s.step());
    if (s.skippedSteps() > 0) {
      System.out.println("skipped:     " + s.skippedSteps() + " steps with non-finite numbers");
    }
    EvalMetrics a = s.firstEval();
    EvalMetrics b = s.lastEval();
    if (a != null && b != null) {
      System.out.printf(
          Locale.ROOT,
          "eval loss: %.4f at step %d -> %.4f at step %d (%+.1f%%)%n",
          a.loss(),
          a.step(),
          b.loss(),
          b.step(),
          100 * (b.loss() - a.loss()) / a.loss());
    }
    System.out.println("output:      " + out);
    System.out.println("metrics:     " + out.resolve("metrics.jsonl"));
    System.out.println("run config:  " + out.resolve(TrainingJob.CONFIG_FILE));
    if (s.lastCheckpoint() != null) {
      System.out.println("checkpoint:  " + s.lastCheckpoint());
    }
    if (s.outcome() == RunSummary.Outcome.STOPPED) {
      System.out.println(
          "continue:    ./moetune train --resume "
              + out
              + (world > 1 ? " --gpus N (any number of GPUs; resharded on load)" : ""));
    }
  }

  /**
   * The run directory of a --resume argument: the run's out (holding run-config.yaml or
   * checkpoints/), given as itself, its checkpoints/ directory or one step-N checkpoint.
   */
  static Path runDir(Path resume) {
    Path p = resume.toAbsolutePath().normalize();
    for (int up = 0; up < 3 && p != null; up++, p = p.getParent()) {
      if (Files.isRegularFile(p.resolve(TrainingJob.CONFIG_FILE))
          || Files.isDirectory(p.resolve("checkpoints"))) {
        return p;
      }
    }
    return resume.toAbsolutePath().normalize();
  }

  /** The run-config.yaml a --resume directory was made with. */
  private static Path savedConfig(Path resume) {
    Path p = resume.toAbsolutePath();
    for (int up = 0; up < 3 && p != null; up++, p = p.getParent()) { // out, checkpoints, step-N
      Path f = p.resolve(TrainingJob.CONFIG_FILE);
      if (Files.isRegularFile(f)) {
        return f;
      }
    }
    throw new ConfigException(
        "--resume "
            + resume
            + ": no "
            + TrainingJob.CONFIG_FILE
            + " there or above; give the run's "
            + "--out directory, or its config with --config");
  }
}
