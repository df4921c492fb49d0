package moetune.app.gui.data;

import java.util.List;
import javafx.scene.Node;
import javafx.scene.control.Label;
import javafx.scene.control.Tooltip;
import javafx.scene.text.Text;
import javafx.scene.text.TextFlow;
import moetune.datasets.TokenView;

/**
 * A record's tokens laid out as flowing text, one box per token with the tokenizer's spelling (so
 * "▁" marks a word start and "&lt;0x0A&gt;" a byte): trained tokens (label not -100) on green, the
 * rest on alternating greys so token boundaries show. Hovering a token shows its id and label. A
 * new-line token also breaks the line after its box.
 */
public final class TokenStrip extends TextFlow {

  static final String TRAINABLE = "-fx-background-color: #a5d6a7; -fx-text-fill: #1b3d1c;";
  static final String MASKED_EVEN = "-fx-background-color: #eceff1; -fx-text-fill: #455a64;";
  static final String MASKED_ODD = "-fx-background-color: #cfd8dc; -fx-text-fill: #455a64;";

  public TokenStrip() {
    setId("data-tokens");
    setLineSpacing(3);
  }

  public void show(List<TokenView> tokens) {
    getChildren().clear();
    for (int i = 0; i < tokens.size(); i++) {
      TokenView t = tokens.get(i);
      String shown = t.token().replace("\n", "\u21b5");
      Label box = new Label(shown.isEmpty() ? "\u2205" : shown);
      box.getStyleClass().add(t.trained() ? "token-trainable" : "token-masked");
      box.setStyle(
          (t.trained() ? TRAINABLE : i % 2 == 0 ? MASKED_EVEN : MASKED_ODD)
              + " -fx-font-family: monospace; -fx-padding: 0 1 0 1;");
      box.setTooltip(
          new Tooltip(
              "#"
                  + t.index()
                  + "  id "
                  + t.id()
                  + "  "
                  + (t.trained() ? "label " + t.label() : "masked (-100)")
                  + (t.kind() == null ? "" : "  " + t.kind())));
      getChildren().add(box);
      if (t.token().equals("<0x0A>") || t.token().contains("\n")) {
        getChildren().add(lineBreak());
      }
    }
  }

  private static Node lineBreak() {
    return new Text("\n");
  }
}
