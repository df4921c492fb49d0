package moetune.engine.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import moetune.engine.backend.OpTable;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every Backend op on the GPU in float32 against the CPU oracle, one case per op from {@link
 * OpTable} (whose CPU test fails when an op has no case). Tolerance 1e-5 normwise, as {@link
 * GpuTesting} explains; bf16 and the op families' edge cases (one token, k = 1..4, long rows) stay
 * in CudaDenseOpsTest, CudaLayerOpsTest, CudaMoeOpsTest, CudaLossOpsTest and CudaAttentionTest.
 */
@Tag("gpu")
class OpTableGpuTest {
  static List<String> ops() {
    return List.copyOf(OpTable.CASES.keySet());
  }

  @ParameterizedTest
  @MethodSource("ops")
  void f32AgainstOracle(String op) {
    CudaBackend gpu = GpuTesting.gpu();
    Map<String, float[]> expected = OpTable.run(op, GpuTesting.cpu(), GpuTesting.SEED);
    Map<String, float[]> actual = OpTable.run(op, gpu, GpuTesting.SEED);
    List<String> fails = new ArrayList<>(OpTable.unwritten(op, actual));
    fails.addAll(OpTable.compare(op, expected, actual, 1e-5));
    assertEquals(List.of(), fails, "seed " + GpuTesting.SEED);
  }
}
