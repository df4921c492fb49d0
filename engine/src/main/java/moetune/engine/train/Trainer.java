package moetune.engine.train;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import moetune.engine.backend.Communicator;
import moetune.engine.model.Batch;
import moetune.sequences.PackedSequence;

/**
 * The training loop, the same object behind {@code moetune train} and the GUI: construct it,
 * optionally {@link #resumeFrom} a checkpoint, call {@link #run} on a worker thread, and call
 * {@link #requestStop} from any thread to end the run at the next step boundary with a checkpoint.
 * Everything it does is reported to {@link TrainingListener}s.
 *
 * <p>Determinism: the data order is a function of (seed, step) ({@link DataOrder}), the learning
 * rate of the step ({@link LrSchedule}), and the model's state is saved whole; so on the CPU a
 * resumed run computes bit for bit what the uninterrupted run computes.
 *
 * <p>Loss scaling: each step's gradient is that of the mean cross-entropy over every labelled token
 * of the step (all micro-batches together, as transformers does with {@code num_items_in_batch}),
 * plus the aux loss (averaged over micro-batches with the same token weights) times its
 * coefficient.
 */
public final class Trainer {
  /** With {@link OnNonFinite#SKIP}, this many skipped steps in a row end the run as STOP does. */
  public static final int MAX_CONSECUTIVE_SKIPS = 10;

  private final TrainableModel model;
  private final SequenceSource train;
  private final SequenceSource eval; // null: no evaluation
  private final TrainOptions options;
  private final CheckpointStore checkpoints; // null: no checkpoints
  private final List<TrainingListener> listeners = new CopyOnWriteArrayList<>();
  private final DataOrder order;
  private final long totalSteps;
  private final LrSchedule schedule;

  private volatile boolean stopRequested;
  private Communicator dataParallel; // null: one device
  private long step;
  private EvalMetrics firstEval;
  private EvalMetrics lastEval;
  private Path lastCheckpoint;
  private long skippedSteps;
  private int consecutiveSkips;
  private String nonFinite; // the line that ended the run at a non-finite step, else null

  /**
   * @param checkpointDir where checkpoints go ({@code <out>/checkpoints}), or null for none
   */
  public Trainer(
      TrainableModel model,
      SequenceSource train,
      SequenceSource eval,
      TrainOptions options,
      Path checkpointDir) {
    this.model = model;
    this.train = train;
    this.eval = eval != null && eval.size() > 0 ? eval : null;
    this.options = options;
    this.checkpoints = checkpointDir == null ? null : new CheckpointStore(checkpointDir);
    this.order = new DataOrder(train.size(), options.seed(), options.shuffle());
    this.totalSteps = options.totalSteps(train.size());
    this.schedule =
        new LrSchedule(
            options.schedule(),
            options.optimizer().lr(),
            options.warmupSteps(),
            totalSteps,
            options.minLrRatio());
  }

  public void addListener(TrainingListener listener) {
    listeners.add(listener);
  }

  public void removeListener(TrainingListener listener) {
    listeners.remove(listener);
  }

  /**
   * Makes this trainer one rank of a data-parallel group (see docs/multi-gpu.md): every rank builds
   * the same global step of gradAccum micro-batches and runs forward and backward on micro-batches
   * a with a % size == rank (a disjoint, deterministic part of the data), with each weighted by its
   * share of the global step's labelled tokens, so the sum over ranks of their gradients is the
   * one-device gradient of the step; the model's optimizer sums them (it must be built with the
   * same communicator). Losses and stop requests are summed over ranks every step; only rank 0
   * writes checkpoints (the others join the collective part of the save). Call before {@link #run},
   * on every rank.
   */
  public void setDataParallel(Communicator comm) {
    if (comm != null && options.gradAccum() % comm.size() != 0) {
      throw new IllegalArgumentException(
          "--grad-accum "
              + options.gradAccum()
              + " is not a multiple of the "
              + comm.size()
              + " data-parallel ranks; each rank takes grad-accum / ranks micro-batches of a step,"
              + " so give a multiple of "
              + comm.size());
    }
    this.dataParallel = comm;
  }

  /** Asks the run to stop after the step in progress and write a checkpoint; any thread. */
  public void requestStop() {
    stopRequested = true;
  }

  public boolean isStopRequested() {
    return stopRequested;
  }

  /** Optimizer steps completed. */
  public long step() {
    return step;
  }

  public long totalSteps() {
    return totalSteps;
  }

  public LrSchedule schedule() {
    return schedule;
  }

  /**
   * Restores the model, optimizer and loop state from a checkpoint directory ({@code
   * step-NNNNNNNN}); the next {@link #run} continues where that run was.
   */
  public void resumeFrom(Path checkpoint) throws IOException {
    TrainerState s = TrainerState.read(checkpoint.resolve(CheckpointStore.COMPLETE_MARKER));
    if (s.trainSequences() != train.size()
        || s.sequencesPerStep() != options.sequencesPerStep()
        || s.seed() != options.seed()) {
      throw new IllegalArgumentException(
          checkpoint
              + ": this checkpoint was made with "
              + s.trainSequences()
              + " training sequences, "
              + s.sequencesPerStep()
              + " sequences per step and seed "
              + s.seed()
              + ", but the run now has "
              + train.size()
              + ", "
              + options.sequencesPerStep()
              + " and "
              + options.seed()
              + "; resume with the same datasets, max-length, micro-batch, grad-accum and seed");
    }
    model.load(checkpoint);
    step = s.step();
    skippedSteps = s.skippedSteps();
    firstEval = s.firstEval();
    lastEval = s.lastEval();
    lastCheckpoint = checkpoint;
    log("resumed from " + checkpoint + " at step " + step + " of " + totalSteps);
  }

  /**
   * Trains until the last step or a stop request. Blocks; call it on a worker thread from a GUI.
   */
  public RunSummary run() {
    try {
      return loop();
    } catch (RuntimeException | IOException e) {
      String msg = e.getMessage() == null ? e.toString() : e.getMessage();
      RunSummary summary =
          new RunSummary(
              RunSummary.Outcome.FAILED,
              step,
              lastCheckpoint,
              firstEval,
              lastEval,
              msg,
              skippedSteps);
      listeners.forEach(l -> l.onFinish(summary));
      if (e instanceof IOException io) {
        throw new UncheckedIOException(io);
      }
      throw (RuntimeException) e;
    }
  }

  private RunSummary loop() throws IOException {
    long tokensPerStep = options.sequencesPerStep() * train.sequenceLength();
    RunInfo info =
        new RunInfo(
            step,
            totalSteps,
            options.stepsPerEpoch(train.size()),
            train.size(),
            eval == null ? 0 : eval.size(),
            tokensPerStep,
            model.trainableParameters(),
            model.device());
    listeners.forEach(l -> l.onStart(info));
    if (eval != null && step == 0 && firstEval == null) {
      firstEval = evaluate();
    }
    long sessionStart = System.nanoTime();
    long sessionFirstStep = step;
    while (step < totalSteps) {
      if (stopNow()) {
        checkpoint(CheckpointEvent.Reason.STOP);
        return finish(RunSummary.Outcome.STOPPED, null);
      }
      long t0 = System.nanoTime();
      StepMetrics m = trainStep(t0, sessionStart, sessionFirstStep);
      listeners.forEach(l -> l.onStep(m));
      if (nonFinite != null) {
        // No checkpoint of this state: the latest one on disk stays the last good one.
        log(nonFinite);
        return finish(RunSummary.Outcome.FAILED, nonFinite);
      }
      boolean last = step == totalSteps;
      if (eval != null && (last || (options.evalEvery() > 0 && step % options.evalEvery() == 0))) {
        evaluate();
      }
      if (last) {
        checkpoint(CheckpointEvent.Reason.FINAL);
      } else if (options.checkpointEvery() > 0 && step % options.checkpointEvery() == 0) {
        checkpoint(CheckpointEvent.Reason.PERIODIC);
      }
    }
    return finish(RunSummary.Outcome.FINISHED, null);
  }

  /**
   * One optimizer step over gradAccum micro-batches; increments {@link #step}, except when a
   * non-finite step ends the run (then {@link #nonFinite} is set and the step is not counted).
   */
  private StepMetrics trainStep(long t0, long sessionStart, long sessionFirstStep) {
    double lr = schedule.lr(step);
    long cursor = step * options.sequencesPerStep();
    List<Batch> micro = new ArrayList<>(options.gradAccum());
    long stepTokens = 0;
    for (int a = 0; a < options.gradAccum(); a++) {
      List<PackedSequence> rows = new ArrayList<>(options.microBatch());
      for (int b = 0; b < options.microBatch(); b++) {
        rows.add(train.get(order.at(cursor++)));
      }
      Batch batch = Batch.of(rows);
      stepTokens += batch.labelledTokens();
      micro.add(batch);
    }
    model.zeroGrad();
    double lossSum = 0;
    double aux = 0;
    double z = 0;
    RouterStats routing = null;
    int ranks = dataParallel == null ? 1 : dataParallel.size();
    int rank = dataParallel == null ? 0 : dataParallel.rank();
    for (int a = 0; a < micro.size(); a++) {
      Batch batch = micro.get(a);
      if (a % ranks != rank) {
        continue; // another rank's micro-batch
      }
      // Each micro-batch's mean loss weighted by its share of the step's labelled tokens.
      double weight =
          stepTokens == 0 ? 1.0 / micro.size() : (double) batch.labelledTokens() / stepTokens;
      MicroStep r = model.forwardBackward(batch, weight, a + ranks >= micro.size());
      lossSum += r.lossSum();
      aux += weight * r.auxLoss();
      z += weight * r.zLoss();
      if (r.routing() != null) {
        if (routing == null) {
          routing = r.routing();
        } else {
          routing.add(r.routing());
        }
      }
    }
    if (dataParallel != null) {
      // routing statistics stay this rank's own (a sample of the step)
      double[] sums = {lossSum, aux, z};
      dataParallel.allReduceSum(sums);
      lossSum = sums[0];
      aux = sums[1];
      z = sums[2];
    }
    double loss = lossSum / Math.max(1, stepTokens);
    boolean finiteLoss = Double.isFinite(loss) && Double.isFinite(aux) && Double.isFinite(z);
    boolean skip = options.onNonFinite() == OnNonFinite.SKIP;
    double gradNorm;
    boolean bad;
    if (!finiteLoss || skip) {
      // Measure before stepping, so a bad step never reaches the weights or the moments.
      gradNorm = model.gradNorm();
      bad = !finiteLoss || !Double.isFinite(gradNorm);
      if (!bad) {
        gradNorm = model.step(lr);
      }
    } else {
      gradNorm = model.step(lr); // STOP: a non-finite norm here ends the run before any checkpoint
      bad = !Double.isFinite(gradNorm);
    }
    boolean skipped = false;
    if (bad) {
      String what =
          String.format(
              java.util.Locale.ROOT,
              "step %d: the loss is %s (aux %s, gradient norm %s)",
              step + 1,
              loss,
              aux,
              gradNorm);
      if (skip && consecutiveSkips + 1 < MAX_CONSECUTIVE_SKIPS) {
        skipped = true;
        skippedSteps++;
        consecutiveSkips++;
        log(what + "; step skipped (" + skippedSteps + " so far), the weights did not change");
      } else {
        nonFinite = nonFiniteLine(what, skip);
      }
    } else {
      consecutiveSkips = 0;
    }
    if (nonFinite == null) {
      step++;
    }
    // Routing sums the model kept on its device over this step's micro-batches: read once, after
    // the whole step is queued (and also for a skipped step, so they start afresh).
    RouterStats deferred = model.takeRouterStats();
    if (deferred != null) {
      if (routing == null) {
        routing = deferred;
      } else {
        routing.add(deferred);
      }
    }
    long now = System.nanoTime();
    double stepSeconds = (now - t0) / 1e9;
    double perStep = (now - sessionStart) / 1e9 / Math.max(1, step - sessionFirstStep);
    if (routing != null) {
      ExpertLoad load = routing.toExpertLoad(step);
      listeners.forEach(l -> l.onExpertLoad(load));
    }
    long epoch = order.epochOf(cursor - 1);
    return new StepMetrics(
        nonFinite == null ? step : step + 1,
        totalSteps,
        epoch,
        loss,
        aux,
        z,
        gradNorm,
        lr,
        stepTokens,
        options.sequencesPerStep() * train.sequenceLength() / stepSeconds,
        perStep * (totalSteps - step),
        skipped,
        skippedSteps);
  }

  /**
   * Whether to stop before the next step. Data parallel: every rank stops at the same step if any
   * rank was asked to (a signal usually reaches only one), so the flag is summed over the ranks.
   */
  private boolean stopNow() {
    if (dataParallel == null) {
      return stopRequested;
    }
    double[] asked = {stopRequested ? 1 : 0};
    dataParallel.allReduceSum(asked);
    return asked[0] > 0;
  }

  /** The one line that ends a run at a non-finite step. */
  private String nonFiniteLine(String what, boolean skip) {
    return what
        + (skip ? " for the " + MAX_CONSECUTIVE_SKIPS + "th step in a row" : "")
        + "; the run stopped and wrote no checkpoint of it; "
        + (lastCheckpoint == null
            ? "no checkpoint was written before it"
            : "the last good checkpoint is " + lastCheckpoint)
        + "; lower --lr, check the model and data for NaN or huge values"
        + (skip ? "" : ", or pass --on-nonfinite skip to skip such steps");
  }

  /** Mean cross-entropy over every labelled token of the eval split. */
  private EvalMetrics evaluate() {
    EvalMetrics m = Evaluation.run(eval, options.microBatch(), model::evalLossSum, step);
    lastEval = m;
    listeners.forEach(l -> l.onEval(m));
    return m;
  }

  private void checkpoint(CheckpointEvent.Reason reason) throws IOException {
    if (checkpoints == null) {
      return;
    }
    if (dataParallel != null && dataParallel.rank() != 0) {
      model.joinSave(); // rank 0 writes
      return;
    }
    long t0 = System.nanoTime();
    TrainerState state =
        new TrainerState(
            step,
            totalSteps,
            options.seed(),
            train.size(),
            options.sequencesPerStep(),
            step * options.sequencesPerStep(),
            firstEval,
            lastEval,
            skippedSteps);
    Path dir =
        checkpoints.save(
            step,
            tmp -> {
              model.save(tmp);
              state.write(tmp.resolve(CheckpointStore.COMPLETE_MARKER));
            },
            options.keepLast());
    lastCheckpoint = dir;
    CheckpointEvent e = new CheckpointEvent(step, dir, reason, (System.nanoTime() - t0) / 1e9);
    listeners.forEach(l -> l.onCheckpoint(e));
  }

  private RunSummary finish(RunSummary.Outcome outcome, String error) {
    RunSummary s =
        new RunSummary(outcome, step, lastCheckpoint, firstEval, lastEval, error, skippedSteps);
    listeners.forEach(l -> l.onFinish(s));
    return s;
  }

  private void log(String line) {
    listeners.forEach(l -> l.onLog(line));
  }

  /**
   * The checkpoint to resume from, given an output directory ({@code <dir>/checkpoints}), a
   * checkpoints directory, or one checkpoint ({@code step-NNNNNNNN}).
   */
  public static Path findCheckpoint(Path dir) throws IOException {
    if (CheckpointStore.isComplete(dir)) {
      return dir;
    }
    for (Path root : List.of(dir.resolve("checkpoints"), dir)) {
      if (Files.isDirectory(root)) {
        var latest = new CheckpointStore(root).latest();
        if (latest.isPresent()) {
          return latest.get();
        }
      }
    }
    throw new IllegalArgumentException(
        "--resume "
            + dir
            + ": no complete checkpoint there (looked for "
            + dir
            + "/checkpoints/latest, "
            + dir
            + "/latest and "
            + dir
            + "/"
            + CheckpointStore.COMPLETE_MARKER
            + "); give the output directory of a run");
  }
}
