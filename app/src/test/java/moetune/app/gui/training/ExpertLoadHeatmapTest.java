package moetune.app.gui.training;

import static org.junit.jupiter.api.Assertions.assertEquals;

import javafx.scene.paint.Color;
import org.junit.jupiter.api.Test;

/** Heatmap colours are relative to the uniform share 1/E, whatever E is. */
class ExpertLoadHeatmapTest {

  @Test
  void uniformIsWhiteDoubleIsRedZeroIsBlue() {
    for (int experts : new int[] {4, 8, 64}) {
      assertEquals(Color.WHITE, ExpertLoadHeatmap.colour(1.0 / experts, experts));
      assertEquals(Color.web("#c62828"), ExpertLoadHeatmap.colour(2.0 / experts, experts));
      assertEquals(Color.web("#c62828"), ExpertLoadHeatmap.colour(1.0, experts));
      assertEquals(Color.web("#1565c0"), ExpertLoadHeatmap.colour(0.0, experts));
    }
    Color half = ExpertLoadHeatmap.colour(0.125, 4); // half the uniform share
    assertEquals(Color.web("#1565c0").interpolate(Color.WHITE, 0.5), half);
  }
}
