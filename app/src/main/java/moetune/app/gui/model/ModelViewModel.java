package moetune.app.gui.model;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
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
import moetune.app.gui.GuiLog;
import moetune.app.gui.TaskExecutor;
import moetune.app.gui.Workspace;

/**
 * The Model screen: choose an HF directory or a config for a new model, read its summary off
 * the FX thread, and estimate full-finetuning memory for the chosen batch and length.
 */
public final class ModelViewModel {

  /** Where the model comes from. */
  public enum Source {
    HF_DIRECTORY, NEW_FROM_CONFIG
  }

  private final ModelInspector inspector;
  private final TaskExecutor executor;
  private final GuiLog log;
  private final Workspace workspace;

  private final ObjectProperty<Source> source = new SimpleObjectProperty<>(Source.HF_DIRECTORY);
  private final StringProperty path = new SimpleStringProperty("");
  private final StringProperty batch = new SimpleStringProperty("1");
  private final StringProperty seqLen = new SimpleStringProperty("2048");
  private final BooleanProperty bf16 = new SimpleBooleanProperty(true);

  private final StringProperty pathError = new SimpleStringProperty("");
  private final StringProperty estimateError = new SimpleStringProperty("");
  private final StringProperty status = new SimpleStringProperty("No model loaded.");
  private final BooleanProperty busy = new SimpleBooleanProperty(false);
  private final ObjectProperty<ModelFacts> facts = new SimpleObjectProperty<>();
  private final StringProperty memoryEstimate = new SimpleStringProperty("");
  private final ObservableList<String> gpus = FXCollections.observableArrayList();

  public ModelViewModel(ModelInspector inspector, TaskExecutor executor, GuiLog log,
      Workspace workspace) {
    this.inspector = inspector;
    this.executor = executor;
    this.log = log;
    this.workspace = workspace;
    path.addListener((o, a, b) -> validatePath());
    source.addListener((o, a, b) -> validatePath());
    batch.addListener((o, a, b) -> updateEstimate());
    seqLen.addListener((o, a, b) -> updateEstimate());
    bf16.addListener((o, a, b) -> updateEstimate());
    facts.addListener((o, a, b) -> updateEstimate());
    validatePath();
  }

  /** Reads the chosen model in the background; the summary appears when done. */
  public void load() {
    validatePath();
    if (!pathError.get().isEmpty()) {
      status.set(pathError.get());
      return;
    }
    Path p = Path.of(path.get().strip());
    Source src = source.get();
    busy.set(true);
    status.set("Reading " + p + " ...");
    executor.submit("inspect-model",
        () -> src == Source.HF_DIRECTORY ? inspector.inspectDirectory(p)
            : inspector.inspectNewConfig(p),
        f -> {
          busy.set(false);
          facts.set(f);
          workspace.model().set(f);
          workspace.modelSpec().set(src == Source.HF_DIRECTORY ? p.toString() : "new:" + p);
          workspace.tokenizerDir().set(src == Source.HF_DIRECTORY ? p.toString() : "");
          status.set("Loaded " + p);
          log.info("model: " + p + " (" + f.layers() + " layers, " + f.experts() + " experts)");
        },
        e -> {
          busy.set(false);
          status.set(log.error("Could not read the model", e));
        });
  }

  /** Asks the backend for CUDA devices in the background. */
  public void refreshGpus() {
    executor.submit("list-gpus", inspector::gpus, this::showGpus,
        e -> {
          gpus.setAll("no CUDA device (" + GuiLog.shortMessage(e) + ")");
          log.error("Could not list GPUs", e);
        });
  }

  private void showGpus(GpuInfo.Report report) {
    if (report.found().isEmpty()) {
      gpus.setAll("no CUDA device (" + report.whyNone() + ")");
      return;
    }
    gpus.setAll(report.found().stream()
        .map(g -> "cuda:" + g.index() + "  " + g.name() + "  "
            + MemoryEstimate.human(g.freeBytes()) + " free of "
            + MemoryEstimate.human(g.totalBytes()))
        .toList());
  }

  private void validatePath() {
    String p = path.get().strip();
    if (p.isEmpty()) {
      pathError.set(source.get() == Source.HF_DIRECTORY
          ? "Choose a model directory (with config.json and *.safetensors)."
          : "Choose a config.json for the new model.");
      return;
    }
    Path file = Path.of(p);
    if (source.get() == Source.HF_DIRECTORY) {
      if (!Files.isDirectory(file)) {
        pathError.set(p + ": not a directory; choose the folder that holds config.json.");
      } else if (!Files.isRegularFile(file.resolve("config.json"))) {
        pathError.set(p + ": has no config.json; choose an HF model directory.");
      } else {
        pathError.set("");
      }
    } else {
      pathError.set(Files.isRegularFile(file) ? ""
          : p + ": no such file; choose a Mixtral config.json.");
    }
  }

  private void updateEstimate() {
    Integer b = positive(batch.get());
    Integer t = positive(seqLen.get());
    if (b == null || t == null) {
      estimateError.set("Batch and sequence length must be whole numbers of at least 1.");
      memoryEstimate.set("");
      return;
    }
    estimateError.set("");
    ModelFacts f = facts.get();
    if (f == null) {
      memoryEstimate.set("");
      return;
    }
    long bytes = MemoryEstimate.bytes(f, b, t, bf16.get());
    memoryEstimate.set(String.format(Locale.ROOT, "%s (%s, batch %d x %d tokens)",
        MemoryEstimate.human(bytes), bf16.get() ? "bf16 mixed precision" : "float32", b, t));
  }

  private static Integer positive(String s) {
    try {
      int v = Integer.parseInt(s.strip());
      return v >= 1 ? v : null;
    } catch (NumberFormatException e) {
      return null;
    }
  }

  /** "8.47 M" style counts for parameter totals. */
  public static String count(long n) {
    if (n >= 1_000_000_000L) {
      return String.format(Locale.ROOT, "%.2f B", n / 1e9);
    }
    if (n >= 1_000_000L) {
      return String.format(Locale.ROOT, "%.2f M", n / 1e6);
    }
    if (n >= 1_000L) {
      return String.format(Locale.ROOT, "%.1f K", n / 1e3);
    }
    return Long.toString(n);
  }

  public BooleanBinding canLoad() {
    return Bindings.createBooleanBinding(() -> pathError.get().isEmpty() && !busy.get(),
        pathError, busy);
  }

  public ObjectProperty<Source> source() {
    return source;
  }

  public StringProperty path() {
    return path;
  }

  public StringProperty batch() {
    return batch;
  }

  public StringProperty seqLen() {
    return seqLen;
  }

  public BooleanProperty bf16() {
    return bf16;
  }

  public StringProperty pathError() {
    return pathError;
  }

  public StringProperty estimateError() {
    return estimateError;
  }

  public StringProperty status() {
    return status;
  }

  public BooleanProperty busy() {
    return busy;
  }

  public ObjectProperty<ModelFacts> facts() {
    return facts;
  }

  public StringProperty memoryEstimate() {
    return memoryEstimate;
  }

  public ObservableList<String> gpus() {
    return gpus;
  }
}
