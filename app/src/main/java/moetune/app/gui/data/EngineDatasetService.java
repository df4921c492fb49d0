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
import moetune.templates.ConversationTemplate;
import moetune.templates.TemplateRegistry;

/**
 * {@link DatasetService} on the datasets and templates modules: the same loader, template
 * registry, encoder (labels) and statistics that training uses.
 */
public final class EngineDatasetService implements DatasetService {

  /** Tokens of context decoded before each token to get its text with its leading space. */
  static final int CONTEXT = 4;

  private final TemplateRegistry templates = TemplateRegistry.builtin();
  /** The tokenizer of the last load; touched only by background work, one load at a time. */
  private ChatTokenizer tokenizer;

  @Override
  public List<String> formats() {
    return withDefaultFirst(RunConfigFields.get("format"), RunConfigFields.get("format")
        .choices());
  }

  @Override
  public List<String> templates() {
    return withDefaultFirst(RunConfigFields.get("template"),
        templates.all().stream().map(ConversationTemplate::name).sorted().toList());
  }

  @Override
  public List<String> labelModes() {
    return withDefaultFirst(RunConfigFields.get("labels"), RunConfigFields.get("labels")
        .choices());
  }

  @Override
  public synchronized DataPreview load(List<Path> files, String format, String template,
      String labels, Path tokenizerDir, int maxLength, boolean skipBad) {
    ConversationTemplate tpl = templates.get(template);
    if (tokenizer == null || !tokenizer.directory().equals(tokenizerDir)) {
      if (tokenizer != null) {
        tokenizer.close();
      }
      tokenizer = ChatTokenizer.load(tokenizerDir);
    }
    ChatEncoder encoder = new ChatEncoder(tokenizer, tpl, LabelMode.parse(labels), maxLength);
    List<EncodedChat> encoded = new ArrayList<>();
    List<String> errors = new ArrayList<>();
    int skipped = 0;
    for (Path file : files) {
      LoadedDataset ds = DatasetLoader.load(file, DatasetFormat.parse(format), skipBad);
      skipped += ds.skipped();
      errors.addAll(ds.skipReasons());
      for (ChatRecord r : ds.records()) {
        encoded.add(encoder.encode(r));
      }
    }
    return new DataPreview(encoded, DatasetStats.of(encoded, skipped, maxLength), errors);
  }

  /**
   * Each token's text is the decoding of it with up to {@link #CONTEXT} tokens before it,
   * minus the decoding of those tokens alone: decoding one SentencePiece token by itself
   * drops its leading space, and byte-fallback tokens only form characters together.
   */
  @Override
  public synchronized List<DataPreview.Token> tokens(EncodedChat r) {
    int[] ids = r.inputIds();
    List<DataPreview.Token> out = new ArrayList<>(ids.length);
    for (int i = 0; i < ids.length; i++) {
      int from = Math.max(0, i - CONTEXT);
      String before = tokenizer.decode(java.util.Arrays.copyOfRange(ids, from, i));
      String with = tokenizer.decode(java.util.Arrays.copyOfRange(ids, from, i + 1));
      String text = with.startsWith(before) ? with.substring(before.length())
          : tokenizer.decode(new int[] {ids[i]});
      out.add(new DataPreview.Token(ids[i], text, r.labels()[i] != ChatEncoder.IGNORE));
    }
    return out;
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
