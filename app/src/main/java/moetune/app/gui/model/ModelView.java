package moetune.app.gui.model;

import javafx.beans.binding.Bindings;
import javafx.geometry.Insets;
import javafx.scene.control.Button;
import javafx.scene.control.CheckBox;
import javafx.scene.control.Label;
import javafx.scene.control.ListView;
import javafx.scene.control.RadioButton;
import javafx.scene.control.TitledPane;
import javafx.scene.control.ToggleGroup;
import javafx.scene.layout.GridPane;
import javafx.scene.layout.HBox;
import javafx.scene.layout.VBox;
import moetune.app.gui.common.Forms;

/** The Model screen: bindings to {@link ModelViewModel} only. */
public final class ModelView extends VBox {

  public ModelView(ModelViewModel vm) {
    super(10);
    setId("model-view");
    setPadding(new Insets(12));

    ToggleGroup group = new ToggleGroup();
    RadioButton dir = new RadioButton("HF model directory");
    dir.setId("model-source-dir");
    RadioButton fresh = new RadioButton("New model from config.json");
    fresh.setId("model-source-new");
    dir.setToggleGroup(group);
    fresh.setToggleGroup(group);
    dir.setSelected(vm.source().get() == ModelViewModel.Source.HF_DIRECTORY);
    fresh.setSelected(!dir.isSelected());
    group
        .selectedToggleProperty()
        .addListener(
            (o, a, b) ->
                vm.source()
                    .set(
                        b == fresh
                            ? ModelViewModel.Source.NEW_FROM_CONFIG
                            : ModelViewModel.Source.HF_DIRECTORY));

    HBox pathBox =
        Forms.pathField(
            "model-path",
            vm.path(),
            "An HF model directory (config.json, *.safetensors, tokenizer.json),"
                + " or a config.json for a new, randomly initialised model",
            w ->
                vm.source().get() == ModelViewModel.Source.HF_DIRECTORY
                    ? Forms.folderChooser("Model directory").apply(w)
                    : Forms.fileChooser("config.json", "*.json").apply(w));
    Button load = new Button("Load model");
    load.setId("model-load");
    load.disableProperty().bind(vm.canLoad().not());
    load.setOnAction(e -> vm.load());
    Label status = new Label();
    status.setId("model-status");
    status.textProperty().bind(vm.status());

    VBox chooser =
        new VBox(
            6,
            new HBox(16, dir, fresh),
            pathBox,
            Forms.error(vm.pathError()),
            new HBox(10, load, status));

    GridPane summary = new GridPane();
    summary.setHgap(14);
    summary.setVgap(4);
    int r = 0;
    r =
        Forms.row(
            summary,
            r,
            "Parameters (total)",
            bound(
                "model-total-params",
                vm,
                f -> ModelViewModel.count(f.totalParams()) + "  (" + f.totalParams() + ")"));
    r =
        Forms.row(
            summary,
            r,
            "Active per token",
            bound(
                "model-active-params",
                vm,
                f -> ModelViewModel.count(f.activeParams()) + "  (" + f.activeParams() + ")"));
    r = Forms.row(summary, r, "Layers", bound("model-layers", vm, f -> "" + f.layers()));
    r = Forms.row(summary, r, "Experts", bound("model-experts", vm, f -> "" + f.experts()));
    r = Forms.row(summary, r, "Top-k", bound("model-topk", vm, f -> "" + f.topK()));
    r =
        Forms.row(
            summary,
            r,
            "Hidden / expert FFN",
            bound(
                "model-dims",
                vm,
                f ->
                    f.hidden()
                        + " / "
                        + f.intermediate()
                        + "  (heads "
                        + f.heads()
                        + ", kv heads "
                        + f.kvHeads()
                        + ", head dim "
                        + f.headDim()
                        + ")"));
    r = Forms.row(summary, r, "Vocabulary", bound("model-vocab", vm, f -> "" + f.vocab()));
    r = Forms.row(summary, r, "Weight dtype", bound("model-dtype", vm, ModelFacts::dtype));
    r =
        Forms.row(
            summary, r, "Context length", bound("model-context", vm, f -> "" + f.contextLength()));
    TitledPane summaryPane = new TitledPane("Summary", summary);
    summaryPane.setCollapsible(false);

    GridPane memory = new GridPane();
    memory.setHgap(14);
    memory.setVgap(4);
    int m = 0;
    m =
        Forms.row(
            memory,
            m,
            "Micro-batch",
            Forms.field("model-batch", vm.batch(), "Sequences per micro-batch"));
    m =
        Forms.row(
            memory,
            m,
            "Sequence length",
            Forms.field("model-seqlen", vm.seqLen(), "Tokens per sequence"));
    CheckBox bf16 = new CheckBox("bf16 mixed precision (float32 master weights)");
    bf16.setId("model-bf16");
    bf16.selectedProperty().bindBidirectional(vm.bf16());
    m =
        Forms.row(
            memory,
            m,
            "LoRA rank",
            Forms.field("model-lora-r", vm.loraRank(), "0: full finetuning; > 0: LoRA adapters"));
    m =
        Forms.row(
            memory,
            m,
            "LoRA targets",
            Forms.field(
                "model-lora-targets",
                vm.loraTargets(),
                "q_proj,k_proj,v_proj,o_proj,gate,w1,w2,w3"));
    m = Forms.row(memory, m, "Precision", bf16);
    Label estimate = Forms.value("model-memory");
    estimate.textProperty().bind(vm.memoryEstimate());
    m = Forms.row(memory, m, "GPU memory, full finetune", estimate);
    memory.add(Forms.error(vm.estimateError()), 1, m);
    TitledPane memoryPane = new TitledPane("Memory estimate", memory);
    memoryPane.setCollapsible(false);

    ListView<String> gpus = new ListView<>(vm.gpus());
    gpus.setId("model-gpus");
    gpus.setPrefHeight(80);
    Button refresh = new Button("Refresh GPUs");
    refresh.setId("model-gpus-refresh");
    refresh.setOnAction(e -> vm.refreshGpus());
    TitledPane gpuPane = new TitledPane("GPUs", new VBox(6, gpus, refresh));
    gpuPane.setCollapsible(false);

    getChildren().addAll(chooser, summaryPane, memoryPane, gpuPane);
  }

  private static Label bound(
      String id, ModelViewModel vm, java.util.function.Function<ModelFacts, String> text) {
    Label l = Forms.value(id);
    l.textProperty()
        .bind(
            Bindings.createStringBinding(
                () -> vm.facts().get() == null ? "-" : text.apply(vm.facts().get()), vm.facts()));
    return l;
  }
}
