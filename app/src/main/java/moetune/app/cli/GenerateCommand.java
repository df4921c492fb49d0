package moetune.app.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import moetune.app.config.ConfigException;
import moetune.app.run.ChatGeneration;
import moetune.app.run.Exporter;
import moetune.app.run.LoadedModel;
import moetune.engine.generate.Generator;
import moetune.templates.ChatFormat;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code moetune generate}: continue a prompt with a KV cache. */
@Command(
    name = "generate",
    mixinStandardHelpOptions = true,
    description = "Generate text from a model (a model directory or a train run's --out).")
public final class GenerateCommand implements Callable<Integer> {
  @Mixin ModelTarget target;

  @Option(
      names = "--prompt",
      required = true,
      paramLabel = "TEXT",
      description = "the prompt (a user message with --template)")
  String prompt;

  @Option(
      names = "--template",
      paramLabel = "NAME",
      description = "render the prompt as a one-turn chat with this template")
  String template;

  @Option(names = "--system", paramLabel = "TEXT", description = "system message (with --template)")
  String system;

  @Option(
      names = "--template-file",
      paramLabel = "FILE",
      description = "JSON file of user FastChat templates")
  Path templateFile;

  @Option(
      names = "--max-new-tokens",
      defaultValue = "128",
      paramLabel = "N",
      description = "default: ${DEFAULT-VALUE}")
  int maxNewTokens;

  @Option(
      names = "--temperature",
      defaultValue = "0",
      paramLabel = "T",
      description = "0 is greedy (default: ${DEFAULT-VALUE})")
  double temperature;

  @Option(
      names = "--top-p",
      defaultValue = "1.0",
      paramLabel = "P",
      description = "nucleus sampling mass (default: ${DEFAULT-VALUE})")
  double topP;

  @Option(
      names = "--seed",
      defaultValue = "0",
      paramLabel = "S",
      description = "sampling seed (default: ${DEFAULT-VALUE})")
  long seed;

  @Override
  public Integer call() {
    try {
      if (maxNewTokens < 0 || !(temperature >= 0) || !(topP > 0 && topP <= 1)) {
        throw new ConfigException(
            "--max-new-tokens must be >= 0, --temperature >= 0 and --top-p in (0, 1]");
      }
      Path dir = Exporter.modelDir(target.model, "--model");
      ChatFormat tpl =
          template == null ? null : TemplateCommand.registry(templateFile).format(template, dir);
      try (LoadedModel lm =
          LoadedModel.open(dir, target.device, seed, line -> System.err.println(line))) {
        ChatGeneration.Reply r =
            ChatGeneration.generate(
                lm,
                tpl,
                system,
                prompt,
                new Generator.Settings(maxNewTokens, temperature, topP, seed),
                piece -> {});
        System.out.println(r.text());
        System.err.println(
            "["
                + r.tokens()
                + " tokens, stopped: "
                + r.stop().name().toLowerCase(java.util.Locale.ROOT)
                + "]");
      }
      return 0;
    } catch (Exception e) {
      return CliErrors.report("generate", e, System.err);
    }
  }
}
