package moetune.app.gui;

import moetune.app.gui.model.EngineModelInspector;

/** The real services: each screen's port implemented on the engine, templates and datasets. */
public final class EngineServices {

  private EngineServices() {}

  public static GuiServices create() {
    return new GuiServices(new EngineModelInspector(), null, null, null);
  }
}
