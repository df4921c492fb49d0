package moetune.engine.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Expert-parallel dispatch and combine on in-process ranks: each rank's expert-sorted rows reach
 * the rank owning their expert grouped by expert (source rank minor), and combine brings an
 * expert's output back to every row's place. Rows are labelled (rank, expert, index) so a row in
 * the wrong place shows.
 */
class ExpertDispatchTest {
  static final int D = 3;

  /** Rows of expert e on rank r: uneven, zero for some (rank, expert) pairs. */
  static long count(int r, int e) {
    return (r * 3 + e * 5) % 4;
  }

  static float label(int r, int e, long i, int c) {
    return 1000 * r + 100 * e + 10 * i + c;
  }

  @ParameterizedTest
  @CsvSource({"2, 4", "4, 8", "3, 3"})
  void dispatchGroupsByExpertAndCombineRestores(int n, int experts) {
    List<float[][]> results =
        LocalCommunicator.run(
            n,
            comm -> {
              try (CpuBackend be = new CpuBackend(1)) {
                int r = comm.rank();
                long[] counts = new long[experts];
                long rows = 0;
                for (int e = 0; e < experts; e++) {
                  counts[e] = count(r, e);
                  rows += counts[e];
                }
                float[] x = new float[(int) rows * D];
                int at = 0;
                for (int e = 0; e < experts; e++) {
                  for (long i = 0; i < counts[e]; i++) {
                    for (int c = 0; c < D; c++) x[at++] = label(r, e, i, c);
                  }
                }
                ExpertDispatch plan = new ExpertDispatch(comm, counts);
                long got = Math.max(1, plan.receivedRows());
                Tensor sorted = be.upload(HostTensor.ofFloats(x, Math.max(1, rows), D));
                Tensor scratch = be.zeros(DType.F32, got, D);
                Tensor grouped = be.zeros(DType.F32, got, D);
                plan.dispatch(sorted, scratch, grouped);
                float[] g = be.download(grouped).toFloatArray();
                // the experts' work: expert e multiplies its rows by (e + 1)
                float[] y = g.clone();
                long[] lc = plan.localExpertCounts();
                int row = 0;
                for (int l = 0; l < lc.length; l++) {
                  int e = r * lc.length + l;
                  for (long i = 0; i < lc[l]; i++, row++) {
                    for (int c = 0; c < D; c++) y[row * D + c] *= e + 1;
                  }
                }
                Tensor out = be.zeros(DType.F32, Math.max(1, rows), D);
                plan.combine(be.upload(HostTensor.ofFloats(y, got, D)), scratch, out);
                return new float[][] {g, be.download(out).toFloatArray(), x, {plan.receivedRows()}};
              }
            });
    int local = experts / n;
    for (int r = 0; r < n; r++) {
      float[][] res = results.get(r);
      // expected grouped rows: for each local expert, the rows of rank 0, then rank 1, ...
      int rows = 0;
      for (int l = 0; l < local; l++) {
        for (int src = 0; src < n; src++) rows += (int) count(src, r * local + l);
      }
      assertEquals(rows, (int) res[3][0], "rows received by rank " + r);
      float[] expect = new float[rows * D];
      int at = 0;
      for (int l = 0; l < local; l++) {
        int e = r * local + l;
        for (int src = 0; src < n; src++) {
          for (long i = 0; i < count(src, e); i++) {
            for (int c = 0; c < D; c++) expect[at++] = label(src, e, i, c);
          }
        }
      }
      float[] g = java.util.Arrays.copyOf(res[0], rows * D);
      assertArrayEquals(expect, g, "grouped rows on rank " + r);
      // combine: every row of rank r back in place, times (its expert + 1)
      float[] x = res[2];
      float[] back = new float[x.length];
      at = 0;
      for (int e = 0; e < experts; e++) {
        for (long i = 0; i < count(r, e); i++) {
          for (int c = 0; c < D; c++, at++) back[at] = x[at] * (e + 1);
        }
      }
      assertArrayEquals(back, java.util.Arrays.copyOf(res[1], x.length), "combined on rank " + r);
    }
  }

  @Test
  void expertsNotDivisibleByRanksIsOneLine() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                LocalCommunicator.run(
                    3, comm -> new ExpertDispatch(comm, new long[] {1, 2, 3, 4})));
    assertEquals(
        "--expert-parallel 3 must divide the model's 4 experts; give a divisor of 4",
        e.getMessage());
  }
}
