package moetune.app.gui.export;

import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.DoubleConsumer;
import moetune.app.run.Devices;
import moetune.app.run.Exporter;
import moetune.datasets.ChatTokenizer;
import moetune.engine.backend.Backend;
import moetune.engine.generate.Generator;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.ModelOptions;
import moetune.engine.tensor.DType;
import moetune.templates.ConversationTemplate;
import moetune.templates.Message;
import moetune.templates.Role;
import moetune.templates.TemplateRegistry;

/**
 * {@link ExportService} on the app's {@link Exporter} (what {@code moetune export} runs) and the
 * engine's {@link Generator}, set up as {@code moetune generate} sets it up: the prompt as one
 * user turn of the template with an open assistant turn, greedy at temperature 0, stopping on
 * EOS or the template's stop string.
 */
public final class EngineExportService implements ExportService {

  @Override
  public List<String> dtypes() {
    return List.of("bf16", "fp16", "fp32");
  }

  /** The exporter reports no fractions, so progress is "working" (-1) until it returns. */
  @Override
  public Path export(Path checkpoint, Path target, String dtype, long shardBytes,
      DoubleConsumer progress) throws Exception {
    progress.accept(-1);
    Path from = Exporter.modelDir(checkpoint, "checkpoint");
    Exporter.export(from, target, DType.parse(dtype), shardBytes);
    return target;
  }

  @Override
  public String generate(Path modelDir, String template, String prompt, int maxNewTokens,
      double temperature, double topP, Consumer<String> onText) throws Exception {
    Path dir = Exporter.modelDir(modelDir, "model");
    ConversationTemplate tpl = template == null || template.isBlank() ? null
        : TemplateRegistry.builtin().get(template);
    String text = tpl == null ? prompt
        : tpl.prompt(null, List.of(Message.user(prompt), new Message(Role.ASSISTANT, null)));
    String stop = tpl == null ? null : tpl.stopStr();
    try (ChatTokenizer tok = ChatTokenizer.load(dir);
        Backend be = Devices.open("auto", line -> { });
        MixtralModel m = MixtralModel.load(dir, be,
            new ModelOptions(Devices.precision("auto", be), 0))) {
      Set<Integer> eos = new LinkedHashSet<>(m.config().eosTokenIds);
      eos.add(tok.eosId());
      StringBuilder shown = new StringBuilder();
      Generator.Result r = Generator.generate(m, tok.encode(text).ids(),
          new Generator.Settings(maxNewTokens, temperature, topP, 0), eos, sofar -> {
            String now = tok.decode(sofar);
            if (now.startsWith(shown.toString()) && now.length() > shown.length()) {
              onText.accept(now.substring(shown.length()));
              shown.setLength(0);
              shown.append(now);
            }
            return stop != null && now.contains(stop);
          });
      String out = tok.decode(r.tokens());
      return stop != null && out.contains(stop) ? out.substring(0, out.indexOf(stop)) : out;
    }
  }
}
