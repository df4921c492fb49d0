package moetune.app.gui.export;

import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.DoubleConsumer;
import moetune.app.run.ChatGeneration;
import moetune.app.run.Exporter;
import moetune.app.run.LoadedModel;
import moetune.engine.generate.Generator;
import moetune.engine.tensor.DType;
import moetune.templates.ChatFormat;
import moetune.templates.TemplateRegistry;

/**
 * {@link ExportService} on the app's {@link Exporter} (what {@code moetune export} runs) and the
 * engine's {@link Generator}, set up as {@code moetune generate} sets it up: the prompt as one user
 * turn of the template with an open assistant turn, greedy at temperature 0, stopping on EOS or the
 * template's stop string.
 */
public final class EngineExportService implements ExportService {

  @Override
  public List<String> dtypes() {
    return List.of("bf16", "fp16", "fp32");
  }

  /** Progress is the fraction of weight tensors written (the exporter's own count). */
  @Override
  public Path export(
      Path checkpoint, Path target, String dtype, long shardBytes, DoubleConsumer progress)
      throws Exception {
    Path from = Exporter.modelDir(checkpoint, "checkpoint");
    Exporter.export(from, target, DType.parse(dtype), shardBytes, progress);
    return target;
  }

  @Override
  public Path exportAdapter(Path checkpoint, Path target) throws Exception {
    Exporter.exportAdapter(Exporter.modelDir(checkpoint, "checkpoint"), target);
    return target;
  }

  @Override
  public String generate(
      Path modelDir,
      String template,
      String prompt,
      int maxNewTokens,
      double temperature,
      double topP,
      Consumer<String> onText)
      throws Exception {
    Path dir = Exporter.modelDir(modelDir, "model");
    ChatFormat tpl =
        template == null || template.isBlank()
            ? null
            : TemplateRegistry.builtin().format(template, dir);
    try (LoadedModel lm = LoadedModel.open(dir, "auto", 0L, line -> {})) {
      return ChatGeneration.generate(
              lm,
              tpl,
              null,
              prompt,
              new Generator.Settings(maxNewTokens, temperature, topP, 0),
              onText)
          .text();
    }
  }
}
