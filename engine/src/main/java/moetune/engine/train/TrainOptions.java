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

  public TrainOptions {
    if (optimizer == null || schedule == null || freeze == null) {
      throw new IllegalArgumentException(
          "TrainOptions: optimizer, schedule and freeze are required");
    }
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

  /**
   * Options built by name, starting from everything off: one sequence per step, one epoch, a
   * constant learning rate, no clipping, no auxiliary losses, nothing frozen, no evals or
   * checkpoints between the first and the last, all checkpoints kept, seed 0, no shuffling, stop at
   * a non-finite step, no activation recomputation. The run config sets every field from its own
   * defaults.
   */
  public static Builder builder(AdamWOptions optimizer) {
    return new Builder().optimizer(optimizer);
  }

  /** A builder holding these options, to change some of them. */
  public Builder toBuilder() {
    Builder b = new Builder();
    b.microBatch = microBatch;
    b.gradAccum = gradAccum;
    b.epochs = epochs;
    b.maxSteps = maxSteps;
    b.optimizer = optimizer;
    b.schedule = schedule;
    b.warmupSteps = warmupSteps;
    b.minLrRatio = minLrRatio;
    b.clipNorm = clipNorm;
    b.auxLossCoef = auxLossCoef;
    b.routerZLossCoef = routerZLossCoef;
    b.freeze = freeze;
    b.evalEvery = evalEvery;
    b.checkpointEvery = checkpointEvery;
    b.keepLast = keepLast;
    b.seed = seed;
    b.shuffle = shuffle;
    b.onNonFinite = onNonFinite;
    b.recompute = recompute;
    return b;
  }

  /** These options with another non-finite policy. */
  public TrainOptions withOnNonFinite(OnNonFinite policy) {
    return toBuilder().onNonFinite(policy).build();
  }

  /** These options with another activation recomputation mode. */
  public TrainOptions withRecompute(Recompute mode) {
    return toBuilder().recompute(mode).build();
  }

  /** Named setters for {@link TrainOptions}; {@link #build} checks the whole. */
  public static final class Builder {
    private int microBatch = 1;
    private int gradAccum = 1;
    private int epochs = 1;
    private long maxSteps = 0;
    private AdamWOptions optimizer;
    private LrSchedule.Kind schedule = LrSchedule.Kind.CONSTANT;
    private long warmupSteps = 0;
    private double minLrRatio = 0;
    private double clipNorm = 0;
    private double auxLossCoef = 0;
    private double routerZLossCoef = 0;
    private FreezeSpec freeze = FreezeSpec.NONE;
    private long evalEvery = 0;
    private long checkpointEvery = 0;
    private int keepLast = 0;
    private long seed = 0;
    private boolean shuffle = false;
    private OnNonFinite onNonFinite = OnNonFinite.STOP;
    private Recompute recompute = Recompute.NONE;

    private Builder() {}

    public Builder microBatch(int v) {
      this.microBatch = v;
      return this;
    }

    public Builder gradAccum(int v) {
      this.gradAccum = v;
      return this;
    }

    public Builder epochs(int v) {
      this.epochs = v;
      return this;
    }

    public Builder maxSteps(long v) {
      this.maxSteps = v;
      return this;
    }

    public Builder optimizer(AdamWOptions v) {
      this.optimizer = v;
      return this;
    }

    public Builder schedule(LrSchedule.Kind v) {
      this.schedule = v;
      return this;
    }

    public Builder warmupSteps(long v) {
      this.warmupSteps = v;
      return this;
    }

    public Builder minLrRatio(double v) {
      this.minLrRatio = v;
      return this;
    }

    public Builder clipNorm(double v) {
      this.clipNorm = v;
      return this;
    }

    public Builder auxLossCoef(double v) {
      this.auxLossCoef = v;
      return this;
    }

    public Builder routerZLossCoef(double v) {
      this.routerZLossCoef = v;
      return this;
    }

    public Builder freeze(FreezeSpec v) {
      this.freeze = v;
      return this;
    }

    public Builder evalEvery(long v) {
      this.evalEvery = v;
      return this;
    }

    public Builder checkpointEvery(long v) {
      this.checkpointEvery = v;
      return this;
    }

    public Builder keepLast(int v) {
      this.keepLast = v;
      return this;
    }

    public Builder seed(long v) {
      this.seed = v;
      return this;
    }

    public Builder shuffle(boolean v) {
      this.shuffle = v;
      return this;
    }

    public Builder onNonFinite(OnNonFinite v) {
      this.onNonFinite = v;
      return this;
    }

    public Builder recompute(Recompute v) {
      this.recompute = v;
      return this;
    }

    public TrainOptions build() {
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
          recompute);
    }
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
