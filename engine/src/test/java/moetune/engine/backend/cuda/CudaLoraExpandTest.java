package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.GpuTesting.check;
import static moetune.engine.backend.cuda.GpuTesting.cpu;
import static moetune.engine.backend.cuda.GpuTesting.gpu;
import static moetune.engine.backend.cuda.GpuTesting.ints;
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
 * loraExpandAdd (lora_expand.cu) against the CPU oracle in bf16 and float32: the adapter ranks the
 * LoRA paths use (8, 16, a partial 16-wide slab at 20), widths on and off the 16-byte path, both W
 * layouts and both output layouts, with experts that get no rows.
 */
@Tag("gpu")
class CudaLoraExpandTest {
  @ParameterizedTest
  @CsvSource({
    "BF16, 16, 1024",
    "BF16, 8, 333",
    "BF16, 20, 4096",
    "F32, 16, 1024",
    "F32, 20, 333",
  })
  void againstOracle(DType dt, int rank, int out) {
    int n = 301;
    int k = 2;
    int e = 8;
    int m = n * k;
    try (Pair top = ints(routing(n, k, new int[] {0, 1, 2, 4, 5, 7}), m);
        Pair se = poisonedInts(m);
        Pair ss = poisonedInts(m);
        Pair offs = poisonedInts(e)) {
      cpu().flattenSortCount(top.c(), e, se.c(), ss.c(), offs.c());
      gpu().flattenSortCount(top.g(), e, se.g(), ss.g(), offs.g());
      for (boolean transW : new boolean[] {true, false}) {
        for (boolean groupedOut : new boolean[] {false, true}) {
          try (Pair x = randn(dt, 1, m, rank);
              Pair w = transW ? randn(dt, 0.25, e, out, rank) : randn(dt, 0.25, e, rank, out);
              Pair y = randn(dt, 1, m, out)) {
            cpu().loraExpandAdd(x.c(), w.c(), transW, 2f, se.c(), ss.c(), groupedOut, y.c());
            gpu().loraExpandAdd(x.g(), w.g(), transW, 2f, se.g(), ss.g(), groupedOut, y.g());
            check(
                "loraExpandAdd "
                    + dt
                    + " r="
                    + rank
                    + " out="
                    + out
                    + " transW="
                    + transW
                    + " groupedOut="
                    + groupedOut,
                y,
                tol(dt));
          }
        }
      }
    }
  }
}
