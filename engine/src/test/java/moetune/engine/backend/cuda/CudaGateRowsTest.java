package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.GpuTesting.check;
import static moetune.engine.backend.cuda.GpuTesting.cpu;
import static moetune.engine.backend.cuda.GpuTesting.gpu;
import static moetune.engine.backend.cuda.GpuTesting.ints;
import static moetune.engine.backend.cuda.GpuTesting.poisoned;
import static moetune.engine.backend.cuda.GpuTesting.poisonedInts;
import static moetune.engine.backend.cuda.GpuTesting.randn;
import static moetune.engine.backend.cuda.GpuTesting.routing;
import static moetune.engine.backend.cuda.GpuTesting.tol;

import moetune.engine.backend.cuda.GpuTesting.Pair;
import moetune.engine.tensor.DType;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * gateRowsBackward (gate_rows.cu) against the CPU oracle in bf16 and float32: widths of the LoRA
 * rank (16), off the 16-byte path (333), inside the kernel's registers (4096, Mixtral's 14336) and
 * past them (20000, read twice); rows in expert order and in slot order; with and without dGates.
 */
@Tag("gpu")
class CudaGateRowsTest {
  @ParameterizedTest
  @CsvSource({
    "BF16, 16",
    "BF16, 333",
    "BF16, 4096",
    "BF16, 14336",
    "BF16, 20000",
    "F32, 16",
    "F32, 333",
    "F32, 20000",
  })
  void againstOracle(DType dt, int cols) {
    int n = 301;
    int k = 2;
    int e = 8;
    int m = n * k;
    try (Pair top = ints(routing(n, k, new int[] {0, 1, 2, 4, 5, 7}), m);
        Pair se = poisonedInts(m);
        Pair ss = poisonedInts(m);
        Pair offs = poisonedInts(e);
        Pair gates = randn(DType.F32, 1, m)) {
      cpu().flattenSortCount(top.c(), e, se.c(), ss.c(), offs.c());
      gpu().flattenSortCount(top.g(), e, se.g(), ss.g(), offs.g());
      for (boolean grouped : new boolean[] {true, false}) {
        for (boolean withDGates : new boolean[] {true, false}) {
          int xFan = grouped ? 1 : k;
          try (Pair rows = randn(dt, 1, m, cols);
              Pair x = randn(dt, 1, m / xFan, cols);
              Pair dGates = poisoned(DType.F32, m)) {
            cpu()
                .gateRowsBackward(
                    rows.c(),
                    x.c(),
                    xFan,
                    grouped ? ss.c() : null,
                    gates.c(),
                    withDGates ? dGates.c() : null);
            gpu()
                .gateRowsBackward(
                    rows.g(),
                    x.g(),
                    xFan,
                    grouped ? ss.g() : null,
                    gates.g(),
                    withDGates ? dGates.g() : null);
            String what = dt + " C=" + cols + " grouped=" + grouped + " dGates=" + withDGates;
            check("gateRowsBackward rows " + what, rows, tol(dt));
            if (withDGates) {
              check("gateRowsBackward dGates " + what, dGates, tol(dt));
            }
          }
        }
      }
    }
  }
}
