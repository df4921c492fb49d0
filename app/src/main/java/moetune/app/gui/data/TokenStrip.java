package moetune.app.gui.data;

import java.util.List;
import javafx.scene.Node;
import javafx.scene.control.Label;
import javafx.scene.control.Tooltip;
import javafx.scene.text.Text;
import javafx.scene.text.TextFlow;

/**
 * A record's tokens laid out as flowing text, one box per token: trainable tokens (label not
 * -100) on green, the rest on alternating greys so token boundaries show. Hovering a token
 * shows its id. New lines inside a token break the line after the token's box.
 */
public final class TokenStrip extends TextFlow {

  static final String TRAINABLE = "-fx-background-color: #a5d6a7; -fx-text-fill: #1b3d1c;";
  static final String MASKED_EVEN = "-fx-background-color: #eceff1; -fx-text-fill: #455a64;";
  static final String MASKED_ODD = "-fx-background-color: #cfd8dc; -fx-text-fill: #455a64;";

  public TokenStrip() {
    setId("data-tokens");
    setLineSpacing(3);
  }

  public void show(List<DataPreview.Token> tokens) {
    getChildren().clear();
    for (int i = 0; i < tokens.size(); i++) {
      DataPreview.Token t = tokens.get(i);
      String shown = t.text().replace("\n", "\u21b5");
      Label box = new Label(shown.isEmpty() ? "\u2205" : shown);
      box.getStyleClass().add(t.trainable() ? "token-trainable" : "token-masked");
      box.setStyle((t.trainable() ? TRAINABLE : i % 2 == 0 ? MASKED_EVEN : MASKED_ODD)
          + " -fx-font-family: monospace; -fx-padding: 0 1 0 1;");
      box.setTooltip(new Tooltip("id " + t.id() + (t.trainable() ? ", trained" : ", masked")));
      getChildren().add(box);
      if (t.text().contains("\n")) {
        getChildren().add(lineBreak());
      }
    }
  }

  private static Node lineBreak() {
    return new Text("\n");
  }
}
