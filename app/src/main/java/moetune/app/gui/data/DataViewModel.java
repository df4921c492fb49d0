package moetune.app.gui.data;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javafx.beans.binding.Bindings;
import javafx.beans.binding.BooleanBinding;
import javafx.beans.property.BooleanProperty;
import javafx.beans.property.ObjectProperty;
import javafx.beans.property.SimpleBooleanProperty;
import javafx.beans.property.SimpleObjectProperty;
import javafx.beans.property.SimpleStringProperty;
import javafx.beans.property.StringProperty;
import javafx.collections.FXCollections;
import javafx.collections.ObservableList;
import moetune.app.config.RunConfigFields;
import moetune.app.gui.GuiLog;
import moetune.app.gui.TaskExecutor;
import moetune.app.gui.Workspace;
import moetune.datasets.DatasetStats;
import moetune.datasets.EncodedChat;
import moetune.datasets.TokenView;

/**
 * The Data screen: dataset files, format and template in; records with their label masks,
 * statistics and load errors out. Loading runs off the FX thread.
 */
public final class DataViewModel {

  private final DatasetService service;
  private final TaskExecutor executor;
  private final GuiLog log;
  private final Workspace workspace;

  /** Dataset files separated by ';' or new lines (several datasets are concatenated). */
  private final StringProperty files = new SimpleStringProperty("");

  private final StringProperty format = new SimpleStringProperty("");
  private final StringProperty template = new SimpleStringProperty("");
  private final StringProperty maxLength =
      new SimpleStringProperty(String.valueOf(RunConfigFields.get("max-length").defaultValue()));
  private final BooleanProperty skipBad = new SimpleBooleanProperty(true);

  private final StringProperty filesError = new SimpleStringProperty("");
  private final StringProperty maxLengthError = new SimpleStringProperty("");
  private final StringProperty status = new SimpleStringProperty("No dataset loaded.");
  private final BooleanProperty busy = new SimpleBooleanProperty(false);

  private final ObservableList<String> formats = FXCollections.observableArrayList();
  private final ObservableList<String> templates = FXCollections.observableArrayList();
  private final ObservableList<String> labelModes = FXCollections.observableArrayList();
  private final StringProperty labels = new SimpleStringProperty("");
  private final ObservableList<EncodedChat> records = FXCollections.observableArrayList();
  private final ObservableList<String> errors = FXCollections.observableArrayList();
  private final ObjectProperty<DatasetStats> stats = new SimpleObjectProperty<>();
  private final ObjectProperty<EncodedChat> selected = new SimpleObjectProperty<>();

  /** The selected record's tokens with their text and label mask. */
  private final ObservableList<TokenView> tokens = FXCollections.observableArrayList();

  public DataViewModel(
      DatasetService service, TaskExecutor executor, GuiLog log, Workspace workspace) {
    this.service = service;
    this.executor = executor;
    this.log = log;
    this.workspace = workspace;
    formats.setAll(service.formats());
    templates.setAll(service.templates());
    format.set(formats.isEmpty() ? "" : formats.get(0));
    template.set(templates.isEmpty() ? "" : templates.get(0));
    labelModes.setAll(service.labelModes());
    labels.set(labelModes.isEmpty() ? "" : labelModes.get(0));
    selected.addListener((o, a, b) -> showTokens(b));
    files.addListener((o, a, b) -> validate());
    maxLength.addListener((o, a, b) -> validate());
    validate();
  }

  /** The file list as paths, in the order given. */
  public List<Path> fileList() {
    List<Path> out = new ArrayList<>();
    for (String s : files.get().split("[;\n]")) {
      if (!s.isBlank()) {
        out.add(Path.of(s.strip()));
      }
    }
    return out;
  }

  /** Appends a file chosen in a file dialog. */
  public void addFile(Path file) {
    String cur = files.get().strip();
    files.set(cur.isEmpty() ? file.toString() : cur + ";" + file);
  }

  public void load() {
    validate();
    if (!filesError.get().isEmpty() || !maxLengthError.get().isEmpty()) {
      status.set(filesError.get().isEmpty() ? maxLengthError.get() : filesError.get());
      return;
    }
    String tok = workspace.tokenizerDir().get();
    if (tok == null || tok.isBlank()) {
      status.set("Load a model with a tokenizer.json on the Model screen first.");
      return;
    }
    List<Path> paths = fileList();
    String fmt = format.get();
    String tpl = template.get();
    String lab = labels.get();
    int max = Integer.parseInt(maxLength.get().strip());
    boolean skip = skipBad.get();
    busy.set(true);
    status.set("Loading " + paths.size() + " file(s) ...");
    executor.submit(
        "load-data",
        () -> service.load(paths, fmt, tpl, lab, Path.of(tok), max, skip),
        p -> {
          busy.set(false);
          records.setAll(p.encoded());
          errors.setAll(p.errors());
          stats.set(p.stats());
          selected.set(p.encoded().isEmpty() ? null : p.encoded().get(0));
          workspace.datasets().set(String.join(",", paths.stream().map(Path::toString).toList()));
          workspace.datasetFormat().set(fmt);
          workspace.template().set(tpl);
          workspace.labels().set(lab);
          workspace.maxLength().set(Integer.toString(max));
          status.set(
              p.stats().records()
                  + " records, "
                  + p.stats().tokens()
                  + " tokens"
                  + (p.errors().isEmpty()
                      ? ""
                      : ", " + p.errors().size() + " bad record(s) skipped"));
          log.info("data: " + status.get());
          for (String e : p.errors()) {
            log.info("data: skipped " + e);
          }
        },
        e -> {
          busy.set(false);
          status.set(log.error("Could not load the data", e));
        });
  }

  /** Loads the record's token texts in the background (decoding is per token). */
  private void showTokens(EncodedChat r) {
    if (r == null) {
      tokens.clear();
      return;
    }
    int index = records.indexOf(r);
    executor.submit(
        "inspect-record",
        () -> service.tokens(index),
        t -> {
          if (selected.get() == r) {
            tokens.setAll(t);
          }
        },
        e -> status.set(log.error("Could not show " + r.origin(), e)));
  }

  private void validate() {
    List<Path> paths = fileList();
    String missing =
        paths.stream()
            .filter(p -> !Files.isRegularFile(p))
            .map(Path::toString)
            .findFirst()
            .orElse(null);
    if (paths.isEmpty()) {
      filesError.set("Add at least one dataset file (JSON or JSONL).");
    } else if (missing != null) {
      filesError.set(missing + ": no such file.");
    } else {
      filesError.set("");
    }
    try {
      int v = Integer.parseInt(maxLength.get().strip());
      maxLengthError.set(v >= 2 ? "" : "max length must be at least 2 tokens.");
    } catch (NumberFormatException e) {
      maxLengthError.set("max length must be a whole number of tokens.");
    }
  }

  /**
   * Token spellings with trained runs in [[ ]] and SentencePiece's word marker as a space: what the
   * highlight shows, as text.
   */
  public static String markup(List<TokenView> tokens) {
    StringBuilder sb = new StringBuilder();
    boolean in = false;
    for (TokenView t : tokens) {
      if (t.trained() != in) {
        sb.append(in ? "]]" : "[[");
        in = t.trained();
      }
      sb.append(t.token().replace('\u2581', ' '));
    }
    if (in) {
      sb.append("]]");
    }
    return sb.toString();
  }

  /** The histogram's bin labels, e.g. "16-31". */
  public static List<String> binLabels(DatasetStats s) {
    return s.histogram().stream().map(b -> b.from() + "-" + (b.to() - 1)).toList();
  }

  public BooleanBinding canLoad() {
    return Bindings.createBooleanBinding(
        () -> filesError.get().isEmpty() && maxLengthError.get().isEmpty() && !busy.get(),
        filesError,
        maxLengthError,
        busy);
  }

  public StringProperty files() {
    return files;
  }

  public StringProperty format() {
    return format;
  }

  public StringProperty template() {
    return template;
  }

  public StringProperty maxLength() {
    return maxLength;
  }

  public BooleanProperty skipBad() {
    return skipBad;
  }

  public StringProperty filesError() {
    return filesError;
  }

  public StringProperty maxLengthError() {
    return maxLengthError;
  }

  public StringProperty status() {
    return status;
  }

  public BooleanProperty busy() {
    return busy;
  }

  public ObservableList<String> formats() {
    return formats;
  }

  public ObservableList<String> templates() {
    return templates;
  }

  public ObservableList<String> labelModes() {
    return labelModes;
  }

  public StringProperty labels() {
    return labels;
  }

  public ObservableList<TokenView> tokens() {
    return tokens;
  }

  public ObservableList<EncodedChat> records() {
    return records;
  }

  public ObservableList<String> errors() {
    return errors;
  }

  public ObjectProperty<DatasetStats> stats() {
    return stats;
  }

  public ObjectProperty<EncodedChat> selected() {
    return selected;
  }
}
