package moetune.app.cli;

import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import moetune.app.config.ConfigException;
import moetune.app.config.RunConfigFields;
import moetune.app.run.Exporter;
import moetune.app.run.LoadedModel;
import moetune.datasets.DataConfig;
import moetune.datasets.DataPipeline;
import moetune.datasets.DatasetFormat;
import moetune.datasets.LabelMode;
import moetune.datasets.PreparedData;
import moetune.engine.model.MixtralModel;
import moetune.engine.train.EvalMetrics;
import moetune.engine.train.Evaluation;
import moetune.engine.train.MixtralTrainable;
import moetune.engine.train.SequenceSource;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code moetune eval}: loss and perplexity of a model on a dataset. */
@Command(
    name = "eval",
    mixinStandardHelpOptions = true,
    description =
        "Loss and perplexity of a model on a dataset (every conversation, labelled tokens only).")
public final class EvalCommand implements Callable<Integer> {
  @Mixin ModelTarget target;

  @Option(
      names = {"--data", "--datasets"},
      required = true,
      paramLabel = "FILE",
      description = "JSON, JSONL or Parquet dataset")
  Path data;

  @Option(
      names = "--skip-invalid",
      description = "skip bad records (counted and reported) instead of stopping at the first")
  boolean skipInvalid;

  @Option(
      names = "--format",
      defaultValue = "auto",
      paramLabel = "F",
      description = "auto, sharegpt, openai, alpaca (default: ${DEFAULT-VALUE})")
  String format;

  @Option(
      names = "--template",
      defaultValue = "chatml",
      paramLabel = "T",
      description = "conversation template (default: ${DEFAULT-VALUE})")
  String template;

  @Option(
      names = "--template-file",
      paramLabel = "FILE",
      description = "JSON file of user FastChat templates")
  Path templateFile;

  @Option(
      names = "--labels",
      defaultValue = "all-assistant",
      paramLabel = "L",
      description = "all-assistant, last-turn, everything (default: ${DEFAULT-VALUE})")
  String labels;

  @Option(
      names = "--max-length",
      defaultValue = "" + RunConfigFields.MAX_LENGTH,
      paramLabel = "N",
      description = "tokens per sequence (default: ${DEFAULT-VALUE})")
  int maxLength;

  @Option(
      names = "--micro-batch",
      defaultValue = "4",
      paramLabel = "N",
      description = "sequences per forward (default: ${DEFAULT-VALUE})")
  int microBatch;

  @Override
  public Integer call() {
    try {
      if (maxLength < 8 || microBatch < 1) {
        throw new ConfigException("--max-length must be >= 8 and --micro-batch >= 1");
      }
      Path dir = Exporter.modelDir(target.model, "--model");
      DataConfig dc =
          new DataConfig(
              data,
              DatasetFormat.parse(format),
              skipInvalid,
              template,
              templateFile,
              LabelMode.parse(labels),
              maxLength,
              true,
              0.0,
              0L);
      try (LoadedModel lm =
          LoadedModel.open(dir, target.device, 0L, line -> System.err.println(line))) {
        MixtralModel m = lm.model();
        PreparedData p = DataPipeline.prepare(dc, lm.tokenizer());
        EvalMetrics r =
            Evaluation.run(
                SequenceSource.of(p.train()),
                microBatch,
                b -> MixtralTrainable.evalLossSum(m, b),
                0);
        System.out.printf(
            Locale.ROOT,
            "%s on %s: loss %.4f, perplexity %.3f over %,d labelled tokens (%d conversations)%n",
            dir,
            data,
            r.loss(),
            r.perplexity(),
            r.tokens(),
            p.stats().records());
        if (!p.stats().lossNote().isEmpty()) {
          System.out.println(data + ": " + p.stats().lossNote());
        }
      }
      return 0;
    } catch (Exception e) {
      return CliErrors.report("eval", e, System.err);
    }
  }
}
