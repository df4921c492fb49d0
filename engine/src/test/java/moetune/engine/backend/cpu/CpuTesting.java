package moetune.engine.backend.cpu;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.Random;
import java.util.function.ToDoubleFunction;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * Helpers shared by the CPU backend tests: tensors from arrays, comparisons, finite differences.
 */
final class CpuTesting {
  private CpuTesting() {}

  static Tensor f32(CpuBackend be, float[] v, long... shape) {
    return be.upload(HostTensor.ofFloats(v, shape));
  }

  static Tensor i32(CpuBackend be, int[] v, long... shape) {
    return be.upload(HostTensor.ofInts(v, shape));
  }

  static float[] floats(CpuBackend be, Tensor t) {
    return be.download(t).toFloatArray();
  }

  static int[] ints(CpuBackend be, Tensor t) {
    return be.download(t).toIntArray();
  }

  /** A tensor filled with NaN, to prove an overwrite op writes every element. */
  static Tensor poisoned(CpuBackend be, long... shape) {
    Tensor t = be.empty(DType.F32, shape);
    be.fill(t, Float.NaN);
    return t;
  }

  static float[] randn(Random r, int n, double scale) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) (r.nextGaussian() * scale);
    }
    return v;
  }

  static double[] toDouble(float[] v) {
    double[] d = new double[v.length];
    for (int i = 0; i < v.length; i++) {
      d[i] = v[i];
    }
    return d;
  }

  /**
   * Fails unless actual matches expected elementwise within atol + rtol * |expected|, printing the
   * first mismatches with their indices and the normwise relative error.
   */
  static void assertClose(
      String what, double[] expected, float[] actual, double rtol, double atol) {
    if (expected.length != actual.length) {
      fail(what + ": length " + actual.length + ", expected " + expected.length);
    }
    StringBuilder bad = new StringBuilder();
    int count = 0;
    double diff2 = 0;
    double ref2 = 0;
    for (int i = 0; i < expected.length; i++) {
      double d = actual[i] - expected[i];
      boolean ok = actual[i] == expected[i] || Math.abs(d) <= atol + rtol * Math.abs(expected[i]);
      if (actual[i] == expected[i]) {
        d = 0; // equal infinities
      }
      diff2 += d * d;
      ref2 += Double.isInfinite(expected[i]) ? 0 : expected[i] * expected[i];
      if (!ok || Double.isNaN(actual[i]) != Double.isNaN(expected[i])) {
        if (count++ < 8) {
          bad.append(String.format("%n  [%d] got %.9g expected %.9g", i, actual[i], expected[i]));
        }
      }
    }
    if (count > 0) {
      fail(
          String.format(
              "%s: %d of %d elements differ (normwise rel err %.3g):%s",
              what, count, expected.length, Math.sqrt(diff2 / Math.max(ref2, 1e-300)), bad));
    }
  }

  static void assertClose(String what, float[] expected, float[] actual, double rtol, double atol) {
    assertClose(what, toDouble(expected), actual, rtol, atol);
  }

  /**
   * Fails unless ‖actual - expected‖ / max(‖expected‖, 1e-6) <= tol (finite-difference gradients).
   */
  static void assertNormClose(String what, double[] expected, float[] actual, double tol) {
    double diff2 = 0;
    double ref2 = 0;
    int worst = -1;
    double worstD = -1;
    for (int i = 0; i < expected.length; i++) {
      double d = actual[i] - expected[i];
      diff2 += d * d;
      ref2 += expected[i] * expected[i];
      if (Math.abs(d) > worstD || Double.isNaN(d)) {
        worstD = Double.isNaN(d) ? Double.POSITIVE_INFINITY : Math.abs(d);
        worst = i;
      }
    }
    // A zero reference (a gradient that vanishes) must be matched to within 1e-6 absolute.
    double rel = Math.sqrt(diff2) / Math.max(Math.sqrt(ref2), 1e-6);
    if (!(rel <= tol)) {
      fail(
          String.format(
              "%s: normwise rel err %.3g > %.3g (|expected| = %.3g); worst [%d] got %.9g"
                  + " expected %.9g",
              what, rel, tol, Math.sqrt(ref2), worst, actual[worst], expected[worst]));
    }
  }

  /**
   * Central finite differences of f with respect to every element of x (modified in place and
   * restored): (f(x + h) - f(x - h)) / 2h.
   */
  static double[] numericGrad(float[] x, float h, ToDoubleFunction<float[]> f) {
    double[] g = new double[x.length];
    for (int i = 0; i < x.length; i++) {
      float saved = x[i];
      x[i] = saved + h;
      double up = f.applyAsDouble(x);
      x[i] = saved - h;
      double down = f.applyAsDouble(x);
      x[i] = saved;
      // the step actually taken in float32
      g[i] = (up - down) / ((double) (saved + h) - (double) (saved - h));
    }
    return g;
  }

  /** Central finite differences of a double function: (f(x + h) - f(x - h)) / 2h. */
  static double[] numericGrad(double[] x, double h, ToDoubleFunction<double[]> f) {
    double[] g = new double[x.length];
    for (int i = 0; i < x.length; i++) {
      double saved = x[i];
      x[i] = saved + h;
      double up = f.applyAsDouble(x);
      x[i] = saved - h;
      double down = f.applyAsDouble(x);
      x[i] = saved;
      g[i] = (up - down) / (2 * h);
    }
    return g;
  }

  static double dot(double[] a, float[] b) {
    double s = 0;
    for (int i = 0; i < a.length; i++) {
      s += a[i] * b[i];
    }
    return s;
  }

  /** sum_i a[i] * b[i] in double: the scalar "loss" that the gradient tests differentiate. */
  static double dot(float[] a, float[] b) {
    double s = 0;
    for (int i = 0; i < a.length; i++) {
      s += (double) a[i] * b[i];
    }
    return s;
  }
}
