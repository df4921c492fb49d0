package moetune.app.gui.export;

import java.nio.file.Files;
import java.nio.file.Path;
import javafx.beans.binding.Bindings;
import javafx.beans.binding.BooleanBinding;
import javafx.beans.property.BooleanProperty;
import javafx.beans.property.DoubleProperty;
import javafx.beans.property.SimpleBooleanProperty;
import javafx.beans.property.SimpleDoubleProperty;
import javafx.beans.property.SimpleStringProperty;
import javafx.beans.property.StringProperty;
import javafx.collections.FXCollections;
import javafx.collections.ObservableList;
import moetune.app.gui.GuiLog;
import moetune.app.gui.TaskExecutor;
import moetune.app.gui.Workspace;
import moetune.engine.io.SafetensorsWriter;

/**
 * The Export screen: export a checkpoint to an HF directory (dtype, shard size, target), with
 * progress and the result's location; and a prompt box that generates with the current checkpoint
 * or the exported model.
 */
public final class ExportViewModel {

  private final ExportService service;
  private final TaskExecutor executor;
  private final GuiLog log;
  private final Workspace workspace;

  private final StringProperty checkpoint = new SimpleStringProperty("");
  private final StringProperty target = new SimpleStringProperty("");
  private final StringProperty dtype = new SimpleStringProperty("");
  private final StringProperty shardSize = new SimpleStringProperty("5GB");
  private final StringProperty checkpointError = new SimpleStringProperty("");
  private final StringProperty targetError = new SimpleStringProperty("");
  private final StringProperty shardError = new SimpleStringProperty("");
  private final DoubleProperty progress = new SimpleDoubleProperty(0);
  private final StringProperty result = new SimpleStringProperty("");
  private final StringProperty status = new SimpleStringProperty("Nothing exported yet.");
  private final BooleanProperty exporting = new SimpleBooleanProperty(false);
  private final ObservableList<String> dtypes = FXCollections.observableArrayList();

  /** Export a LoRA run's adapter (PEFT directory) instead of merged full weights. */
  private final BooleanProperty adapterOnly = new SimpleBooleanProperty(false);

  /** Which model the prompt box uses: the checkpoint field or the exported directory. */
  private final BooleanProperty useExported = new SimpleBooleanProperty(false);

  private final StringProperty prompt = new SimpleStringProperty("");
  private final StringProperty maxNewTokens = new SimpleStringProperty("64");
  private final StringProperty temperature = new SimpleStringProperty("0");
  private final StringProperty reply = new SimpleStringProperty("");
  private final StringProperty generateStatus = new SimpleStringProperty("");
  private final BooleanProperty generating = new SimpleBooleanProperty(false);

  public ExportViewModel(
      ExportService service, TaskExecutor executor, GuiLog log, Workspace workspace) {
    this.service = service;
    this.executor = executor;
    this.log = log;
    this.workspace = workspace;
    dtypes.setAll(service.dtypes());
    dtype.set(dtypes.isEmpty() ? "" : dtypes.get(0));
    workspace.checkpointDir().addListener((o, a, b) -> checkpoint.set(b));
    workspace
        .runDir()
        .addListener(
            (o, a, b) -> {
              if (!b.isBlank()) {
                target.set(Path.of(b.strip()).resolve("export").toString());
              }
            });
    checkpoint.addListener((o, a, b) -> validate());
    target.addListener((o, a, b) -> validate());
    shardSize.addListener((o, a, b) -> validate());
    validate();
  }

  public void export() {
    validate();
    if (!canExport().get()) {
      status.set(firstNonEmpty(checkpointError.get(), targetError.get(), shardError.get()));
      return;
    }
    Path ckpt = Path.of(checkpoint.get().strip());
    Path out = Path.of(target.get().strip());
    String dt = dtype.get();
    long shard = SafetensorsWriter.parseSize(shardSize.get().strip());
    exporting.set(true);
    progress.set(-1);
    result.set("");
    status.set("Exporting " + ckpt + " ...");
    boolean adapter = adapterOnly.get();
    executor.submit(
        "export",
        () ->
            adapter
                ? service.exportAdapter(ckpt, out)
                : service.export(ckpt, out, dt, shard, f -> executor.onUi(() -> progress.set(f))),
        dir -> {
          exporting.set(false);
          progress.set(1);
          result.set(dir.toAbsolutePath().toString());
          workspace.exportedDir().set(result.get());
          status.set("Exported to " + result.get());
          log.info("export: " + status.get());
        },
        e -> {
          exporting.set(false);
          status.set(log.error("Export failed", e));
        });
  }

  /** Whether the export writes only the LoRA adapter (PEFT's format) rather than merged weights. */
  public BooleanProperty adapterOnly() {
    return adapterOnly;
  }

  public void generate() {
    String dir = useExported.get() ? workspace.exportedDir().get() : checkpoint.get();
    if (dir == null || dir.isBlank()) {
      generateStatus.set(
          useExported.get()
              ? "Export the model first."
              : "Choose a checkpoint (or train one) first.");
      return;
    }
    if (prompt.get().isBlank()) {
      generateStatus.set("Type a prompt.");
      return;
    }
    int max;
    double temp;
    try {
      max = Integer.parseInt(maxNewTokens.get().strip());
      temp = Double.parseDouble(temperature.get().strip());
      if (max < 1 || temp < 0) {
        throw new NumberFormatException();
      }
    } catch (NumberFormatException e) {
      generateStatus.set("Max new tokens must be 1 or more and temperature 0 or more.");
      return;
    }
    Path model = Path.of(dir.strip());
    String tpl = workspace.template().get();
    String text = prompt.get();
    generating.set(true);
    reply.set("");
    generateStatus.set("Generating with " + model + " ...");
    executor.submit(
        "generate",
        () ->
            service.generate(
                model,
                tpl,
                text,
                max,
                temp,
                1.0,
                piece -> executor.onUi(() -> reply.set(reply.get() + piece))),
        full -> {
          generating.set(false);
          reply.set(full);
          generateStatus.set("Generated " + full.length() + " characters with " + model);
        },
        e -> {
          generating.set(false);
          generateStatus.set(log.error("Generation failed", e));
        });
  }

  private void validate() {
    String c = checkpoint.get().strip();
    checkpointError.set(
        c.isEmpty()
            ? "Choose a checkpoint directory (train one first)."
            : !Files.isDirectory(Path.of(c)) ? c + ": not a directory." : "");
    String t = target.get().strip();
    if (t.isEmpty()) {
      targetError.set("Choose a target folder.");
    } else {
      Path p = Path.of(t);
      targetError.set(Files.isRegularFile(p) ? t + ": is a file; choose a folder." : "");
    }
    try {
      SafetensorsWriter.parseSize(shardSize.get().strip());
      shardError.set("");
    } catch (IllegalArgumentException e) {
      shardError.set("shard size: " + e.getMessage());
    }
  }

  private static String firstNonEmpty(String... s) {
    for (String x : s) {
      if (!x.isEmpty()) {
        return x;
      }
    }
    return "";
  }

  public BooleanBinding canExport() {
    return Bindings.createBooleanBinding(
        () ->
            checkpointError.get().isEmpty()
                && targetError.get().isEmpty()
                && shardError.get().isEmpty()
                && !exporting.get(),
        checkpointError,
        targetError,
        shardError,
        exporting);
  }

  public StringProperty checkpoint() {
    return checkpoint;
  }

  public StringProperty target() {
    return target;
  }

  public StringProperty dtype() {
    return dtype;
  }

  public StringProperty shardSize() {
    return shardSize;
  }

  public StringProperty checkpointError() {
    return checkpointError;
  }

  public StringProperty targetError() {
    return targetError;
  }

  public StringProperty shardError() {
    return shardError;
  }

  public DoubleProperty progress() {
    return progress;
  }

  public StringProperty result() {
    return result;
  }

  public StringProperty status() {
    return status;
  }

  public BooleanProperty exporting() {
    return exporting;
  }

  public ObservableList<String> dtypes() {
    return dtypes;
  }

  public BooleanProperty useExported() {
    return useExported;
  }

  public StringProperty prompt() {
    return prompt;
  }

  public StringProperty maxNewTokens() {
    return maxNewTokens;
  }

  public StringProperty temperature() {
    return temperature;
  }

  public StringProperty reply() {
    return reply;
  }

  public StringProperty generateStatus() {
    return generateStatus;
  }

  public BooleanProperty generating() {
    return generating;
  }
}
