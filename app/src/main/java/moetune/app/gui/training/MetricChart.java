package moetune.app.gui.training;

import javafx.collections.ListChangeListener;
import javafx.collections.ObservableList;
import javafx.scene.chart.LineChart;
import javafx.scene.chart.NumberAxis;
import javafx.scene.chart.XYChart;

/**
 * A line chart over steps that mirrors one or more ViewModel point lists. Animation and symbols are
 * off: charts update every step and must stay cheap. Series take the default chart colours in order
 * (red, amber, ...).
 */
public final class MetricChart extends LineChart<Number, Number> {

  public MetricChart(String id, String title) {
    super(new NumberAxis(), new NumberAxis());
    setId(id);
    setTitle(title);
    setAnimated(false);
    setCreateSymbols(false);
    ((NumberAxis) getXAxis()).setLabel("step");
    ((NumberAxis) getXAxis()).setForceZeroInRange(false);
    ((NumberAxis) getYAxis()).setForceZeroInRange(false);
    setMinHeight(170);
    setPrefHeight(200);
  }

  /** Adds a series that follows {@code points}; returns this for chaining. */
  public MetricChart follow(String name, ObservableList<TrainingViewModel.Point> points) {
    XYChart.Series<Number, Number> series = new XYChart.Series<>();
    series.setName(name);
    getData().add(series);
    points.addListener(
        (ListChangeListener<TrainingViewModel.Point>)
            c -> {
              boolean onlyAdded = true;
              while (c.next()) {
                if (c.wasRemoved() || c.wasPermutated() || c.wasUpdated()) {
                  onlyAdded = false;
                }
              }
              if (onlyAdded && series.getData().size() + 1 == points.size()) {
                TrainingViewModel.Point p = points.get(points.size() - 1);
                series.getData().add(new XYChart.Data<>(p.step(), p.value()));
              } else {
                series
                    .getData()
                    .setAll(
                        points.stream()
                            .map(p -> new XYChart.Data<Number, Number>(p.step(), p.value()))
                            .toList());
              }
            });
    return this;
  }

  /** Number of points shown in series {@code i}; robot tests watch it grow. */
  public int pointCount(int i) {
    return getData().get(i).getData().size();
  }
}
