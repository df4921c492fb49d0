package moetune.engine.model;

import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Scale-free comparisons for parity tests: ||a - b|| / ||b||, printing the first mismatches. */
public final class Parity {
  private Parity() {}

  /** The fixtures directory (system property moetune.fixtures, set by surefire). */
  public static Path fixtures() {
    return Path.of(System.getProperty("moetune.fixtures", "../fixtures"));
  }

  /** ||a - b|| / ||b|| in double (||a - b|| when b is all zeros). */
  public static double relError(float[] actual, float[] expected) {
    if (actual.length != expected.length) {
      throw new AssertionError("length " + actual.length + " != expected " + expected.length);
    }
    double num = 0;
    double den = 0;
    for (int i = 0; i < actual.length; i++) {
      double d = (double) actual[i] - expected[i];
      num += d * d;
      den += (double) expected[i] * expected[i];
    }
    return den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
  }

  /** Fails with the relative error and the first mismatching indices when above tol. */
  public static double assertClose(String what, float[] actual, float[] expected, double tol) {
    double err = relError(actual, expected);
    if (!(err <= tol)) {
      fail(
          what
              + ": relative error "
              + err
              + " > "
              + tol
              + "; first mismatches: "
              + firstMismatches(actual, expected, tol));
    }
    return err;
  }

  /** Up to 8 indices whose elementwise error stands out (relative to the tensor's RMS). */
  public static String firstMismatches(float[] actual, float[] expected, double tol) {
    double rms = 0;
    for (float e : expected) {
      rms += (double) e * e;
    }
    rms = Math.sqrt(rms / Math.max(1, expected.length));
    List<String> out = new ArrayList<>();
    for (int i = 0; i < actual.length && out.size() < 8; i++) {
      double d = Math.abs((double) actual[i] - expected[i]);
      if (!(d <= tol * Math.max(rms, Math.abs(expected[i])))) {
        out.add("[" + i + "] got " + actual[i] + " want " + expected[i]);
      }
    }
    return out.isEmpty() ? "(spread evenly, none stands out)" : String.join(", ", out);
  }

  public static void assertScalar(String what, double actual, double expected, double tol) {
    double err = Math.abs(actual - expected) / Math.max(Math.abs(expected), 1e-30);
    if (!(err <= tol)) {
      fail(
          what
              + ": got "
              + actual
              + " want "
              + expected
              + " (relative error "
              + err
              + " > "
              + tol
              + ")");
    }
  }
}
