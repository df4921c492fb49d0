package moetune.engine.train;

/**
 * What the trainer does when a step's loss or gradient norm is NaN or infinite.
 *
 * <ul>
 *   <li>{@link #STOP}: the run ends at that step with outcome FAILED and a line naming the step; no
 *       checkpoint is written after the bad step, so the latest checkpoint on disk is the last good
 *       one (pruning never removes it).
 *   <li>{@link #SKIP}: the step's gradients are dropped and the optimizer does not move; the data
 *       and learning-rate schedule move on. Skipped steps are counted in the metrics; after {@link
 *       Trainer#MAX_CONSECUTIVE_SKIPS} skipped steps in a row the run stops as with STOP, because a
 *       model that gives non-finite numbers on every batch will not recover.
 * </ul>
 */
public enum OnNonFinite {
  STOP,
  SKIP
}
