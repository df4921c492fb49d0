package moetune.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.SplittableRandom;
import java.util.function.BooleanSupplier;
import moetune.engine.backend.Backend;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link MixtralModel#zeroGrad} leaves the expert weights' gradients to the backward that writes
 * them ({@link Parameters#zeroGradDeferring}): the gradients a step reads are bit for bit those of
 * a full memset, whether one or two micro-batches ran, or none before they are read.
 */
class DeferredGradZeroTest {
  static Backend be;

  @BeforeAll
  static void start() {
    be = new CpuBackend();
  }

  @AfterAll
  static void stop() {
    be.close();
  }

  /** B=2, T=9 over the awkward config's vocabulary of 50, every label but the first two. */
  static Batch batch(long seed) {
    SplittableRandom rnd = new SplittableRandom(seed);
    int[][] ids = new int[2][9];
    int[][] labels = new int[2][9];
    for (int b = 0; b < 2; b++) {
      for (int t = 0; t < 9; t++) {
        ids[b][t] = rnd.nextInt(50);
        labels[b][t] = t < 2 ? Batch.IGNORE_INDEX : ids[b][t];
      }
    }
    return Batch.of(ids, labels);
  }

  static MixtralModel model() {
    MixtralConfig c = RandomMixtral.awkwardConfig(0.0);
    return RandomMixtral.create(c, RandomMixtral.weights(c, 23), be, 5);
  }

  static float[] grads(MixtralModel m) {
    return be.download(m.parameters().gradFlat()).toFloatArray();
  }

  /** Whether a stale (unzeroed) gradient shows in g. */
  static boolean anyNonZero(float[] g) {
    for (float v : g) {
      if (v != 0f) {
        return true;
      }
    }
    return false;
  }

  /** Stale gradients of an earlier backward, so that an unzeroed element shows. */
  static void dirty(MixtralModel m) {
    m.forward(batch(1));
    m.backward();
  }

  static float[] slice(MixtralModel m, String name) {
    return slice(m.parameters(), m.parameters().slice(name));
  }

  @Test
  void deferredZeroGivesTheGradientsOfAFullMemset() {
    try (MixtralModel m = model()) {
      for (int micro = 1; micro <= 2; micro++) {
        dirty(m);
        m.parameters().zeroGrad(); // the whole memset, the backward adds
        for (int i = 0; i < micro; i++) {
          m.forward(batch(10 + i));
          m.backward();
        }
        float[] want = grads(m);

        dirty(m);
        m.zeroGrad();
        String gu = MixtralNames.fusedGateUp(0);
        assertTrue(
            anyNonZero(slice(m, gu)),
            "zeroGrad left the expert gradients to the backward (no memset)");
        for (float v : slice(m, MixtralNames.inputNorm(0))) {
          assertEquals(0f, v, "the other gradients are zeroed at once");
        }
        for (int i = 0; i < micro; i++) {
          m.forward(batch(10 + i));
          m.backward();
        }
        assertArrayEquals(want, grads(m), micro + " micro-batches: bit for bit the full memset's");
      }
    }
  }

  @Test
  void gradientsReadBeforeAnyBackwardAreZero() {
    try (MixtralModel m = model()) {
      m.parameters().zeroGrad();
      m.forward(batch(10));
      m.backward();
      float[] want = grads(m);

      dirty(m);
      m.zeroGrad();
      for (float v : grads(m)) {
        assertEquals(0f, v, "no backward yet: every gradient reads zero");
      }
      m.forward(batch(10));
      m.backward(); // still writes the expert gradients (over the zeros gradFlat set)
      assertArrayEquals(want, grads(m));
    }
  }

  /** Parameters of the awkward config whose gradients all read 3 (an earlier step's, stale). */
  static Parameters staleParameters() {
    Parameters p = Parameters.allocate(be, RandomMixtral.awkwardConfig(0.0), DType.F32);
    be.fill(p.gradFlat(), 3f);
    return p;
  }

  /** zeroGradDeferring with two slices and whether each is still pending. */
  static void deferTwo(
      Parameters p,
      Parameters.Slice a,
      BooleanSupplier aPending,
      Parameters.Slice b,
      BooleanSupplier bPending) {
    p.zeroGradDeferring(
        List.of(
            new Parameters.DeferredZero(a, aPending), new Parameters.DeferredZero(b, bPending)));
  }

  @Test
  void aWrittenSliceIsLeftAloneAndAPendingOneZeroed() {
    try (Parameters p = staleParameters()) {
      Parameters.Slice written = p.slice(MixtralNames.fusedGateUp(0));
      Parameters.Slice pending = p.slice(MixtralNames.fusedDown(1));
      deferTwo(p, pending, () -> true, written, () -> false);
      Tensor flat = p.gradFlat();
      float[] g = be.download(flat).toFloatArray();
      for (Parameters.Slice s : p.slices()) {
        float want = s == written ? 3f : 0f;
        for (long i = s.offset(); i < s.offset() + s.numel(); i++) {
          assertEquals(want, g[(int) i], s.name() + " element " + (i - s.offset()));
        }
      }
      assertThrows(
          IllegalArgumentException.class,
          () ->
              p.zeroGradDeferring(
                  List.of(
                      new Parameters.DeferredZero(written, () -> true),
                      new Parameters.DeferredZero(written, () -> true))));
      try (Parameters other = staleParameters()) {
        Parameters.Slice foreign = other.slice(MixtralNames.fusedGateUp(0));
        assertThrows(
            IllegalArgumentException.class,
            () -> p.zeroGradDeferring(List.of(new Parameters.DeferredZero(foreign, () -> true))));
      }
    }
  }

  /** A slice's gradients as they stand, without settling anything. */
  static float[] slice(Parameters p, Parameters.Slice s) {
    return be.download(p.grad(s.name())).toFloatArray();
  }

  /**
   * {@link MixtralModel#gradient} of one deferred expert gradient reads it as zeros and leaves the
   * other layers' deferred expert gradients to their backward (no memset of those).
   */
  @Test
  void readingOneGradientByNameSettlesOnlyItsSlice() {
    try (MixtralModel m = model()) {
      dirty(m);
      m.zeroGrad();
      for (float v : m.gradient(MixtralNames.fusedGateUp(1)).toFloatArray()) {
        assertEquals(0f, v, "the gradient read by name is what a full zeroGrad leaves");
      }
      assertTrue(
          anyNonZero(slice(m, MixtralNames.fusedGateUp(0))),
          "layer 0's expert gradients stay deferred, not memset");
      for (float v : grads(m)) {
        assertEquals(0f, v, "reading them all settles the rest");
      }
    }
  }

  @Test
  void readingARangeSettlesOnlyTheDeferredSlicesInIt() {
    try (Parameters p = staleParameters()) {
      Parameters.Slice inRange = p.slice(MixtralNames.fusedGateUp(1));
      Parameters.Slice later = p.slice(MixtralNames.fusedGateUp(0));
      boolean[] laterPending = {true};
      deferTwo(p, inRange, () -> true, later, () -> laterPending[0]);
      // a bucket of the last layer's gradients, finished while layer 0's backward is still to come
      long from = inRange.offset() - 1, to = inRange.offset() + inRange.numel() + 1;
      float[] range = be.download(p.gradRange(from, to - from)).toFloatArray();
      assertEquals(to - from, range.length);
      for (float v : range) {
        assertEquals(0f, v, "the range read: its deferred slice zeroed, its neighbours zero");
      }
      for (float v : slice(p, later)) {
        assertEquals(3f, v, "the slice outside the range stays deferred, not memset");
      }
      be.fill(p.grad(later.name()), 5f); // its backward writes it
      laterPending[0] = false;
      p.gradFlat();
      for (float v : slice(p, later)) {
        assertEquals(5f, v, "a written slice is left alone when the rest is read");
      }
      assertThrows(IllegalArgumentException.class, () -> p.gradRange(p.count() - 1, 2));
    }
  }
}
