package moetune.engine.moe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.tensor.DType;
import org.junit.jupiter.api.Test;

class MoeLayerBenchmarkTest {

  @Test
  void breakdownNamesTheSixProductsAndAddsUpToTheLayer() {
    try (CpuBackend cpu = new CpuBackend(1)) {
      MoeLayerBenchmark.Shape s = new MoeLayerBenchmark.Shape(24, 16, 8, 4, 2);
      MoeLayerBenchmark.Breakdown b = MoeLayerBenchmark.breakdown(cpu, s, 3, DType.F32, false);
      List<String> products =
          b.ops().stream().filter(MoeLayerBenchmark.OpTime::product).map(o -> o.label()).toList();
      assertEquals(
          List.of(
              // the factors' path (variant 56), the backends' default
              "scatter2scatterSwigluFactors fwd1 h = x W1^T, a = SwiGLU(h), h's factors",
              "scatter2scatter fwd2 ye = a W2^T",
              "groupXtY dW2 += dy^T a",
              "scatter2scatterSwigluFactorsBackward dX2 da = dy W2 (g dy grouped), dh = (da p, da q)",
              "groupXtY dW1 += dh^T x",
              "scatter2scatter dX1 dx = dh W1"),
          products);
      List<String> names = b.ops().stream().map(MoeLayerBenchmark.OpTime::label).toList();
      assertTrue(names.contains("routerTopK"), names.toString());
      assertTrue(names.contains("flattenSortCount"), names.toString());
      assertTrue(names.contains("group"), names.toString());
      assertTrue(names.contains("combine"), names.toString());
      // the gates' gradient and dy grouped with its gates: one call (variant 60 on a GPU)
      assertTrue(names.contains("groupGatesBackward"), names.toString());
      for (MoeLayerBenchmark.OpTime o : b.ops()) {
        assertTrue(o.ms() >= 0 && o.idleBeforeMs() >= 0 && o.backToBackMs() >= 0, o.toString());
        // a product's dense twin was timed (a GEMM of its FLOPs); the other ops have none
        assertEquals(o.product(), o.twinMs() > 0, o.toString());
        assertEquals(!o.product(), Double.isNaN(o.twinMs()), o.toString());
      }
      assertTrue(b.productsBackToBackMs() > 0 && b.twinsMs() > 0, b.toString());
      // fwd1, dW1 and dX1 share the (M, D) x (D, 2F) twin; fwd2, dW2 and dX2 the (M, F) x (F, D)
      java.util.Map<String, Double> twin = new java.util.HashMap<>();
      b.ops().stream()
          .filter(MoeLayerBenchmark.OpTime::product)
          .forEach(o -> twin.put(o.label().split(" ")[1], o.twinMs()));
      assertEquals(twin.get("fwd1"), twin.get("dW1"), twin.toString());
      assertEquals(twin.get("fwd1"), twin.get("dX1"), twin.toString());
      assertEquals(twin.get("fwd2"), twin.get("dW2"), twin.toString());
      assertEquals(twin.get("fwd2"), twin.get("dX2"), twin.toString());
      assertTrue(b.productsMs() > 0 && b.otherOpsMs() > 0, b.toString());
      // medians per op need not add up to the median total exactly, but they cannot exceed it by
      // more than the spread of a tiny CPU layer
      assertTrue(b.productsMs() + b.otherOpsMs() <= b.totalMs() * 1.5, b.toString());
      // the back-to-back calls run the same ops (on the CPU: the host clock around them)
      assertTrue(
          b.backToBackMs() > 0 && b.backToBackCalls() >= 3 && b.hostQueueMs() > 0, b.toString());
      String table = MoeLayerBenchmark.breakdownTable(b, null);
      assertTrue(table.contains("| **the six products** |"), table);
      assertTrue(table.contains("| layer fwd+bwd back to back (device clock"), table);
      assertTrue(
          table.contains("| ms back to back | dense twin ms back to back | x twin |"), table);
      // every row has the header's seven cells (and the empty ends of the split)
      table.lines().forEach(l -> assertEquals(9, l.split("\\|", -1).length, l));
      assertEquals(b.ops().size() + 7, table.lines().count(), table);
    }
  }

  /**
   * With each weight gradient asked for beside its dX in one call (variant 61 on a GPU), the
   * breakdown counts each call as both products, against both dense twins.
   */
  @Test
  void dwBesideDxCountsAsBothProducts() {
    try (CpuBackend cpu = new CpuBackend(1)) {
      cpu.dwBesideDx(true);
      MoeLayerBenchmark.Shape s = new MoeLayerBenchmark.Shape(24, 16, 8, 4, 2);
      for (boolean written : new boolean[] {false, true}) {
        List<MoeLayerBenchmark.OpTime> products =
            MoeLayerBenchmark.breakdown(cpu, s, 3, DType.F32, written).ops().stream()
                .filter(MoeLayerBenchmark.OpTime::product)
                .toList();
        String dw = written ? "dW2 = dy^T a" : "dW2 += dy^T a";
        assertEquals(
            List.of(
                "scatter2scatterSwigluFactors fwd1 h = x W1^T, a = SwiGLU(h), h's factors",
                "scatter2scatter fwd2 ye = a W2^T",
                "swigluFactorsBackwardBesideDw "
                    + dw
                    + " beside dX2 da = dy W2 (g dy grouped), dh = (da p, da q)",
                "scatter2scatterBesideDw "
                    + (written ? "dW1 = dh^T x" : "dW1 += dh^T x")
                    + " beside dX1 dx = dh W1"),
            products.stream().map(MoeLayerBenchmark.OpTime::label).toList());
        assertEquals(2 * products.get(1).twinMs(), products.get(2).twinMs(), 1e-12);
        assertEquals(2 * products.get(0).twinMs(), products.get(3).twinMs(), 1e-12);
      }
    }
  }

  @Test
  void theWrittenBreakdownLabelsTheWeightGradientsAsWritten() {
    try (CpuBackend cpu = new CpuBackend(1)) {
      MoeLayerBenchmark.Shape s = new MoeLayerBenchmark.Shape(24, 16, 8, 4, 2);
      List<String> dw =
          MoeLayerBenchmark.breakdown(cpu, s, 3, DType.F32, true).ops().stream()
              .filter(MoeLayerBenchmark.OpTime::product)
              .map(MoeLayerBenchmark.OpTime::label)
              .filter(l -> l.startsWith("groupXtY"))
              .toList();
      assertEquals(List.of("groupXtY dW2 = dy^T a", "groupXtY dW1 = dh^T x"), dw);
    }
  }

  @Test
  void timingsCoverAtLeastTheMinimumStretch() {
    // 300 ms: a 4 ms layer takes 75 calls, a 58 ms one 6, never fewer than asked or over 1000
    assertEquals(75, MoeLayerBenchmark.callsFor(4, 5));
    assertEquals(6, MoeLayerBenchmark.callsFor(58, 5));
    assertEquals(7, MoeLayerBenchmark.callsFor(500, 7));
    assertEquals(1000, MoeLayerBenchmark.callsFor(0, 3));
  }
}
