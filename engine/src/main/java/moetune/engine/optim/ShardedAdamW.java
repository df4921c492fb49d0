package moetune.engine.optim;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import moetune.engine.backend.AdamWCoefficients;
import moetune.engine.backend.Backend;
import moetune.engine.backend.Communicator;
import moetune.engine.dist.ZeroPartition;
import moetune.engine.model.Parameters;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * {@link AdamW} with its moments sharded over data-parallel ranks (ZeRO stage 1): each rank keeps
 * the first and second moments of its {@link ZeroPartition} shard only, so optimizer memory is 1/N
 * of one device's.
 *
 * <p>A step: the ranks' accumulated gradients are reduce-scattered bucket by bucket into the
 * shard's gradient (the sum over ranks; the trainer weights every micro-batch by its share of the
 * global step's labelled tokens, so the sum is the global gradient); the squared norm of the shard
 * is all-reduced to the global norm; the shard is clipped and stepped with the same {@link
 * Backend#adamwStep} as one device; the updated master weights are all-gathered back to every rank
 * (and the low-precision working copy refreshed from them).
 *
 * <p>What differs from one device: the gradient sum and the squared norm are added in another order
 * (ranks' partial sums, then across ranks), so results agree with one device to float32 rounding,
 * not bit for bit. Not sharded yet: the float32 master weights and the gradients (ZeRO stage 2)
 * stay whole on every rank.
 *
 * <p>Checkpoints hold the whole moments (gathered, in {@link AdamW}'s names), so a run saved on N
 * ranks resumes on M ranks or on one.
 */
public final class ShardedAdamW implements Optimizer {

  /** Elements per rank per bucket (16 MiB of float32 per rank, NCCL's sweet spot and then some). */
  public static final long DEFAULT_CHUNK = 4L << 20;

  private final Parameters params;
  private final Backend be;
  private final Communicator comm;
  private final ZeroPartition part;
  private final List<DecayRun> runs;
  private final Tensor g; // F32 (S) this rank's shard of the summed gradient
  private final Tensor m; // F32 (S) first moment of the shard
  private final Tensor v; // F32 (S) second moment of the shard
  private final Tensor staging; // F32 (padded last bucket) or null
  private final long replicated; // flat elements [0, replicated) are ZeRO-partitioned
  private final long own; // flat elements [replicated, P): this rank's experts, stepped here
  private final Tensor ownM; // F32 (own) first moment of this rank's experts, or null
  private final Tensor ownV; // F32 (own) second moment, or null
  private final Tensor sumSq; // F32 (1) global squared grad norm
  private AdamW.Settings settings;
  private int step;
  private boolean reduced; // g holds this step's reduced gradient
  private final List<ZeroPartition.Bucket> buckets;
  private final long[] bucketReady; // this step: elements of bucket b whose gradients are final
  private final boolean[] bucketReduced; // this step: bucket b is reduce-scattered into g
  private long reducedDuringBackward; // buckets reduced by gradientsDone, over the run (evidence)

  public ShardedAdamW(
      Parameters params,
      AdamW.Settings settings,
      Predicate<Parameters.Slice> decay,
      Communicator comm,
      long chunk) {
    this.params = params;
    this.be = params.masterFlat().backend();
    this.comm = comm;
    this.settings = settings;
    this.replicated = params.replicatedCount();
    this.own = params.count() - replicated;
    if (own > 0 && params.expertShard().ranks() != comm.size()) {
      throw new IllegalArgumentException(
          "the model's experts are split over "
              + params.expertShard().ranks()
              + " ranks but the data-parallel group has "
              + comm.size()
              + "; expert parallel needs --expert-parallel equal to the number of ranks");
    }
    this.part = new ZeroPartition(replicated, comm.size(), comm.rank(), chunk);
    this.runs = DecayRun.of(params, decay);
    long n = Math.max(1, part.shardSize());
    this.g = be.zeros(DType.F32, n);
    this.m = be.zeros(DType.F32, n);
    this.v = be.zeros(DType.F32, n);
    long st = part.stagingSize();
    this.staging = st == 0 ? null : be.zeros(DType.F32, st);
    this.ownM = own == 0 ? null : be.zeros(DType.F32, own);
    this.ownV = own == 0 ? null : be.zeros(DType.F32, own);
    this.sumSq = be.zeros(DType.F32, 1);
    this.buckets = part.buckets();
    this.bucketReady = new long[buckets.size()];
    this.bucketReduced = new boolean[buckets.size()];
  }

  public ZeroPartition partition() {
    return part;
  }

  public AdamW.Settings settings() {
    return settings;
  }

  public void setSettings(AdamW.Settings s) {
    this.settings = s;
  }

  @Override
  public int stepCount() {
    return step;
  }

  @Override
  public void gradientsZeroed() {
    reduced = false;
    java.util.Arrays.fill(bucketReady, 0);
    java.util.Arrays.fill(bucketReduced, false);
  }

  /**
   * The gradients of flat elements [offset, offset + numel) are final for this step (the rank's
   * last backward of the step has produced them): every bucket this completes is reduce-scattered
   * now, while the backward goes on, instead of all of them in {@link #step}. Every rank must
   * report the same ranges in the same order (the same model and the same backward do), so the
   * ranks' calls of the collectives match. Each element at most once per step.
   *
   * <p>With NCCL the reduce-scatter runs on the communicator's side stream after an event on the
   * compute stream, beside the rest of the backward ({@link Communicator#reduceScatterSumAsync});
   * the step waits for it before it reads the shard. The result is the same bits either way: the
   * same sums of the same gradients, only sooner.
   */
  public void gradientsDone(long offset, long numel) {
    long end = offset + numel;
    for (int i = 0; i < buckets.size(); i++) {
      ZeroPartition.Bucket b = buckets.get(i);
      long a = Math.max(offset, b.start()), e = Math.min(end, b.start() + b.length());
      if (a >= e) {
        continue;
      }
      bucketReady[i] += e - a;
      if (bucketReady[i] > b.length()) {
        throw new IllegalStateException(
            "ShardedAdamW.gradientsDone: elements of bucket " + i + " reported twice this step");
      }
      if (bucketReady[i] == b.length() && !bucketReduced[i]) {
        reduceBucket(b, params.gradRange(b.start(), b.length()));
        bucketReduced[i] = true;
        reducedDuringBackward++;
      }
    }
  }

  /** Buckets reduce-scattered by {@link #gradientsDone} (during backwards), over the run. */
  public long reducedDuringBackward() {
    return reducedDuringBackward;
  }

  @Override
  public void step(float lr) {
    reduce();
    Tensor ownGrad = own == 0 ? null : params.gradRange(replicated, own);
    if (settings.maxGradNorm() > 0) {
      be.clipByNorm(g, sumSq, settings.maxGradNorm());
      if (ownGrad != null) {
        be.clipByNorm(ownGrad, sumSq, settings.maxGradNorm());
      }
    }
    step++;
    Tensor master = params.masterFlat();
    AdamWCoefficients decayed = AdamW.coefficients(settings, lr, true, step);
    AdamWCoefficients undecayed = AdamW.coefficients(settings, lr, false, step);
    // bucket by bucket: the all-gather of a stepped bucket runs while the next one is stepped
    for (ZeroPartition.Bucket b : part.buckets()) {
      long own0 = b.ownStart(), own1 = b.ownStart() + b.ownLength();
      for (DecayRun r : runs) {
        long a = Math.max(own0, r.offset()), e = Math.min(own1, r.offset() + r.numel());
        if (a >= e) {
          continue;
        }
        long at = b.shardOffset() + (a - own0);
        be.adamwStep(
            master.view(a, e - a),
            g.view(at, e - a),
            m.view(at, e - a),
            v.view(at, e - a),
            r.decay() ? decayed : undecayed,
            null);
      }
      gatherBucket(master, b);
    }
    for (DecayRun r : runs) { // this rank's own experts: no other rank has their gradients or state
      long a = Math.max(replicated, r.offset()), e = r.offset() + r.numel();
      if (a >= e) {
        continue;
      }
      long at = a - replicated;
      be.adamwStep(
          master.view(a, e - a),
          ownGrad.view(at, e - a),
          ownM.view(at, e - a),
          ownV.view(at, e - a),
          r.decay() ? decayed : undecayed,
          null);
    }
    finishGather(master);
    if (params.hasWorkingCopy()) {
      params.syncWorkingCopy();
    }
    reduced = false; // the next step must reduce its own gradients
    java.util.Arrays.fill(bucketReady, 0);
    java.util.Arrays.fill(bucketReduced, false);
  }

  @Override
  public float measureGradNorm() {
    reduce();
    return lastGradNorm();
  }

  @Override
  public float lastGradNorm() {
    return (float) Math.sqrt(be.download(sumSq).toFloatArray()[0]);
  }

  /** Reduce-scatters the accumulated gradients into g and the global squared norm into sumSq. */
  private void reduce() {
    if (reduced) {
      return;
    }
    for (int i = 0; i < buckets.size(); i++) {
      if (!bucketReduced[i]) { // the rest, in flat order (the same on every rank)
        ZeroPartition.Bucket b = buckets.get(i);
        reduceBucket(b, params.gradRange(b.start(), b.length()));
        bucketReduced[i] = true;
      }
    }
    comm.awaitCollectives(); // g holds every bucket's sum from here on
    be.fill(sumSq, 0f);
    be.sumSquares(g, sumSq); // padding is zero: it adds nothing
    if (own > 0) {
      be.sumSquares(params.gradRange(replicated, own), sumSq); // this rank's experts
    }
    comm.allReduceSum(sumSq);
    reduced = true;
  }

  /**
   * The sum over ranks of one bucket of the gradients ({@code bucketGrad}, its view of the flat
   * gradients), this rank's chunk into g: queued (on NCCL's side stream, beside the rest of the
   * backward); g is read only after {@link Communicator#awaitCollectives}, and the bucket's
   * gradients are final, so nothing writes them meanwhile. The padded bucket goes through the
   * staging buffer, which nothing else uses until the step has awaited it.
   */
  private void reduceBucket(ZeroPartition.Bucket b, Tensor bucketGrad) {
    int w = comm.size();
    Tensor out = g.view(b.shardOffset(), b.chunk());
    if (!b.padded(w)) {
      comm.reduceScatterSumAsync(bucketGrad, out);
    } else {
      Tensor s = staging.view(0, b.chunk() * w);
      be.fill(s, 0f);
      be.copy(bucketGrad, staging.view(0, b.length()));
      comm.reduceScatterSumAsync(s, out);
    }
  }

  /** Every rank's chunks of x (F32, the flat layout) to every rank. */
  private void gather(Tensor x) {
    for (ZeroPartition.Bucket b : part.buckets()) {
      gatherBucket(x, b);
    }
    finishGather(x);
  }

  /**
   * Queues the all-gather of every rank's chunk of one bucket of x; {@link #finishGather} waits for
   * it. The padded bucket (the last) gathers into the staging buffer.
   */
  private void gatherBucket(Tensor x, ZeroPartition.Bucket b) {
    int w = comm.size();
    if (!b.padded(w)) {
      Tensor bucket = x.view(b.start(), b.length());
      comm.allGatherAsync(x.view(b.ownStart(), b.chunk()), bucket); // in place
    } else {
      Tensor s = staging.view(0, b.chunk() * w);
      be.fill(s, 0f);
      if (b.ownLength() > 0) {
        be.copy(
            x.view(b.ownStart(), b.ownLength()),
            staging.view(comm.rank() * b.chunk(), b.ownLength()));
      }
      comm.allGatherAsync(staging.view(comm.rank() * b.chunk(), b.chunk()), s);
    }
  }

  /** Waits for the queued all-gathers; the padded bucket from the staging buffer into x. */
  private void finishGather(Tensor x) {
    comm.awaitCollectives();
    int w = comm.size();
    for (ZeroPartition.Bucket b : part.buckets()) {
      if (b.padded(w)) {
        be.copy(staging.view(0, b.length()), x.view(b.start(), b.length()));
      }
    }
  }

  /** A whole moment (F32, the flat layout), gathered from the shards (a collective). */
  private Tensor gatherMoment(Tensor shard) {
    Tensor full = be.zeros(DType.F32, Math.max(1, params.count()));
    for (ZeroPartition.Bucket b : part.buckets()) {
      if (b.ownLength() > 0) {
        be.copy(shard.view(b.shardOffset(), b.ownLength()), full.view(b.ownStart(), b.ownLength()));
      }
    }
    gather(full);
    return full;
  }

  /**
   * The whole moments by checkpoint name, as {@link AdamW#stateToHost()} names them. A collective:
   * every rank must call it (rank 0 writes the result).
   */
  @Override
  public Map<String, HostTensor> stateToHost() {
    Map<String, HostTensor> out;
    try (Tensor fm = gatherMoment(m);
        Tensor fv = gatherMoment(v)) {
      out = AdamW.momentsToHost(be, params, fm, fv);
    }
    if (own == 0) {
      return out;
    }
    // every rank's experts, gathered expert by expert (in the one-device names and order)
    Map<String, HostTensor> experts = new java.util.LinkedHashMap<>();
    boolean keep = comm.rank() == 0;
    for (Parameters.Slice fused : params.expertSlices()) {
      if (fused.frozen()) {
        continue;
      }
      long at = fused.offset() - replicated;
      for (boolean first : new boolean[] {true, false}) {
        Tensor local = (first ? ownM : ownV).view(at, fused.shape());
        String kind = first ? "exp_avg." : "exp_avg_sq.";
        moetune.engine.model.ExpertGather.expertBlocks(comm, params, fused, local, keep)
            .forEach((name, t) -> experts.put(kind + name, t));
      }
    }
    if (!keep) {
      return out;
    }
    Map<String, HostTensor> ordered = new java.util.LinkedHashMap<>();
    for (String name : params.trainableNames()) {
      for (String kind : new String[] {"exp_avg.", "exp_avg_sq."}) {
        HostTensor t =
            out.containsKey(kind + name) ? out.get(kind + name) : experts.get(kind + name);
        if (t == null) {
          throw new IllegalStateException("no gathered moment for " + kind + name);
        }
        ordered.put(kind + name, t);
      }
    }
    return ordered;
  }

  /** Whether this rank steps experts of its own (expert parallel with the experts split). */
  public boolean splitExperts() {
    return own > 0;
  }

  /**
   * {@link #stateToHost} without the split experts' moments: the whole moments of the replicated
   * parameters, gathered (a collective: every rank calls it). With {@link #expertMoments} rank 0
   * writes the optimizer state without every expert's moments in its memory at once.
   */
  public Map<String, HostTensor> replicatedStateToHost() {
    try (Tensor fm = gatherMoment(m);
        Tensor fv = gatherMoment(v)) {
      return AdamW.momentsToHost(be, params, fm, fv);
    }
  }

  /** The names of the optimizer state in {@link #stateToHost}'s order (a checkpoint's). */
  public List<String> stateNames() {
    List<String> out = new ArrayList<>();
    for (String name : params.trainableNames()) {
      out.add("exp_avg." + name);
      out.add("exp_avg_sq." + name);
    }
    return out;
  }

  /**
   * The split experts' moments on their way to rank 0's writer, one hub tensor at a time in {@code
   * order} ({@code exp_avg.} / {@code exp_avg_sq.} + hub name; the others are skipped): rank 0
   * calls next for each as it writes, the other ranks serve. The caller closes it.
   */
  public moetune.engine.model.ExpertStream expertMoments(Iterable<String> order) {
    java.util.function.Function<Parameters.Slice, Tensor> first =
        fused -> ownM.view(fused.offset() - replicated, fused.shape());
    java.util.function.Function<Parameters.Slice, Tensor> second =
        fused -> ownV.view(fused.offset() - replicated, fused.shape());
    return new moetune.engine.model.ExpertStream(
        comm,
        params,
        List.of(
            new moetune.engine.model.ExpertStream.Source("exp_avg.", first),
            new moetune.engine.model.ExpertStream.Source("exp_avg_sq.", second)),
        order);
  }

  /**
   * Takes this rank's shard of whole moments saved by any world size (or by {@link AdamW}). Every
   * moment of every parameter must be present with its shape.
   */
  @Override
  public void loadState(Map<String, HostTensor> state, int stepCount) {
    AdamW.readMoments(
        params,
        state,
        stepCount,
        (first, slice, t) -> {
          if (slice.offset() >= replicated) { // one of this rank's experts: whole here
            be.copyFromHost(
                t.to(DType.F32),
                (first ? ownM : ownV).view(slice.offset() - replicated, slice.numel()));
          } else {
            scatterIntoShard(t.to(DType.F32), slice.offset(), first ? m : v);
          }
        });
    this.step = stepCount;
  }

  /** Copies the part of t (F32, flat elements [offset, offset + numel)) that this rank owns. */
  private void scatterIntoShard(HostTensor t, long offset, Tensor shard) {
    long end = offset + t.numel();
    for (ZeroPartition.Bucket b : part.buckets()) {
      long a = Math.max(offset, b.ownStart()), e = Math.min(end, b.ownStart() + b.ownLength());
      if (a >= e) {
        continue;
      }
      ByteBuffer src = t.bytes().duplicate().order(ByteOrder.LITTLE_ENDIAN);
      src.position((int) ((a - offset) * 4)).limit((int) ((e - offset) * 4));
      ByteBuffer piece = ByteBuffer.allocate((int) ((e - a) * 4)).order(ByteOrder.LITTLE_ENDIAN);
      piece.put(src).flip();
      be.copyFromHost(
          new HostTensor(DType.F32, new long[] {e - a}, piece),
          shard.view(b.shardOffset() + (a - b.ownStart()), e - a));
    }
  }

  @Override
  public void close() {
    g.close();
    m.close();
    v.close();
    if (staging != null) {
      staging.close();
    }
    sumSq.close();
    if (ownM != null) {
      ownM.close();
      ownV.close();
    }
  }
}
