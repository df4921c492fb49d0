package moetune.engine.optim;

import java.util.Map;
import moetune.engine.tensor.HostTensor;

/**
 * What the trainer needs of an optimizer over a model's flat parameters: {@link AdamW} on one
 * device, {@code moetune.engine.optim.ShardedAdamW} with its state sharded over data-parallel
 * ranks. Both save the same checkpoint state (full moments by hub name), so a run resumes under
 * either.
 */
public interface Optimizer extends AutoCloseable {

  /** One step at learning rate lr: measure the global gradient norm, clip, update. */
  void step(float lr);

  /** The global L2 norm of the gradients as they are now, without stepping. */
  float measureGradNorm();

  /** The global L2 norm of the gradients at the last step, before clipping. */
  float lastGradNorm();

  /** Steps taken so far. */
  int stepCount();

  /** The moments by checkpoint name ({@code exp_avg.<hub name>}, {@code exp_avg_sq.<hub name>}). */
  Map<String, HostTensor> stateToHost();

  /** Restores what {@link #stateToHost} gave, and the step count. */
  void loadState(Map<String, HostTensor> state, int stepCount);

  /** Called when the model's gradients were zeroed (a new step's accumulation begins). */
  default void gradientsZeroed() {}

  @Override
  void close();
}
