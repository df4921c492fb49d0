package moetune.engine.train;

import moetune.engine.model.Recompute;

/**
 * What the engine needs to know to train: batch shape, length of the run, optimizer, schedule,
 * losses, evaluation and checkpointing. The app's run config (which also names the model, datasets,
 * device and output directory) produces one; the GUI can build one directly.
 *
 * @param microBatch B, sequences per forward/backward
 * @param gradAccum micro-batches per optimizer step
 * @param epochs passes over the training sequences (used when maxSteps is 0)
 * @param maxSteps optimizer steps in all; 0 means epochs * steps per epoch
 * @param optimizer AdamW settings
 * @param schedule shape of the learning rate; its total steps are filled in by the trainer
 * @param warmupSteps linear warmup steps
 * @param minLrRatio the schedule's floor as a fraction of the peak
 * @param clipNorm global gradient-norm clip, 0 for none
 * @param auxLossCoef router load-balancing loss coefficient
 * @param routerZLossCoef router z-loss coefficient (ST-MoE; 0: off)
 * @param freeze parameters that get no updates
 * @param evalEvery evaluate every N steps (and before the first and after the last); 0: only before
 *     and after
 * @param checkpointEvery checkpoint every N steps (and at the end); 0: only at the end or on stop
 * @param keepLast checkpoints kept on disk, 0 keeps all
 * @param seed seeds the data order (and a new model's initial weights)
 * @param shuffle whether each epoch visits the sequences in a fresh random order
 * @param onNonFinite what a step with a NaN or infinite loss or gradient norm does
 * @param recompute activation recomputation in the backward ({@link Recompute}; null: none)
 */
public record TrainOptions(
    int microBatch,
    int gradAccum,
    int epochs,
    long maxSteps,
    AdamWOptions optimizer,
    LrSchedule.Kind schedule,
    long warmupSteps,
    double minLrRatio,
    double clipNorm,
    double auxLossCoef,
    double routerZLossCoef,
    FreezeSpec freeze,
    long evalEvery,
    long checkpointEvery,
    int keepLast,
    long seed,
    boolean shuffle,
    OnNonFinite onNonFinite,
    Recompute recompute) {

  /** Options without activation recomputation. */
  public TrainOptions(
      int microBatch,
      int gradAccum,
      int epochs,
      long maxSteps,
      AdamWOptions optimizer,
      LrSchedule.Kind schedule,
      long warmupSteps,
      double minLrRatio,
      double clipNorm,
      double auxLossCoef,
      double routerZLossCoef,
      FreezeSpec freeze,
      long evalEvery,
      long checkpointEvery,
      int keepLast,
      long seed,
      boolean shuffle,
      OnNonFinite onNonFinite) {
    this(
        microBatch,
        gradAccum,
        epochs,
        maxSteps,
        optimizer,
        schedule,
        warmupSteps,
        minLrRatio,
        clipNorm,
        auxLossCoef,
        routerZLossCoef,
        freeze,
        evalEvery,
        checkpointEvery,
        keepLast,
        seed,
        shuffle,
        onNonFinite,
        Recompute.NONE);
  }

  /** Options that stop the run at a non-finite step (the default). */
  public TrainOptions(
      int microBatch,
      int gradAccum,
      int epochs,
      long maxSteps,
      AdamWOptions optimizer,
      LrSchedule.Kind schedule,
      long warmupSteps,
      double minLrRatio,
      double clipNorm,
      double auxLossCoef,
      double routerZLossCoef,
      FreezeSpec freeze,
      long evalEvery,
      long checkpointEvery,
      int keepLast,
      long seed,
      boolean shuffle) {
    this(
        microBatch,
        gradAccum,
        epochs,
        maxSteps,
        optimizer,
        schedule,
        warmupSteps,
        minLrRatio,
        clipNorm,
        auxLossCoef,
        routerZLossCoef,
        freeze,
        evalEvery,
        checkpointEvery,
        keepLast,
        seed,
        shuffle,
        OnNonFinite.STOP);
  }

  public TrainOptions {
    if (recompute == null) {
      recompute = Recompute.NONE;
    }
    if (onNonFinite == null) {
      throw new IllegalArgumentException("TrainOptions: onNonFinite must be STOP or SKIP");
    }
    if (microBatch < 1
        || gradAccum < 1
        || epochs < 0
        || maxSteps < 0
        || (epochs == 0 && maxSteps == 0)) {
      throw new IllegalArgumentException(
          "TrainOptions: need micro-batch >= 1, accumulation >= 1 and epochs or max steps > 0");
    }
    if (!(routerZLossCoef >= 0) || Double.isInfinite(routerZLossCoef)) {
      throw new IllegalArgumentException(
          "TrainOptions: the router z-loss coefficient must be finite and >= 0, got "
              + routerZLossCoef);
    }
  }

  /** These options with another non-finite policy. */
  public TrainOptions withOnNonFinite(OnNonFinite policy) {
    return new TrainOptions(
        microBatch,
        gradAccum,
        epochs,
        maxSteps,
        optimizer,
        schedule,
        warmupSteps,
        minLrRatio,
        clipNorm,
        auxLossCoef,
        routerZLossCoef,
        freeze,
        evalEvery,
        checkpointEvery,
        keepLast,
        seed,
        shuffle,
        policy,
        recompute);
  }

  /** These options with another activation recomputation mode. */
  public TrainOptions withRecompute(Recompute mode) {
    return new TrainOptions(
        microBatch,
        gradAccum,
        epochs,
        maxSteps,
        optimizer,
        schedule,
        warmupSteps,
        minLrRatio,
        clipNorm,
        auxLossCoef,
        routerZLossCoef,
        freeze,
        evalEvery,
        checkpointEvery,
        keepLast,
        seed,
        shuffle,
        onNonFinite,
        mode);
  }

  /** Sequences consumed per optimizer step. */
  public long sequencesPerStep() {
    return (long) microBatch * gradAccum;
  }

  /**
   * Optimizer steps per epoch over n sequences (the last, partial step wraps into the next epoch).
   */
  public long stepsPerEpoch(int n) {
    return Math.max(1, (n + sequencesPerStep() - 1) / sequencesPerStep());
  }

  /** Steps the run takes over n training sequences. */
  public long totalSteps(int n) {
    return maxSteps > 0 ? maxSteps : epochs * stepsPerEpoch(n);
  }
}
