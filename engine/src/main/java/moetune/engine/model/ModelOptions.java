package moetune.engine.model;

import moetune.engine.tensor.DType;

/**
 * How a model computes, independent of its checkpoint.
 *
 * @param activations the dtype of weights' working copy and of activations and their gradients:
 *     F32 (the CPU and the GPU parity mode) or BF16 (the GPU training mode). Master weights,
 *     parameter gradients, optimizer moments, router probabilities, norms' statistics and
 *     losses are float32 in every mode.
 * @param seed seeds the router jitter noise (used only when router_jitter_noise > 0)
 */
public record ModelOptions(DType activations, long seed) {
  public ModelOptions {
    if (activations != DType.F32 && activations != DType.BF16 && activations != DType.F16) {
      throw new IllegalArgumentException(
          "ModelOptions: activations must be a float dtype (fp32, bf16, fp16), got " + activations);
    }
  }

  /** float32 everywhere, seed 0. */
  public static ModelOptions defaults() {
    return new ModelOptions(DType.F32, 0L);
  }

  public ModelOptions withActivations(DType dtype) {
    return new ModelOptions(dtype, seed);
  }
}
