package moetune.engine.backend.cpu;

import static moetune.engine.backend.cpu.CpuTesting.assertClose;
import static moetune.engine.backend.cpu.CpuTesting.f32;
import static moetune.engine.backend.cpu.CpuTesting.floats;
import static moetune.engine.backend.cpu.CpuTesting.i32;
import static moetune.engine.backend.cpu.CpuTesting.poisoned;
import static moetune.engine.backend.cpu.CpuTesting.randn;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import moetune.engine.backend.cpu.CpuScatterMoeTest.Routing;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * gateRowsBackward against a per-row double loop: rows in expert order (gate index by
 * sortedScatteredIdxs, input row p) and in slot order (gate s, input row s / k), with and without
 * the gate gradient; and its argument checks.
 */
class CpuGateRowsTest {
  static CpuBackend be;

  @BeforeAll
  static void start() {
    be = new CpuBackend(2);
  }

  @AfterAll
  static void stop() {
    be.close();
  }

  @Test
  void bothLayoutsAgainstAPerRowLoop() {
    Random r = new Random(21);
    int c = 37;
    Routing rt = Routing.random(r, 29, 3, 5, 4);
    int m = rt.m();
    int k = rt.k();
    Tensor ss = i32(be, rt.sortedScat(), m);
    float[] gates = randn(r, m, 1);
    Tensor gt = f32(be, gates, m);
    for (boolean grouped : new boolean[] {true, false}) {
      for (boolean withDGates : new boolean[] {true, false}) {
        int xFan = grouped ? 1 : k;
        float[] rows = randn(r, m * c, 1);
        float[] x = randn(r, m / xFan * c, 1);
        Tensor rowsT = f32(be, rows, m, c);
        Tensor dg = withDGates ? poisoned(be, m) : null;
        be.gateRowsBackward(rowsT, f32(be, x, m / xFan, c), xFan, grouped ? ss : null, gt, dg);
        float[] wantRows = new float[m * c];
        float[] wantDGates = new float[m];
        for (int s = 0; s < m; s++) {
          int gi = grouped ? rt.sortedScat()[s] : s;
          double dot = 0;
          for (int j = 0; j < c; j++) {
            dot += (double) rows[s * c + j] * x[(s / xFan) * c + j];
            wantRows[s * c + j] = rows[s * c + j] * gates[gi];
          }
          wantDGates[gi] = (float) dot;
        }
        String what = "grouped=" + grouped + " dGates=" + withDGates;
        assertClose("rows " + what, wantRows, floats(be, rowsT), 0, 0);
        if (withDGates) {
          assertClose("dGates " + what, wantDGates, floats(be, dg), 1e-6, 1e-6);
        }
      }
    }
  }

  @Test
  void argumentsAreChecked() {
    Tensor rows = f32(be, new float[12], 6, 2);
    Tensor gates = f32(be, new float[6], 6);
    Tensor dGates = f32(be, new float[6], 6);
    IllegalArgumentException noX =
        assertThrows(
            IllegalArgumentException.class,
            () -> be.gateRowsBackward(rows, null, 1, null, gates, dGates));
    assertTrue(noX.getMessage().startsWith("gateRowsBackward: dGates needs x"), noX.getMessage());
    IllegalArgumentException badX =
        assertThrows(
            IllegalArgumentException.class,
            () -> be.gateRowsBackward(rows, f32(be, new float[8], 4, 2), 2, null, gates, dGates));
    assertTrue(badX.getMessage().startsWith("gateRowsBackward: x"), badX.getMessage());
    IllegalArgumentException notPerm =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                be.gateRowsBackward(
                    rows, null, 1, i32(be, new int[] {0, 1, 2, 3, 4, 4}, 6), gates, null));
    assertTrue(notPerm.getMessage().contains("not a permutation"), notPerm.getMessage());
  }
}
