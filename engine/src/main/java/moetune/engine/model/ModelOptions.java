package moetune.engine.model;

import java.util.function.Predicate;
import moetune.engine.tensor.DType;

/**
 * How a model computes, independent of its checkpoint.
 *
 * @param activations the dtype of weights' working copy and of activations and their gradients: F32
 *     (the CPU and the GPU parity mode) or BF16 (the GPU training mode). Master weights, parameter
 *     gradients, optimizer moments, router probabilities, norms' statistics and losses are float32
 *     in every mode.
 * @param seed seeds the router jitter noise (used only when router_jitter_noise > 0)
 * @param residual the dtype of the residual stream between layers and of its gradient: F32 by
 *     default in every mode (as Megatron's fp32_residual_connection), so that the sum of all
 *     layers' contributions, and the gradient accumulated through them, are not rounded to bf16 at
 *     every layer; or the activation dtype, to save memory
 * @param frozen which base parameters (fused transformers-5 names) are frozen: stored once in the
 *     activation dtype, without master copy, gradient or optimizer state (see {@link Parameters})
 * @param lora LoRA adapters to train (every base parameter is then frozen), or null
 * @param recompute what the training forward keeps and the backward recomputes (see {@link
 *     Recompute}); null means {@link Recompute#NONE}
 */
public record ModelOptions(
    DType activations,
    long seed,
    DType residual,
    Predicate<String> frozen,
    LoraConfig lora,
    Recompute recompute) {
  /** Freezes nothing. */
  public static final Predicate<String> NONE_FROZEN = name -> false;

  public ModelOptions {
    if (frozen == null) {
      frozen = NONE_FROZEN;
    }
    if (recompute == null) {
      recompute = Recompute.NONE;
    }
    checkFloat("activations", activations);
    checkFloat("residual", residual);
  }

  /** As the canonical constructor without recomputation. */
  public ModelOptions(
      DType activations, long seed, DType residual, Predicate<String> frozen, LoraConfig lora) {
    this(activations, seed, residual, frozen, lora, Recompute.NONE);
  }

  /** The given dtypes and seed, nothing frozen, no adapters. */
  public ModelOptions(DType activations, long seed, DType residual) {
    this(activations, seed, residual, NONE_FROZEN, null);
  }

  /** The given activation dtype and seed, with a float32 residual stream. */
  public ModelOptions(DType activations, long seed) {
    this(activations, seed, DType.F32);
  }

  private static void checkFloat(String what, DType t) {
    if (t != DType.F32 && t != DType.BF16 && t != DType.F16) {
      throw new IllegalArgumentException(
          "ModelOptions: " + what + " must be a float dtype (fp32, bf16, fp16), got " + t);
    }
  }

  /** float32 everywhere, seed 0. */
  public static ModelOptions defaults() {
    return new ModelOptions(DType.F32, 0L);
  }

  /** These options with another activation dtype (the residual stream keeps its dtype). */
  public ModelOptions withActivations(DType dtype) {
    return new ModelOptions(dtype, seed, residual, frozen, lora, recompute);
  }

  /** These options with another residual-stream dtype. */
  public ModelOptions withResidual(DType dtype) {
    return new ModelOptions(activations, seed, dtype, frozen, lora, recompute);
  }

  /** These options with other frozen base parameters (by fused name). */
  public ModelOptions withFrozen(Predicate<String> which) {
    return new ModelOptions(activations, seed, residual, which, lora, recompute);
  }

  /** These options with LoRA adapters (null: none). */
  public ModelOptions withLora(LoraConfig config) {
    return new ModelOptions(activations, seed, residual, frozen, config, recompute);
  }

  /** These options with another recomputation mode. */
  public ModelOptions withRecompute(Recompute mode) {
    return new ModelOptions(activations, seed, residual, frozen, lora, mode);
  }
}
