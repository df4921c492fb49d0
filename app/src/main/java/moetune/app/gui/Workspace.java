package moetune.app.gui;

import javafx.beans.property.ObjectProperty;
import javafx.beans.property.SimpleObjectProperty;
import javafx.beans.property.SimpleStringProperty;
import javafx.beans.property.StringProperty;
import moetune.app.gui.model.ModelFacts;

/**
 * What the screens share: the model chosen on the Model screen (the Data screen tokenizes with it,
 * the Training form trains it) and the latest checkpoint or export (the Export screen exports and
 * prompts it). Touched on the UI thread only.
 */
public final class Workspace {

  /** The model as the run config names it: a directory, or {@code new:<config.json>}. */
  private final StringProperty modelSpec = new SimpleStringProperty("");

  private final ObjectProperty<ModelFacts> model = new SimpleObjectProperty<>();

  /** The folder with the model's tokenizer.json (the model dir; empty for a new model). */
  private final StringProperty tokenizerDir = new SimpleStringProperty("");

  /** Dataset files, comma separated, with the format and template chosen on the Data screen. */
  private final StringProperty datasets = new SimpleStringProperty("");

  private final StringProperty datasetFormat = new SimpleStringProperty("");
  private final StringProperty template = new SimpleStringProperty("");
  private final StringProperty labels = new SimpleStringProperty("");
  private final StringProperty maxLength = new SimpleStringProperty("");

  /** The training run's output directory (checkpoints live below it). */
  private final StringProperty runDir = new SimpleStringProperty("");

  /** The latest checkpoint the run wrote. */
  private final StringProperty checkpointDir = new SimpleStringProperty("");

  /** The latest exported HF directory, if any. */
  private final StringProperty exportedDir = new SimpleStringProperty("");

  public StringProperty modelSpec() {
    return modelSpec;
  }

  public ObjectProperty<ModelFacts> model() {
    return model;
  }

  public StringProperty tokenizerDir() {
    return tokenizerDir;
  }

  public StringProperty datasets() {
    return datasets;
  }

  public StringProperty datasetFormat() {
    return datasetFormat;
  }

  public StringProperty template() {
    return template;
  }

  public StringProperty labels() {
    return labels;
  }

  public StringProperty maxLength() {
    return maxLength;
  }

  public StringProperty runDir() {
    return runDir;
  }

  public StringProperty checkpointDir() {
    return checkpointDir;
  }

  public StringProperty exportedDir() {
    return exportedDir;
  }
}
