package moetune.engine.train;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A model with its gradients and optimizer, as the {@link Trainer} drives it. {@link
 * MixtralTrainable} is the real one; tests use small stand-ins to check the loop itself.
 *
 * <p>A step is: {@link #zeroGrad}, {@link #forwardBackward} for each micro-batch (gradients
 * accumulate), {@link #clipGradients}, {@link #optimizerStep}. All of it must be deterministic on
 * the CPU: the same calls in the same order give bit-identical weights.
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
   * gradient taken is that of {@code ceScale * sum of token cross-entropies + auxScale * aux loss
   * + zScale * z loss}; the trainer picks the scales so a step's gradient is that of its mean
   * loss.
   *
   * @return the unscaled sums and the routing statistics of the batch
   */
  MicroStep forwardBackward(Batch batch, double ceScale, double auxScale, double zScale);

  /** Sum of token cross-entropies over the batch's labelled tokens, without gradients. */
  double evalLossSum(Batch batch);

  /** The global gradient norm (before clipping); scales gradients to maxNorm if above (> 0). */
  double clipGradients(double maxNorm);

  /** One AdamW step at this learning rate on every trainable parameter. */
  void optimizerStep(double lr);

  /** Writes weights and optimizer state (moments, step count) into an empty directory. */
  void save(Path dir) throws IOException;

  /** Restores exactly what {@link #save} wrote (into a model of the same shape). */
  void load(Path dir) throws IOException;

  @Override
  void close();
}
