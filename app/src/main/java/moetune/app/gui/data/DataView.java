package moetune.app.gui.data;

import java.io.File;
import javafx.beans.binding.Bindings;
import javafx.geometry.Insets;
import javafx.scene.chart.BarChart;
import javafx.scene.chart.CategoryAxis;
import javafx.scene.chart.NumberAxis;
import javafx.scene.chart.XYChart;
import javafx.scene.control.Button;
import javafx.scene.control.CheckBox;
import javafx.scene.control.ComboBox;
import javafx.scene.control.Label;
import javafx.scene.control.ListCell;
import javafx.scene.control.ListView;
import javafx.scene.control.ScrollPane;
import javafx.scene.control.SplitPane;
import javafx.scene.control.Tab;
import javafx.scene.control.TabPane;
import javafx.scene.layout.GridPane;
import javafx.scene.layout.HBox;
import javafx.scene.layout.Priority;
import javafx.scene.layout.VBox;
import javafx.stage.FileChooser;
import moetune.app.gui.common.Forms;
import moetune.datasets.DatasetStats;
import moetune.datasets.EncodedChat;
import moetune.datasets.TokenView;

/** The Data screen: bindings to {@link DataViewModel} only. */
public final class DataView extends VBox {

  public DataView(DataViewModel vm) {
    super(8);
    setId("data-view");
    setPadding(new Insets(12));

    GridPane form = new GridPane();
    form.setHgap(10);
    form.setVgap(4);
    Button add = new Button("Add file...");
    add.setId("data-add");
    add.setOnAction(
        e -> {
          FileChooser c = new FileChooser();
          c.setTitle("Dataset file");
          c.getExtensionFilters()
              .add(
                  new FileChooser.ExtensionFilter(
                      "JSON / JSONL / Parquet", "*.json", "*.jsonl", "*.parquet"));
          File f = c.showOpenDialog(getScene().getWindow());
          if (f != null) {
            vm.addFile(f.toPath());
          }
        });
    HBox files =
        new HBox(
            6,
            Forms.field(
                "data-files",
                vm.files(),
                "Dataset files, separated by ';' (ShareGPT/FastChat JSON or JSONL, OpenAI messages"
                    + " JSONL, Alpaca JSON, or the same as Parquet)"),
            add);
    int r = 0;
    r = Forms.row(form, r, "Datasets", files);
    form.add(Forms.error(vm.filesError()), 1, r++);
    ComboBox<String> format = new ComboBox<>(vm.formats());
    format.setId("data-format");
    format.valueProperty().bindBidirectional(vm.format());
    ComboBox<String> template = new ComboBox<>(vm.templates());
    template.setId("data-template");
    template.valueProperty().bindBidirectional(vm.template());
    // Editable: besides the listed names (hf is the model's own chat_template), a path to a .jinja
    // chat template file can be typed in.
    template.setEditable(true);
    template.setTooltip(
        new javafx.scene.control.Tooltip(
            "A FastChat template, hf (the model's own chat_template), or a path to a .jinja file"));
    ComboBox<String> labels = new ComboBox<>(vm.labelModes());
    labels.setId("data-labels");
    labels.valueProperty().bindBidirectional(vm.labels());
    labels.setTooltip(new javafx.scene.control.Tooltip("Which tokens carry the loss"));
    CheckBox skip = new CheckBox("skip bad records (listed below)");
    skip.setId("data-skip-bad");
    skip.selectedProperty().bindBidirectional(vm.skipBad());
    r =
        Forms.row(
            form, r, "Format / template / labels", new HBox(8, format, template, labels, skip));
    r =
        Forms.row(
            form,
            r,
            "Max length",
            Forms.field(
                "data-max-length",
                vm.maxLength(),
                "Tokens per record; longer records are truncated and counted"));
    form.add(Forms.error(vm.maxLengthError()), 1, r++);
    Button load = new Button("Load data");
    load.setId("data-load");
    load.disableProperty().bind(vm.canLoad().not());
    load.setOnAction(e -> vm.load());
    Label status = new Label();
    status.setId("data-status");
    status.textProperty().bind(vm.status());
    r = Forms.row(form, r, "", new HBox(10, load, status));

    ListView<EncodedChat> records = new ListView<>(vm.records());
    records.setId("data-records");
    records.setCellFactory(
        l ->
            new ListCell<>() {
              @Override
              protected void updateItem(EncodedChat item, boolean empty) {
                super.updateItem(item, empty);
                setText(
                    empty || item == null
                        ? null
                        : item.origin()
                            + "  "
                            + item.length()
                            + " tokens, "
                            + item.trainableTokens()
                            + " trained"
                            + (item.truncated() ? ", truncated from " + item.fullLength() : ""));
              }
            });
    records
        .getSelectionModel()
        .selectedItemProperty()
        .addListener(
            (o, a, b) -> {
              if (b != null) {
                vm.selected().set(b);
              }
            });
    vm.selected()
        .addListener(
            (o, a, b) -> {
              if (b != null && records.getSelectionModel().getSelectedItem() != b) {
                records.getSelectionModel().select(b);
              }
            });

    TokenStrip strip = new TokenStrip();
    vm.tokens()
        .addListener(
            (javafx.collections.ListChangeListener<TokenView>) c -> strip.show(vm.tokens()));
    Label counts = new Label();
    counts.setId("data-record-counts");
    counts
        .textProperty()
        .bind(
            Bindings.createStringBinding(
                () -> {
                  EncodedChat s = vm.selected().get();
                  return s == null
                      ? ""
                      : s.origin()
                          + ": "
                          + s.length()
                          + " tokens, "
                          + s.trainableTokens()
                          + " trainable (green), "
                          + (s.length() - s.trainableTokens())
                          + " masked (grey)";
                },
                vm.selected()));
    ScrollPane stripScroll = new ScrollPane(strip);
    stripScroll.setFitToWidth(true);
    VBox.setVgrow(stripScroll, Priority.ALWAYS);
    VBox preview = new VBox(6, counts, stripScroll);

    SplitPane browse = new SplitPane(records, preview);
    browse.setDividerPositions(0.3);

    TabPane lower =
        new TabPane(
            new Tab("Records", browse), new Tab("Statistics", statistics(vm)), errorsTab(vm));
    lower.setId("data-tabs");
    lower.setTabClosingPolicy(TabPane.TabClosingPolicy.UNAVAILABLE);
    VBox.setVgrow(lower, Priority.ALWAYS);
    getChildren().addAll(form, lower);
  }

  private static Tab errorsTab(DataViewModel vm) {
    ListView<String> errors = new ListView<>(vm.errors());
    errors.setId("data-errors");
    Tab tab = new Tab();
    tab.textProperty().bind(Bindings.size(vm.errors()).asString("Load errors (%d)"));
    tab.setContent(errors);
    return tab;
  }

  private static VBox statistics(DataViewModel vm) {
    Label summary = new Label();
    summary.setId("data-stats");
    summary
        .textProperty()
        .bind(
            Bindings.createStringBinding(
                () -> {
                  DatasetStats s = vm.stats().get();
                  return s == null
                      ? ""
                      : "records "
                          + s.records()
                          + "    tokens "
                          + s.tokens()
                          + "    trainable tokens "
                          + s.trainableTokens()
                          + "    truncated "
                          + s.truncated()
                          + " (max length "
                          + s.maxLength()
                          + ")    longest "
                          + s.longest()
                          + "    skipped "
                          + s.skipped()
                          + "    no trainable token "
                          + s.withoutTrainable();
                },
                vm.stats()));
    CategoryAxis x = new CategoryAxis();
    x.setLabel("tokens per record");
    NumberAxis y = new NumberAxis();
    y.setLabel("records");
    BarChart<String, Number> hist = new BarChart<>(x, y);
    hist.setId("data-histogram");
    hist.setAnimated(false);
    hist.setLegendVisible(false);
    hist.setBarGap(0);
    hist.setCategoryGap(1);
    vm.stats()
        .addListener(
            (o, a, s) -> {
              hist.getData().clear();
              if (s == null) {
                return;
              }
              XYChart.Series<String, Number> series = new XYChart.Series<>();
              var labels = DataViewModel.binLabels(s);
              for (int i = 0; i < labels.size(); i++) {
                series
                    .getData()
                    .add(new XYChart.Data<>(labels.get(i), s.histogram().get(i).count()));
              }
              hist.getData().add(series);
            });
    VBox.setVgrow(hist, Priority.ALWAYS);
    VBox box = new VBox(6, summary, hist);
    box.setPadding(new Insets(6));
    return box;
  }
}
