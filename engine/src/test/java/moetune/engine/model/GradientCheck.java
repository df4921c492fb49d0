package moetune.engine.model;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import moetune.engine.backend.Backend;
import moetune.engine.hf.MixtralConfig;

/**
 * Finite-difference check of a model's whole backward: for every parameter tensor, the directional
 * derivative of the total loss along a unit vector (half the gradient's direction, half random)
 * from {@link MixtralModel#backward} against central differences of {@link MixtralModel#forward}.
 * Each evaluation is a fresh model from the same weights and options, so router jitter draws the
 * same noise.
 */
final class GradientCheck {
  private GradientCheck() {}

  /** Throws an AssertionError naming the first parameter whose derivative disagrees (0.5%). */
  static void matchesFiniteDifferences(
      MixtralConfig c,
      Map<String, float[]> w,
      ModelOptions o,
      Batch batch,
      Backend be,
      String what) {
    matchesFiniteDifferences(c, w, o, LossWeights.of(c), batch, be, what);
  }

  /** As above, with the given router-loss weights in the total. */
  static void matchesFiniteDifferences(
      MixtralConfig c,
      Map<String, float[]> w,
      ModelOptions o,
      LossWeights lw,
      Batch batch,
      Backend be,
      String what) {
    Map<String, float[]> grads = new LinkedHashMap<>();
    int[] routing;
    try (MixtralModel m = RandomMixtral.create(c, w, be, o)) {
      m.zeroGrad();
      m.forward(batch, lw);
      routing = m.lastRouting()[1].toIntArray();
      m.backward(1f, lw);
      for (String n : w.keySet()) {
        grads.put(n, m.gradient(n).toFloatArray());
      }
    }
    SplittableRandom rnd = new SplittableRandom(23);
    for (String n : w.keySet()) {
      float[] g = grads.get(n);
      float[] u = direction(g, rnd);
      double dot = 0;
      for (int i = 0; i < u.length; i++) {
        dot += (double) u[i] * g[i];
      }
      // Routing is piecewise: a top-k choice that flips inside [-h, h] adds J / 2h to the
      // difference quotient (J the loss's jump). A step size whose perturbed runs route any token
      // differently is therefore skipped; the first step size without a flip must agree. The
      // steps start at 1e-3: central differences err by O(h^2) times the third derivative, which
      // router jitter's input scaling makes large enough at h = 1e-2 to exceed 0.5% for some
      // noise draws, while float32 rounding at h = 1e-3 (about 6e-8 * |loss| / h, 3e-4 here)
      // stays far below 0.5% of these derivatives.
      float[] orig = w.get(n);
      StringBuilder tried = new StringBuilder();
      boolean agrees = false;
      boolean compared = false;
      for (float h : new float[] {1e-3f, 3e-4f, 1e-4f}) {
        double[] l = new double[2];
        boolean flipped = false;
        for (int side = 0; side < 2; side++) {
          float[] moved = orig.clone();
          for (int i = 0; i < u.length; i++) {
            moved[i] += (side == 0 ? h : -h) * u[i];
          }
          w.put(n, moved);
          try (MixtralModel m = RandomMixtral.create(c, w, be, o)) {
            l[side] = m.forward(batch, lw).total();
            flipped |=
                !sameRealRouting(
                    m.lastRouting()[1].toIntArray(), routing, batch, c.numExpertsPerTok);
          }
        }
        double fd = (l[0] - l[1]) / (2 * h);
        tried.append(
            String.format(" h=%.0e: %.6f%s", h, fd, flipped ? " (routing flipped, skipped)" : ""));
        if (!flipped) {
          compared = true;
          agrees = Math.abs(fd - dot) <= 5e-3 * Math.abs(fd);
          break;
        }
      }
      w.put(n, orig);
      System.out.printf("  %-48s backward %.6f, central differences%s%n", n, dot, tried);
      if (!compared || !agrees) {
        throw new AssertionError(
            "d loss / d "
                + n
                + " along u ("
                + what
                + "): backward "
                + dot
                + " but central differences"
                + tried);
      }
    }
  }

  /** Whether two routings I32 (L*N, K) agree on every real (unpadded) token. */
  private static boolean sameRealRouting(int[] a, int[] b, Batch batch, int k) {
    int n = batch.tokens();
    for (int i = 0; i < a.length; i++) {
      boolean real = !batch.padding((i / k) % n);
      if (real && a[i] != b[i]) {
        return false;
      }
    }
    return true;
  }

  /** A unit vector half along g, half random. */
  private static float[] direction(float[] g, SplittableRandom rnd) {
    double gn = 0;
    for (float v : g) {
      gn += (double) v * v;
    }
    gn = Math.sqrt(gn);
    float[] u = new float[g.length];
    double rn = 0;
    double[] r = new double[g.length];
    for (int i = 0; i < g.length; i++) {
      r[i] = rnd.nextGaussian();
      rn += r[i] * r[i];
    }
    rn = Math.sqrt(rn);
    double un = 0;
    for (int i = 0; i < g.length; i++) {
      u[i] = (float) ((gn == 0 ? 0 : g[i] / gn) + r[i] / rn);
      un += (double) u[i] * u[i];
    }
    for (int i = 0; i < g.length; i++) {
      u[i] /= (float) Math.sqrt(un);
    }
    return u;
  }
}
