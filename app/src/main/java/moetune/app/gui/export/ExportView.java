package moetune.app.gui.export;

import javafx.geometry.Insets;
import javafx.scene.control.Button;
import javafx.scene.control.CheckBox;
import javafx.scene.control.ComboBox;
import javafx.scene.control.Label;
import javafx.scene.control.ProgressBar;
import javafx.scene.control.TextArea;
import javafx.scene.control.TitledPane;
import javafx.scene.layout.GridPane;
import javafx.scene.layout.HBox;
import javafx.scene.layout.Priority;
import javafx.scene.layout.VBox;
import moetune.app.gui.common.Forms;

/** The Export screen: bindings to {@link ExportViewModel} only. */
public final class ExportView extends VBox {

  public ExportView(ExportViewModel vm) {
    super(10);
    setId("export-view");
    setPadding(new Insets(12));

    GridPane grid = new GridPane();
    grid.setHgap(10);
    grid.setVgap(4);
    int r = 0;
    r =
        Forms.row(
            grid,
            r,
            "Checkpoint",
            Forms.pathField(
                "export-checkpoint",
                vm.checkpoint(),
                "A checkpoint directory written by training",
                Forms.folderChooser("Checkpoint")));
    grid.add(Forms.error(vm.checkpointError()), 1, r++);
    r =
        Forms.row(
            grid,
            r,
            "Target folder",
            Forms.pathField(
                "export-target",
                vm.target(),
                "Where the HF directory is written",
                Forms.folderChooser("Target folder")));
    grid.add(Forms.error(vm.targetError()), 1, r++);
    ComboBox<String> dtype = new ComboBox<>(vm.dtypes());
    dtype.setId("export-dtype");
    dtype.valueProperty().bindBidirectional(vm.dtype());
    r = Forms.row(grid, r, "dtype", dtype);
    CheckBox adapter = new CheckBox("LoRA adapter only (PEFT directory; else merged full weights)");
    adapter.setId("export-adapter");
    adapter.selectedProperty().bindBidirectional(vm.adapterOnly());
    r = Forms.row(grid, r, "LoRA", adapter);
    r =
        Forms.row(
            grid,
            r,
            "Shard size",
            Forms.field(
                "export-shard",
                vm.shardSize(),
                "Largest safetensors shard, e.g. 5GB, 500MB, 2GiB"));
    grid.add(Forms.error(vm.shardError()), 1, r++);
    Button export = new Button("Export");
    export.setId("export-run");
    export.disableProperty().bind(vm.canExport().not());
    export.setOnAction(e -> vm.export());
    ProgressBar bar = new ProgressBar();
    bar.setId("export-progress");
    bar.progressProperty().bind(vm.progress());
    bar.setPrefWidth(240);
    Label status = new Label();
    status.setId("export-status");
    status.textProperty().bind(vm.status());
    r = Forms.row(grid, r, "", new HBox(10, export, bar, status));
    Label result = Forms.value("export-result");
    result.textProperty().bind(vm.result());
    Forms.row(grid, r, "Result", result);
    TitledPane exportPane = new TitledPane("Export to HuggingFace format", grid);
    exportPane.setCollapsible(false);

    TextArea prompt = new TextArea();
    prompt.setId("try-prompt");
    prompt.setPromptText("Type a prompt; it is rendered with the data screen's template.");
    prompt.textProperty().bindBidirectional(vm.prompt());
    prompt.setPrefRowCount(3);
    CheckBox exported = new CheckBox("use the exported model (else the checkpoint)");
    exported.setId("try-use-exported");
    exported.selectedProperty().bindBidirectional(vm.useExported());
    Button go = new Button("Generate");
    go.setId("try-generate");
    go.disableProperty().bind(vm.generating());
    go.setOnAction(e -> vm.generate());
    HBox opts =
        new HBox(
            8,
            new Label("max new tokens"),
            Forms.field("try-max-tokens", vm.maxNewTokens(), "Tokens to generate at most"),
            new Label("temperature"),
            Forms.field("try-temperature", vm.temperature(), "0 is greedy"),
            exported,
            go);
    TextArea reply = new TextArea();
    reply.setId("try-reply");
    reply.setEditable(false);
    reply.setWrapText(true);
    reply.textProperty().bind(vm.reply());
    Label genStatus = new Label();
    genStatus.setId("try-status");
    genStatus.textProperty().bind(vm.generateStatus());
    VBox tryBox = new VBox(6, prompt, opts, genStatus, reply);
    VBox.setVgrow(reply, Priority.ALWAYS);
    TitledPane tryPane = new TitledPane("Try it", tryBox);
    tryPane.setCollapsible(false);
    VBox.setVgrow(tryPane, Priority.ALWAYS);
    getChildren().addAll(exportPane, tryPane);
  }
}
