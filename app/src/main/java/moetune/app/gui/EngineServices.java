package moetune.app.gui;

import moetune.app.gui.data.EngineDatasetService;
import moetune.app.gui.export.EngineExportService;
import moetune.app.gui.model.EngineModelInspector;
import moetune.app.gui.training.EngineTrainerGateway;

/** The real services: each screen's port implemented on the engine, templates and datasets. */
public final class EngineServices {

  private EngineServices() {}

  public static GuiServices create() {
    return new GuiServices(
        new EngineModelInspector(),
        new EngineDatasetService(),
        new EngineTrainerGateway(),
        new EngineExportService());
  }
}
