package moetune.app.gui.training;

import java.io.File;
import java.util.List;
import javafx.beans.binding.Bindings;
import javafx.geometry.Insets;
import javafx.scene.control.Button;
import javafx.scene.control.ComboBox;
import javafx.scene.control.Control;
import javafx.scene.control.Label;
import javafx.scene.control.ListView;
import javafx.scene.control.ProgressBar;
import javafx.scene.control.ScrollPane;
import javafx.scene.control.SplitPane;
import javafx.scene.control.TextField;
import javafx.scene.control.TitledPane;
import javafx.scene.control.Tooltip;
import javafx.scene.layout.GridPane;
import javafx.scene.layout.HBox;
import javafx.scene.layout.Priority;
import javafx.scene.layout.TilePane;
import javafx.scene.layout.VBox;
import javafx.stage.FileChooser;
import moetune.app.config.FieldType;
import moetune.app.gui.common.Forms;

/** The Training screen: bindings to {@link TrainingViewModel} only. */
public final class TrainingView extends SplitPane {

  public TrainingView(TrainingViewModel vm) {
    setId("training-view");
    getItems().addAll(formPane(vm), runPane(vm));
    setDividerPositions(0.34);
  }

  private ScrollPane formPane(TrainingViewModel vm) {
    GridPane grid = new GridPane();
    grid.setHgap(8);
    grid.setVgap(2);
    grid.setPadding(new Insets(8));
    int r = 0;
    for (FormField f : vm.form().fields()) {
      if (f.key().equals("lora-r")) { // the LoRA settings as their own group
        Label group = new Label("LoRA adapters (lora-r > 0: train adapters, base weights frozen)");
        group.setId("cfg-group-lora");
        group.setStyle("-fx-font-weight: bold; -fx-padding: 8 0 2 0;");
        grid.add(group, 0, r++, 2, 1);
      }
      Control input;
      if (f.def().type() == FieldType.CHOICE || f.def().type() == FieldType.BOOL) {
        ComboBox<String> box = new ComboBox<>();
        box.getItems()
            .setAll(
                f.def().type() == FieldType.BOOL ? List.of("true", "false") : f.def().choices());
        box.valueProperty().bindBidirectional(f.text());
        input = box;
      } else {
        TextField t = new TextField();
        t.textProperty().bindBidirectional(f.text());
        input = t;
      }
      String tip =
          f.key()
              + (f.def().required() ? " (required)" : "")
              + ": "
              + f.def().help()
              + (f.def().defaultValue() == null ? "" : "\ndefault: " + f.def().defaultValue());
      input.setId("cfg-" + f.key());
      input.setTooltip(new Tooltip(tip));
      Label l = new Label(f.key());
      l.setTooltip(new Tooltip(tip));
      grid.add(l, 0, r);
      grid.add(input, 1, r++);
      GridPane.setHgrow(input, Priority.ALWAYS);
      grid.add(Forms.error(f.error()), 1, r++);
    }
    Button save = new Button("Save config...");
    save.setId("cfg-save");
    save.setOnAction(e -> chooseFile(true).ifPresent(vm::saveConfig));
    Button load = new Button("Load config...");
    load.setId("cfg-load");
    load.setOnAction(e -> chooseFile(false).ifPresent(vm::loadConfig));
    VBox box = new VBox(6, new HBox(6, save, load), grid);
    box.setPadding(new Insets(6));
    ScrollPane scroll = new ScrollPane(box);
    scroll.setFitToWidth(true);
    return scroll;
  }

  private java.util.Optional<java.nio.file.Path> chooseFile(boolean save) {
    FileChooser c = new FileChooser();
    c.setTitle("Run config (JSON or YAML)");
    c.getExtensionFilters()
        .add(new FileChooser.ExtensionFilter("Run config", "*.json", "*.yaml", "*.yml"));
    File f =
        save ? c.showSaveDialog(getScene().getWindow()) : c.showOpenDialog(getScene().getWindow());
    return java.util.Optional.ofNullable(f).map(File::toPath);
  }

  private VBox runPane(TrainingViewModel vm) {
    Button start = new Button("Start");
    start.setId("train-start");
    start.disableProperty().bind(Bindings.createBooleanBinding(vm::isActive, vm.state()));
    start.setOnAction(e -> vm.start());
    Button stop = new Button("Stop");
    stop.setId("train-stop");
    stop.setTooltip(new Tooltip("Writes a checkpoint, then stops"));
    stop.disableProperty()
        .bind(
            Bindings.createBooleanBinding(
                () ->
                    vm.state().get() != TrainingViewModel.State.RUNNING
                        && vm.state().get() != TrainingViewModel.State.STARTING,
                vm.state()));
    stop.setOnAction(e -> vm.stop());
    Button resume = new Button("Resume");
    resume.setId("train-resume");
    resume.setTooltip(new Tooltip("Continues from the latest checkpoint in the output directory"));
    resume.disableProperty().bind(Bindings.createBooleanBinding(vm::isActive, vm.state()));
    resume.setOnAction(e -> vm.resume());
    ProgressBar bar = new ProgressBar();
    bar.setId("train-progress");
    bar.progressProperty().bind(vm.progress());
    bar.setPrefWidth(260);
    Label eta = new Label();
    eta.setId("train-eta");
    eta.textProperty().bind(vm.eta());
    Label state = new Label();
    state.setId("train-state");
    state.textProperty().bind(vm.state().asString());
    Label status = new Label();
    status.setId("train-status");
    status.textProperty().bind(vm.status());
    status.setWrapText(true);
    HBox controls = new HBox(8, start, stop, resume, bar, eta, state);

    MetricChart loss =
        new MetricChart("chart-loss", "train loss (red), eval loss (amber)")
            .follow("train loss", vm.loss())
            .follow("eval loss", vm.evalLoss());
    MetricChart lr = new MetricChart("chart-lr", "learning rate").follow("lr", vm.lr());
    MetricChart grad =
        new MetricChart("chart-grad-norm", "grad norm").follow("grad norm", vm.gradNorm());
    MetricChart tps =
        new MetricChart("chart-tokens", "tokens / s").follow("tokens/s", vm.tokensPerS());
    // at this height the chart has no room for a legend; the loss title names the colours
    for (MetricChart c : List.of(loss, lr, grad, tps)) {
      c.setLegendVisible(false);
    }
    TilePane charts = new TilePane(4, 4, loss, lr, grad, tps);
    charts.setPrefColumns(2);
    charts.setPrefTileWidth(420);

    ExpertLoadHeatmap heat = new ExpertLoadHeatmap();
    vm.expertLoad().addListener((o, a, b) -> heat.show(b, vm.routerEntropy().get()));
    vm.routerEntropy().addListener((o, a, b) -> heat.show(vm.expertLoad().get(), b));
    TitledPane heatPane =
        new TitledPane(
            "Expert load per layer (share of routed tokens)" + " and router entropy", heat);
    heatPane.setCollapsible(false);

    ListView<String> log = new ListView<>(vm.log().lines());
    log.setId("train-log");
    log.setPrefHeight(140);
    vm.log()
        .lines()
        .addListener(
            (javafx.collections.ListChangeListener<String>)
                c -> log.scrollTo(vm.log().lines().size() - 1));

    VBox box = new VBox(6, controls, status, charts, heatPane, log);
    VBox.setVgrow(log, Priority.ALWAYS);
    box.setPadding(new Insets(8));
    return box;
  }
}
