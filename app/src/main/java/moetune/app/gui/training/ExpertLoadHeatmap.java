package moetune.app.gui.training;

import java.util.Locale;
import javafx.geometry.VPos;
import javafx.scene.canvas.Canvas;
import javafx.scene.canvas.GraphicsContext;
import javafx.scene.layout.Region;
import javafx.scene.paint.Color;
import javafx.scene.text.TextAlignment;

/**
 * A layer x expert grid of the share of routed token slots each expert received, with each layer's
 * router entropy at the right. Colour is relative to the uniform share 1/E: white at uniform, red
 * above (an expert taking over), blue below (an expert going dead), so router collapse shows at a
 * glance whatever E is. Each cell also prints its share in percent.
 */
public final class ExpertLoadHeatmap extends Region {

  private static final double LEFT = 58;
  private static final double TOP = 22;
  private static final double RIGHT = 150;

  private final Canvas canvas = new Canvas();
  private double[][] share; // (L, E)
  private double[] entropy; // (L)

  public ExpertLoadHeatmap() {
    setId("training-heatmap");
    getChildren().add(canvas);
    setMinSize(200, 120);
    setPrefSize(420, 220);
  }

  /** Shows a new load matrix; {@code share} (L, E), {@code entropy} (L). */
  public void show(double[][] share, double[] entropy) {
    this.share = share;
    this.entropy = entropy;
    draw();
  }

  @Override
  protected void layoutChildren() {
    canvas.setWidth(getWidth());
    canvas.setHeight(getHeight());
    draw();
  }

  /** Colour for a share, relative to uniform 1/E; ratio 0 is deep blue, 2+ deep red. */
  static Color colour(double share, int experts) {
    double ratio = share * experts;
    if (ratio >= 1) {
      double t = Math.min(1, ratio - 1);
      return Color.WHITE.interpolate(Color.web("#c62828"), t);
    }
    return Color.web("#1565c0").interpolate(Color.WHITE, Math.max(0, ratio));
  }

  private void draw() {
    GraphicsContext g = canvas.getGraphicsContext2D();
    double w = canvas.getWidth();
    double h = canvas.getHeight();
    g.clearRect(0, 0, w, h);
    g.setFill(Color.web("#37474f"));
    g.setTextBaseline(VPos.CENTER);
    if (share == null || share.length == 0) {
      g.setTextAlign(TextAlignment.LEFT);
      g.fillText("Expert load appears after the first step.", 8, 16);
      return;
    }
    int layers = share.length;
    int experts = share[0].length;
    double cw = Math.max(4, (w - LEFT - RIGHT) / experts);
    double ch = Math.max(4, (h - TOP - 4) / layers);
    g.setTextAlign(TextAlignment.CENTER);
    for (int e = 0; e < experts; e++) {
      g.fillText("E" + e, LEFT + (e + 0.5) * cw, TOP / 2);
    }
    g.fillText("router entropy (nats)", LEFT + experts * cw + RIGHT / 2, TOP / 2);
    for (int l = 0; l < layers; l++) {
      double y = TOP + l * ch;
      g.setFill(Color.web("#37474f"));
      g.setTextAlign(TextAlignment.RIGHT);
      g.fillText("layer " + l, LEFT - 6, y + ch / 2);
      for (int e = 0; e < experts; e++) {
        double x = LEFT + e * cw;
        g.setFill(colour(share[l][e], experts));
        g.fillRect(x, y, cw - 1, ch - 1);
        if (cw > 34 && ch > 12) {
          g.setFill(Color.BLACK);
          g.setTextAlign(TextAlignment.CENTER);
          g.fillText(
              String.format(Locale.ROOT, "%.0f%%", 100 * share[l][e]), x + cw / 2, y + ch / 2);
        }
      }
      if (entropy != null && l < entropy.length) {
        g.setFill(Color.web("#37474f"));
        g.setTextAlign(TextAlignment.CENTER);
        g.fillText(
            String.format(Locale.ROOT, "%.3f of max %.3f", entropy[l], Math.log(experts)),
            LEFT + experts * cw + RIGHT / 2,
            y + ch / 2);
      }
    }
  }
}
