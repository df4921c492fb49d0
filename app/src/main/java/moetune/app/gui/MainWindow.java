package moetune.app.gui;

import javafx.scene.control.Tab;
import javafx.scene.control.TabPane;
import moetune.app.gui.data.DataView;
import moetune.app.gui.data.DataViewModel;
import moetune.app.gui.export.ExportView;
import moetune.app.gui.export.ExportViewModel;
import moetune.app.gui.model.ModelView;
import moetune.app.gui.model.ModelViewModel;
import moetune.app.gui.training.TrainingView;
import moetune.app.gui.training.TrainingViewModel;

/** The four screens as tabs, in the order a run goes: model, data, training, export. */
public final class MainWindow extends TabPane {

  private final ModelViewModel model;
  private final DataViewModel data;
  private final TrainingViewModel training;
  private final ExportViewModel export;

  public MainWindow(GuiServices services, TaskExecutor executor, GuiLog log) {
    Workspace ws = new Workspace();
    model = new ModelViewModel(services.models(), executor, log, ws);
    data = new DataViewModel(services.data(), executor, log, ws);
    training = new TrainingViewModel(services.trainer(), executor, log, ws);
    export = new ExportViewModel(services.export(), executor, log, ws);
    setId("main-tabs");
    setTabClosingPolicy(TabClosingPolicy.UNAVAILABLE);
    getTabs()
        .addAll(
            tab("tab-model", "1  Model", new ModelView(model)),
            tab("tab-data", "2  Data", new DataView(data)),
            tab("tab-training", "3  Training", new TrainingView(training)),
            tab("tab-export", "4  Export and try", new ExportView(export)));
    model.refreshGpus();
  }

  private static Tab tab(String id, String title, javafx.scene.Node content) {
    Tab t = new Tab(title, content);
    t.setId(id);
    return t;
  }

  public ModelViewModel model() {
    return model;
  }

  public DataViewModel data() {
    return data;
  }

  public TrainingViewModel training() {
    return training;
  }

  public ExportViewModel export() {
    return export;
  }
}
