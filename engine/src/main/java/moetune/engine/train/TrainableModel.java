package moetune.engine.train;

import java.io.IOException;
import java.nio.file.Path;
import moetune.engine.model.Batch;

/**
 * A model with its gradients and optimizer, as the {@link Trainer} drives it. {@link
 * MixtralTrainable} is the real one; tests use small stand-ins to check the loop itself.
 *
 * <p>A step is: {@link #zeroGrad}, {@link #forwardBackward} for each micro-batch (gradients
 * accumulate), {@link #step}. All of it must be deterministic on the CPU: the same calls in the
 * same order give bit-identical weights.
 */
public interface TrainableModel extends AutoCloseable {

  /** Number of trainable (not frozen) parameter elements. */
  long trainableParameters();

  /** The backend's one-line description. */
  String device();

  /** Sets every gradient to zero. */
  void zeroGrad();

  /**
   * Forward and backward of one micro-batch; parameter gradients accumulate ({@code +=}). The
   * gradient taken is that of {@code weight * (mean cross-entropy over the batch's labelled tokens
   * + aux coefficient * aux loss)}; the trainer passes the batch's share of the step's labelled
   * tokens, so a step's gradient is that of the mean over all of its tokens.
   *
   * @return the batch's loss sums and routing statistics
   */
  MicroStep forwardBackward(Batch batch, double weight);

  /**
   * As {@link #forwardBackward(Batch, double)}; {@code lastOfStep} says no further micro-batch of
   * this step runs on this process, so gradients that this backward finishes are final and a
   * data-parallel optimizer may start reducing them while the backward goes on.
   */
  default MicroStep forwardBackward(Batch batch, double weight, boolean lastOfStep) {
    return forwardBackward(batch, weight);
  }

  /** Sum of token cross-entropies over the batch's labelled tokens, without gradients. */
  double evalLossSum(Batch batch);

  /**
   * The global L2 norm of the accumulated gradients of the trainable parameters, measured without
   * changing them (the trainer asks before {@link #step} when it may skip a bad step).
   */
  double gradNorm();

  /**
   * Clips the accumulated gradients to the configured global norm and takes one AdamW step at this
   * learning rate on every trainable parameter.
   *
   * @return the global gradient norm before clipping
   */
  double step(double lr);

  /**
   * Routing statistics a model accumulated on its device over the micro-batches since the last
   * call, read once per step after {@link #step} (so nothing is downloaded inside the step), then
   * reset; or null when the model reports routing per micro-batch in {@link MicroStep#routing()} or
   * has no router.
   */
  default RouterStats takeRouterStats() {
    return null;
  }

  /** Writes weights and optimizer state (moments, step count) into an empty directory. */
  void save(Path dir) throws IOException;

  /**
   * The collective part of {@link #save} on a data-parallel rank that does not write (every rank
   * but 0): it must be called where rank 0 calls save. Nothing to do on one device.
   */
  default void joinSave() {}

  /** Restores exactly what {@link #save} wrote (into a model of the same shape). */
  void load(Path dir) throws IOException;

  @Override
  void close();
}
