package moetune.engine.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;

class OpProfilerTest {

  @Test
  void phasesFollowTheBackendMethodNames() {
    assertEquals(OpProfiler.Phase.ATTENTION, OpProfiler.phaseOf("attentionForward"));
    assertEquals(OpProfiler.Phase.ATTENTION, OpProfiler.phaseOf("attentionBackward"));
    for (String m :
        List.of("scatter2scatter", "groupXtY", "routerTopK", "swigluBackward", "moeGroupedGemm")) {
      assertEquals(OpProfiler.Phase.MOE, OpProfiler.phaseOf(m), m);
    }
    assertEquals(OpProfiler.Phase.GEMM, OpProfiler.phaseOf("matmul"));
    assertEquals(OpProfiler.Phase.OPTIMIZER, OpProfiler.phaseOf("adamwStep"));
    assertEquals(OpProfiler.Phase.OPTIMIZER, OpProfiler.phaseOf("clipByNorm"));
    assertEquals(OpProfiler.Phase.OPTIMIZER, OpProfiler.phaseOf("sumSquares"));
    assertEquals(OpProfiler.Phase.TRANSFER, OpProfiler.phaseOf("download"));
    assertEquals(OpProfiler.Phase.TRANSFER, OpProfiler.phaseOf("copyFromHost"));
    assertEquals(OpProfiler.Phase.OTHER, OpProfiler.phaseOf("rmsnormForward"));
    assertEquals(OpProfiler.Phase.OTHER, OpProfiler.phaseOf("crossEntropy"));
    assertEquals(OpProfiler.Phase.GEMM, OpProfiler.phaseOf("lmHeadCrossEntropy")); // mostly GEMM
  }

  @Test
  void seesOpsCalledDirectlyAndThroughATensorAndAddsUpToTheTotal() {
    try (CpuBackend cpu = new CpuBackend(1)) {
      OpProfiler p = OpProfiler.wrap(cpu);
      Backend be = p.backend();
      float[] av = new float[96 * 80];
      for (int i = 0; i < av.length; i++) {
        av[i] = (i % 7) * 0.1f;
      }
      Tensor a = be.upload(HostTensor.ofFloats(av, 96, 80));
      Tensor c = be.empty(DType.F32, 96, 96);
      Tensor m = be.zeros(DType.F32, 96 * 80);
      Tensor v = be.zeros(DType.F32, 96 * 80);
      Tensor g = be.zeros(DType.F32, 96 * 80);
      // a tensor made through the wrapper reports the wrapper, so MoE code that calls
      // x.backend().op(...) is profiled too
      assertSame(be, a.backend());
      p.begin();
      be.matmul(a, false, a, true, c, 1f, 0f);
      c.backend().scale(c, 0.5f);
      be.adamwStep(
          a.reshape(96 * 80),
          g,
          m,
          v,
          AdamWCoefficients.of(1e-3f, 0.9f, 0.999f, 1e-8f, 0f, 1),
          null);
      HostTensor back = be.download(c);
      OpProfiler.Breakdown b = p.end();
      assertEquals(96 * 96, back.numel());
      assertEquals(4, b.ops());
      assertEquals(1, b.syncs());
      assertEquals(
          List.of("matmul", "scale", "adamwStep", "download"), List.copyOf(sortedNames(b)));
      double sum = b.byPhase().values().stream().mapToDouble(Double::doubleValue).sum();
      assertEquals(b.totalMs(), sum, 1e-6 * Math.max(1, b.totalMs()));
      assertTrue(b.byPhase().get(OpProfiler.Phase.GEMM) > 0, b.toString());
      assertTrue(b.byPhase().get(OpProfiler.Phase.OPTIMIZER) > 0, b.toString());
      assertEquals(0.0, b.byPhase().get(OpProfiler.Phase.ATTENTION));
      // outside begin/end nothing is recorded
      be.scale(c, 2f);
      p.close();
      assertSame(cpu, a.backend(), "after close the tensors report the real backend again");
      for (Tensor t : List.of(a, c, m, v, g)) {
        t.close();
      }
    }
  }

  private static List<String> sortedNames(OpProfiler.Breakdown b) {
    return List.of("matmul", "scale", "adamwStep", "download").stream()
        .filter(b.byOp()::containsKey)
        .toList();
  }
}
