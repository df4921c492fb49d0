package moetune.app.gui.training;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import javafx.beans.property.DoubleProperty;
import javafx.beans.property.ObjectProperty;
import javafx.beans.property.SimpleDoubleProperty;
import javafx.beans.property.SimpleObjectProperty;
import javafx.beans.property.SimpleStringProperty;
import javafx.beans.property.StringProperty;
import javafx.collections.FXCollections;
import javafx.collections.ObservableList;
import moetune.app.config.RunConfig;
import moetune.app.gui.GuiLog;
import moetune.app.gui.TaskExecutor;
import moetune.app.gui.Workspace;
import moetune.engine.train.CheckpointEvent;
import moetune.engine.train.EvalMetrics;
import moetune.engine.train.ExpertLoad;
import moetune.engine.train.RunSummary;
import moetune.engine.train.StepMetrics;
import moetune.engine.train.TrainingListener;

/**
 * The Training screen: the run-config form, Start / Stop / Resume, and the live metrics the charts,
 * heatmap, progress bar and log show. Training runs through the {@link TaskExecutor} (never on the
 * FX thread); trainer events hop to the UI thread before touching properties.
 */
public final class TrainingViewModel {

  /** Where the run is. */
  public enum State {
    IDLE,
    STARTING,
    RUNNING,
    STOPPING,
    STOPPED,
    FINISHED,
    FAILED
  }

  /** One chart point. */
  public record Point(long step, double value) {}

  /** Points kept per chart: older ones are thinned out so a long run stays light. */
  static final int MAX_POINTS = 2000;

  private final TrainerGateway trainer;
  private final TaskExecutor executor;
  private final GuiLog log;
  private final Workspace workspace;
  private final RunConfigForm form = new RunConfigForm();

  private final ObjectProperty<State> state = new SimpleObjectProperty<>(State.IDLE);
  private final StringProperty status = new SimpleStringProperty("Not started.");
  private final DoubleProperty progress = new SimpleDoubleProperty(0);
  private final StringProperty eta = new SimpleStringProperty("");
  private final StringProperty latest = new SimpleStringProperty("");
  private final StringProperty lastCheckpoint = new SimpleStringProperty("");
  private final ObservableList<Point> loss = FXCollections.observableArrayList();
  private final ObservableList<Point> evalLoss = FXCollections.observableArrayList();
  private final ObservableList<Point> lr = FXCollections.observableArrayList();
  private final ObservableList<Point> gradNorm = FXCollections.observableArrayList();
  private final ObservableList<Point> tokensPerS = FXCollections.observableArrayList();

  /** (L, E) latest expert load shares, and (L) router entropies. */
  private final ObjectProperty<double[][]> expertLoad = new SimpleObjectProperty<>();

  private final ObjectProperty<double[]> routerEntropy = new SimpleObjectProperty<>();

  private final AtomicReference<TrainerGateway.Run> active = new AtomicReference<>();
  private final AtomicBoolean stopRequested = new AtomicBoolean();
  private TaskExecutor.Handle handle;

  public TrainingViewModel(
      TrainerGateway trainer, TaskExecutor executor, GuiLog log, Workspace workspace) {
    this.trainer = trainer;
    this.executor = executor;
    this.log = log;
    this.workspace = workspace;
    workspace.modelSpec().addListener((o, a, b) -> form.field("model").text().set(b));
    workspace.datasets().addListener((o, a, b) -> form.field("datasets").text().set(b));
    workspace.datasetFormat().addListener((o, a, b) -> form.field("format").text().set(b));
    workspace.template().addListener((o, a, b) -> form.field("template").text().set(b));
    workspace.labels().addListener((o, a, b) -> form.field("labels").text().set(b));
    workspace.maxLength().addListener((o, a, b) -> form.field("max-length").text().set(b));
    form.field("out").text().addListener((o, a, b) -> workspace.runDir().set(b));
  }

  public void start() {
    launch(false);
  }

  public void resume() {
    launch(true);
  }

  /** Asks the run to checkpoint and stop; the state moves to STOPPED when it has. */
  public void stop() {
    if (state.get() != State.RUNNING && state.get() != State.STARTING) {
      return;
    }
    stopRequested.set(true);
    state.set(State.STOPPING);
    status.set("Stopping: writing a checkpoint ...");
    TrainerGateway.Run run = active.get();
    if (run != null) {
      run.requestStop();
    }
  }

  /**
   * For closing the window, on the UI thread: asks the run to stop (with a checkpoint) and returns
   * the handle to wait on, off the UI thread, until the run has returned.
   */
  public TaskExecutor.Handle stopForClose() {
    stop();
    return handle;
  }

  /** Saves the form to {@code file} (JSON, or YAML by extension), as `train` reads it. */
  public void saveConfig(Path file) {
    try {
      form.save(file);
      status.set("Saved the run config to " + file);
      log.info(status.get());
    } catch (Exception e) {
      status.set(log.error("Could not save the run config", e));
    }
  }

  /** Fills the form from a run-config file. */
  public void loadConfig(Path file) {
    try {
      form.load(file);
      status.set("Loaded the run config " + file);
      log.info(status.get());
    } catch (Exception e) {
      status.set(log.error("Could not load the run config", e));
    }
  }

  public boolean isActive() {
    State s = state.get();
    return s == State.STARTING || s == State.RUNNING || s == State.STOPPING;
  }

  /** The config file the GUI writes and the trainer reads: out/run-config.yaml. */
  public Path configFile() {
    return Path.of(form.field("out").text().get().strip()).resolve("run-config.yaml");
  }

  private void launch(boolean resume) {
    if (isActive()) {
      return;
    }
    var err = form.firstError();
    if (err.isPresent()) {
      status.set(err.get());
      return;
    }
    // Nothing is written here: TrainingJob writes out/run-config.yaml once it has accepted the
    // output directory, so a refused directory (another run's checkpoints) is left as it was.
    Path config = configFile();
    RunConfig cfg;
    try {
      cfg = form.toConfig();
    } catch (RuntimeException e) {
      status.set(log.error("The run config is not valid", e));
      return;
    }
    if (!resume) {
      for (ObservableList<Point> s : java.util.List.of(loss, evalLoss, lr, gradNorm, tokensPerS)) {
        s.clear();
      }
    }
    stopRequested.set(false);
    state.set(State.STARTING);
    status.set((resume ? "Resuming" : "Starting") + " with " + config + " ...");
    log.info((resume ? "resume: " : "start: ") + config);
    handle =
        executor.submit(
            "train",
            () -> {
              TrainerGateway.Run run = trainer.prepare(cfg, resume, new Listener());
              active.set(run);
              if (stopRequested.get()) {
                run.requestStop();
              }
              executor.onUi(
                  () -> {
                    if (state.get() == State.STARTING) {
                      state.set(State.RUNNING);
                    }
                  });
              return run.run();
            },
            summary -> {
              active.set(null);
              boolean stopped = summary.outcome() == RunSummary.Outcome.STOPPED;
              state.set(stopped ? State.STOPPED : State.FINISHED);
              status.set(
                  (stopped ? "Stopped at step " : "Finished at step ")
                      + summary.step()
                      + (lastCheckpoint.get().isEmpty()
                          ? ""
                          : "; checkpoint " + lastCheckpoint.get()));
              if (!stopped) {
                progress.set(1);
                eta.set("");
              }
              log.info(status.get());
            },
            e -> {
              active.set(null);
              state.set(State.FAILED);
              status.set(log.error("Training failed", e));
            });
  }

  /** Trainer thread to UI thread: every callback copies what it needs and hops. */
  private final class Listener implements TrainingListener {
    @Override
    public void onStep(StepMetrics m) {
      executor.onUi(() -> TrainingViewModel.this.onStep(m));
    }

    @Override
    public void onEval(EvalMetrics m) {
      executor.onUi(() -> add(evalLoss, m.step(), m.loss()));
    }

    @Override
    public void onExpertLoad(ExpertLoad load) {
      double[][] copy = new double[load.share().length][];
      for (int i = 0; i < copy.length; i++) {
        copy[i] = load.share()[i].clone();
      }
      double[] ent = load.entropy().clone();
      executor.onUi(
          () -> {
            expertLoad.set(copy);
            routerEntropy.set(ent);
          });
    }

    @Override
    public void onLog(String line) {
      executor.onUi(() -> log.info(line));
    }

    @Override
    public void onCheckpoint(CheckpointEvent e) {
      executor.onUi(
          () -> {
            lastCheckpoint.set(e.dir().toString());
            workspace.checkpointDir().set(e.dir().toString());
            log.info("checkpoint at step " + e.step() + " (" + e.reason() + "): " + e.dir());
          });
    }
  }

  private void onStep(StepMetrics m) {
    add(loss, m.step(), m.loss());
    add(lr, m.step(), m.lr());
    add(gradNorm, m.step(), m.gradNorm());
    add(tokensPerS, m.step(), m.tokensPerSecond());
    long total = m.totalSteps();
    progress.set(total > 0 ? Math.min(1.0, (double) m.step() / total) : -1);
    eta.set(
        m.step() >= total
            ? "ETA 0s"
            : "ETA " + format(Duration.ofSeconds(Math.round(m.etaSeconds()))));
    latest.set(
        String.format(
            Locale.ROOT,
            "step %d/%d  loss %.4f  lr %.3g  grad norm %.3f  %.0f tok/s",
            m.step(),
            total,
            m.loss(),
            m.lr(),
            m.gradNorm(),
            m.tokensPerSecond()));
    if (state.get() == State.STARTING) {
      state.set(State.RUNNING);
    }
    if (state.get() == State.RUNNING) {
      status.set("Training: " + latest.get());
    }
  }

  static String format(Duration d) {
    long s = d.toSeconds();
    return s >= 3600
        ? String.format(Locale.ROOT, "%dh%02dm", s / 3600, (s % 3600) / 60)
        : s >= 60 ? String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60) : s + "s";
  }

  /** Appends a point; past MAX_POINTS every second point is dropped (the curve keeps its shape). */
  static void add(ObservableList<Point> series, long step, double value) {
    if (!series.isEmpty() && series.get(series.size() - 1).step() >= step) {
      // a resumed run re-reports from its checkpoint: drop the points it will redo
      series.removeIf(p -> p.step() >= step);
    }
    series.add(new Point(step, value));
    if (series.size() > MAX_POINTS) {
      java.util.List<Point> thin = new java.util.ArrayList<>();
      for (int i = 0; i < series.size(); i++) {
        if (i % 2 == 0 || i == series.size() - 1) {
          thin.add(series.get(i));
        }
      }
      series.setAll(thin);
    }
  }

  public RunConfigForm form() {
    return form;
  }

  public Workspace workspace() {
    return workspace;
  }

  public ObjectProperty<State> state() {
    return state;
  }

  public StringProperty status() {
    return status;
  }

  public DoubleProperty progress() {
    return progress;
  }

  public StringProperty eta() {
    return eta;
  }

  public StringProperty latest() {
    return latest;
  }

  public StringProperty lastCheckpoint() {
    return lastCheckpoint;
  }

  public ObservableList<Point> loss() {
    return loss;
  }

  public ObservableList<Point> evalLoss() {
    return evalLoss;
  }

  public ObservableList<Point> lr() {
    return lr;
  }

  public ObservableList<Point> gradNorm() {
    return gradNorm;
  }

  public ObservableList<Point> tokensPerS() {
    return tokensPerS;
  }

  public ObjectProperty<double[][]> expertLoad() {
    return expertLoad;
  }

  public ObjectProperty<double[]> routerEntropy() {
    return routerEntropy;
  }

  public GuiLog log() {
    return log;
  }
}
