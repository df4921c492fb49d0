package moetune.engine.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import moetune.engine.backend.cuda.CudaBackend;
import moetune.engine.backend.cuda.CudaProbe;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.tensor.DType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Activation recomputation on the CUDA backend: a recomputing step gives the same losses as keeping
 * everything (the forward is the same work) and the same gradients up to the run-to-run noise of
 * the GPU's float32 atomics (attention's dq, the loss's sum), with LoRA on every target and router
 * jitter on; and it holds less memory at its peak. Skips visibly without a CUDA device.
 */
@Tag("gpu")
class RecomputeGpuTest {
  static CudaBackend gpu;

  static synchronized CudaBackend gpu() {
    String why = CudaProbe.unavailableReason(0);
    Assumptions.assumeTrue(why == null, () -> "GPU test skipped: " + why);
    if (gpu == null) {
      gpu = new CudaBackend(0, false);
    }
    return gpu;
  }

  @AfterAll
  static void close() {
    if (gpu != null) {
      gpu.close();
    }
  }

  private static RecomputeTest.Outcome run(
      MixtralConfig c, DType act, Recompute mode, Batch b, LoraConfig lora) {
    Map<String, float[]> w = RandomMixtral.weights(c, 41);
    ModelOptions o = new ModelOptions(act, 5).withLora(lora).withRecompute(mode);
    try (MixtralModel m = RandomMixtral.create(c, w, gpu(), o)) {
      return RecomputeTest.step(gpu(), m, b, 2);
    }
  }

  /**
   * Tolerances on the gradients' relative L2 error: float32 atomics summing in another order move
   * an element by about 1e-7 relative; in bf16 such a change can flip the last bit of a bf16
   * activation (2^-8), which a few elements of the gradient inherit, far below 2e-3 over the whole
   * vector. A recomputation that used other noise or stale state is off by O(1).
   */
  private static void check(DType act, double tol) {
    MixtralConfig c =
        RandomMixtral.awkwardConfig(0.1).toBuilder().set(x -> x.numHiddenLayers = 4).build();
    Batch b = LoraTest.batch(c, 2, 37, 9);
    LoraConfig lora = new LoraConfig(4, 8, 0, LoraTest.ALL, false, 3);
    RecomputeTest.Outcome none = run(c, act, Recompute.NONE, b, lora);
    RecomputeTest.Outcome again = run(c, act, Recompute.NONE, b, lora);
    double noise = Parity.relError(again.grads(), none.grads());
    System.out.printf("  %s: run-to-run gradient error without recomputation %.2e%n", act, noise);
    for (Recompute mode : new Recompute[] {Recompute.ATTENTION, Recompute.LAYER}) {
      RecomputeTest.Outcome got = run(c, act, mode, b, lora);
      Parity.assertClose(mode + " logits", got.logits(), none.logits(), 1e-6);
      double err = Parity.assertClose(mode + " gradients", got.grads(), none.grads(), tol);
      double lossErr = Math.abs(got.losses()[0] - none.losses()[0]);
      System.out.printf(
          "  %s %-9s gradient error %.2e, |loss diff| %.2e, peak %d B (none %d B)%n",
          act, mode, err, lossErr, got.peak(), none.peak());
      // the forward is the same work in every mode; only the loss's float32 atomic sum may reorder
      assertTrue(
          lossErr <= 1e-6 * Math.abs(none.losses()[0]),
          mode + ": loss " + got.losses()[0] + " vs " + none.losses()[0]);
      assertTrue(got.peak() < none.peak(), mode + ": peak " + got.peak() + " < " + none.peak());
    }
  }

  @Test
  void float32RecomputationMatchesKeepingEverything() {
    check(DType.F32, 1e-5);
  }

  @Test
  void bf16RecomputationMatchesKeepingEverything() {
    check(DType.BF16, 2e-3);
  }
}
