package moetune.app.gui.data;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import moetune.app.config.ConfigField;
import moetune.app.config.RunConfigFields;
import moetune.datasets.ChatEncoder;
import moetune.datasets.ChatRecord;
import moetune.datasets.ChatTokenizer;
import moetune.datasets.DatasetFormat;
import moetune.datasets.DatasetLoader;
import moetune.datasets.DatasetStats;
import moetune.datasets.EncodedChat;
import moetune.datasets.LabelMode;
import moetune.datasets.LoadedDataset;
import moetune.datasets.TokenView;
import moetune.templates.ChatFormat;
import moetune.templates.TemplateRegistry;

/**
 * {@link DatasetService} on the datasets and templates modules: the same loader, template registry,
 * encoder (labels) and statistics that training uses.
 */
public final class EngineDatasetService implements DatasetService {

  private final TemplateRegistry templates = TemplateRegistry.builtin();

  /** The tokenizer, encoder and records of the last load (guarded by this). */
  private ChatTokenizer tokenizer;

  private ChatEncoder encoder;
  private List<ChatRecord> records = List.of();

  @Override
  public List<String> formats() {
    return withDefaultFirst(RunConfigFields.get("format"), RunConfigFields.get("format").choices());
  }

  @Override
  public List<String> templates() {
    return withDefaultFirst(
        RunConfigFields.get("template"), templates.names().stream().sorted().toList());
  }

  @Override
  public List<String> labelModes() {
    return withDefaultFirst(RunConfigFields.get("labels"), RunConfigFields.get("labels").choices());
  }

  @Override
  public synchronized DataPreview load(
      List<Path> files,
      String format,
      String template,
      String labels,
      Path tokenizerDir,
      int maxLength,
      boolean skipBad) {
    ChatFormat tpl = templates.format(template, tokenizerDir);
    if (tokenizer == null || !tokenizer.directory().equals(tokenizerDir)) {
      if (tokenizer != null) {
        tokenizer.close();
      }
      tokenizer = ChatTokenizer.load(tokenizerDir);
    }
    ChatEncoder enc = new ChatEncoder(tokenizer, tpl, LabelMode.parse(labels), maxLength);
    List<ChatRecord> all = new ArrayList<>();
    List<EncodedChat> encoded = new ArrayList<>();
    List<String> errors = new ArrayList<>();
    int skipped = 0;
    for (Path file : files) {
      LoadedDataset ds = DatasetLoader.load(file, DatasetFormat.parse(format), skipBad);
      skipped += ds.skipped();
      errors.addAll(ds.skipReasons());
      for (ChatRecord r : ds.records()) {
        all.add(r);
        encoded.add(enc.encode(r));
      }
    }
    encoder = enc;
    records = all;
    return new DataPreview(all, encoded, DatasetStats.of(encoded, skipped, maxLength), errors);
  }

  @Override
  public synchronized List<TokenView> tokens(int index) {
    if (encoder == null || index < 0 || index >= records.size()) {
      throw new IllegalArgumentException(
          "record " + index + " is not in the last load (" + records.size() + " records)");
    }
    return encoder.inspect(records.get(index));
  }

  private static List<String> withDefaultFirst(ConfigField f, List<String> all) {
    List<String> out = new ArrayList<>();
    Object def = f.defaultValue();
    if (def != null && all.contains(def.toString())) {
      out.add(def.toString());
    }
    for (String s : all) {
      if (!out.contains(s)) {
        out.add(s);
      }
    }
    return out;
  }
}
