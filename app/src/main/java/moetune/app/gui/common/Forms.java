package moetune.app.gui.common;

import java.io.File;
import java.util.function.Function;
import javafx.beans.property.StringProperty;
import javafx.scene.Node;
import javafx.scene.control.Button;
import javafx.scene.control.Label;
import javafx.scene.control.TextField;
import javafx.scene.control.Tooltip;
import javafx.scene.layout.GridPane;
import javafx.scene.layout.HBox;
import javafx.scene.layout.Priority;
import javafx.stage.DirectoryChooser;
import javafx.stage.FileChooser;
import javafx.stage.Window;

/** Small builders the Views share so every form looks and binds the same way. */
public final class Forms {

  private Forms() {}

  /** A text field bound both ways to {@code value}, with an id for robot tests. */
  public static TextField field(String id, StringProperty value, String tooltip) {
    TextField f = new TextField();
    f.setId(id);
    f.textProperty().bindBidirectional(value);
    if (tooltip != null) {
      f.setTooltip(new Tooltip(tooltip));
    }
    HBox.setHgrow(f, Priority.ALWAYS);
    return f;
  }

  /** A red one-line validation message that is empty (and takes no room) when valid. */
  public static Label error(StringProperty message) {
    Label l = new Label();
    l.getStyleClass().add("validation-error");
    l.setStyle("-fx-text-fill: #b00020;");
    l.textProperty().bind(message);
    l.managedProperty().bind(message.isNotEmpty());
    l.visibleProperty().bind(message.isNotEmpty());
    l.setWrapText(true);
    return l;
  }

  /** A text field with a "Browse..." button that fills it from a file or folder chooser. */
  public static HBox pathField(
      String id, StringProperty value, String tooltip, Function<Window, File> chooser) {
    TextField f = field(id, value, tooltip);
    Button browse = new Button("Browse...");
    browse.setId(id + "-browse");
    browse.setOnAction(
        e -> {
          File chosen = chooser.apply(browse.getScene().getWindow());
          if (chosen != null) {
            value.set(chosen.getAbsolutePath());
          }
        });
    HBox box = new HBox(6, f, browse);
    HBox.setHgrow(f, Priority.ALWAYS);
    return box;
  }

  public static Function<Window, File> folderChooser(String title) {
    return w -> {
      DirectoryChooser c = new DirectoryChooser();
      c.setTitle(title);
      return c.showDialog(w);
    };
  }

  public static Function<Window, File> fileChooser(String title, String... patterns) {
    return w -> {
      FileChooser c = new FileChooser();
      c.setTitle(title);
      if (patterns.length > 0) {
        c.getExtensionFilters().add(new FileChooser.ExtensionFilter(title, patterns));
      }
      return c.showOpenDialog(w);
    };
  }

  /** Adds a "label: node" row to a two-column grid and returns the next row index. */
  public static int row(GridPane grid, int row, String label, Node node) {
    Label l = new Label(label);
    l.setMinWidth(Label.USE_PREF_SIZE);
    grid.add(l, 0, row);
    grid.add(node, 1, row);
    GridPane.setHgrow(node, Priority.ALWAYS);
    return row + 1;
  }

  /** A value label for summaries, selectable-looking, with an id for tests. */
  public static Label value(String id) {
    Label l = new Label();
    l.setId(id);
    l.setStyle("-fx-font-weight: bold;");
    return l;
  }
}
