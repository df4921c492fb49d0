package moetune.app.gui;

import moetune.app.gui.data.DatasetService;
import moetune.app.gui.export.ExportService;
import moetune.app.gui.model.ModelInspector;
import moetune.app.gui.training.TrainerGateway;

/** The engine-facing services the screens use; the app passes the real ones. */
public record GuiServices(
    ModelInspector models, DatasetService data, TrainerGateway trainer, ExportService export) {}
