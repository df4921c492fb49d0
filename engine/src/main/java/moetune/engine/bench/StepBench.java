package moetune.engine.bench;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import moetune.engine.backend.Backend;
import moetune.engine.backend.Communicator;
import moetune.engine.backend.OpProfiler;
import moetune.engine.backend.cuda.CudaBackend;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.model.Batch;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.ModelOptions;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.train.AdamWOptions;
import moetune.engine.train.FreezeSpec;
import moetune.engine.train.LrSchedule;
import moetune.engine.train.MemoryPlan;
import moetune.engine.train.MicroStep;
import moetune.engine.train.MixtralTrainable;
import moetune.engine.train.TrainOptions;
import moetune.sequences.PackedSequence;

/**
 * {@code moetune bench step}: whole training steps of a Mixtral as {@code moetune train} runs them
 * (forward, backward, clip, AdamW, reading the gradient norm and the routing statistics back once
 * per step as the trainer does), on random tokens, timed after warm-up; then one more step with
 * every op stamped ({@link OpProfiler}) for the per-phase breakdown. The reference row
 * (transformers) comes from {@link TransformersReference}, run in the same invocation.
 *
 * <p>The step mirrors torch's: AdamW at lr 1e-4, no weight decay, clipping at 1.0, the router aux
 * loss at the config's coefficient, no z-loss, no gradient accumulation.
 *
 * <p>Model FLOPs per token (the usual MFU convention, as in PaLM's appendix): 6 per active matmul
 * weight (q/k/v/o, router, the top-k experts' three matrices, LM head; not the embedding lookup)
 * plus 12 * L * H * hd * T for attention's two products, forward and backward, not halved for
 * causality. For the 1.5B config at T = 2048 that is 3.02 GFLOP per token.
 */
public final class StepBench {
  private StepBench() {}

  /** The PERF.md 1.5B config, shipped as a resource; {@code --config 1.5b} names it. */
  public static final String CONFIG_1_5B = "1.5b";

  /**
   * What to run.
   *
   * @param microBatch B sequences per step
   * @param seqLen T tokens per sequence
   * @param steps timed steps (the median is reported)
   * @param warmup untimed steps first (allocator, cuBLAS heuristics, module loading)
   * @param activations BF16 (with fp32 master weights) or F32
   * @param seed random weights and tokens
   */
  public record Settings(
      int microBatch, int seqLen, int steps, int warmup, DType activations, long seed) {
    public Settings {
      if (microBatch < 1 || seqLen < 2 || steps < 1 || warmup < 0) {
        throw new IllegalArgumentException(
            "bench step: need --micro-batch >= 1, --seq-len >= 2, --steps >= 1, --warmup >= 0;"
                + " got "
                + microBatch
                + ", "
                + seqLen
                + ", "
                + steps
                + ", "
                + warmup);
      }
    }

    public long tokensPerStep() {
      return (long) microBatch * seqLen;
    }
  }

  /**
   * One implementation's row.
   *
   * @param impl what ran
   * @param params P
   * @param stepMsMedian median of the timed steps' wall time (each ends with the device idle)
   * @param tokensPerS B * T / median
   * @param tflops model TFLOP/s at the median
   * @param peakBytes the allocator's peak over the timed steps (torch: max_memory_allocated)
   * @param driverBytes device memory in use by the process, from the driver's free memory after the
   *     timed steps (the caching allocator keeps its peak), or -1 when unknown
   * @param lastLoss the last step's mean cross-entropy
   */
  public record Row(
      String impl,
      long params,
      double stepMsMedian,
      double stepMsMin,
      double stepMsMax,
      double tokensPerS,
      double tflops,
      long peakBytes,
      long driverBytes,
      double lastLoss) {}

  /** moetune's row with its breakdown and memory plan. */
  public record Result(
      Row row, OpProfiler.Breakdown breakdown, double profiledStepMs, MemoryPlan plan) {}

  /** The config a {@code --config} value names: {@code 1.5b} (the shipped one) or a file. */
  public static MixtralConfig config(String spec) {
    if (spec == null || spec.equals(CONFIG_1_5B)) {
      try (InputStream in = StepBench.class.getResourceAsStream("mixtral-1.5b.json")) {
        if (in == null) {
          throw new IllegalStateException("the 1.5b config resource is missing from the jar");
        }
        return MixtralConfig.parse(
            new String(in.readAllBytes(), StandardCharsets.UTF_8), Path.of("mixtral-1.5b.json"));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return MixtralConfig.load(Path.of(spec));
  }

  /**
   * Random weights of the config's shape, normal(0, initializer_range) for matrices and 1 for
   * norms, as transformers initialises a new model; drawn in parallel (one generator per tensor),
   * since a billion serial normals take longer than the benchmark.
   */
  public static Map<String, HostTensor> randomWeights(MixtralConfig config, long seed) {
    List<Map.Entry<String, long[]>> shapes =
        new ArrayList<>(MixtralNames.hubShapes(config).entrySet());
    HostTensor[] out = new HostTensor[shapes.size()];
    float std = (float) config.initializerRange;
    IntStream.range(0, shapes.size())
        .parallel()
        .forEach(
            i -> {
              long[] shape = shapes.get(i).getValue();
              float[] v = new float[Math.toIntExact(HostTensor.numel(shape))];
              if (shape.length == 1) {
                Arrays.fill(v, 1f);
              } else {
                SplittableRandom r = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + i);
                for (int j = 0; j < v.length; j++) {
                  v[j] = std * (float) r.nextGaussian();
                }
              }
              out[i] = HostTensor.ofFloats(v, shape);
            });
    Map<String, HostTensor> m = new LinkedHashMap<>();
    for (int i = 0; i < out.length; i++) {
      m.put(shapes.get(i).getKey(), out[i]);
    }
    return m;
  }

  /** Model FLOPs of one token's forward and backward (see the class comment). */
  public static double flopsPerToken(MixtralConfig c, int seqLen) {
    long d = c.hiddenSize;
    long hd = c.headDim();
    long h = c.numAttentionHeads;
    long kv = c.numKeyValueHeads;
    long attn = d * h * hd * 2 + d * kv * hd * 2; // q, o; k, v
    long router = d * c.numLocalExperts;
    long experts = (long) c.numExpertsPerTok * 3 * d * c.intermediateSize;
    long active = c.numHiddenLayers * (attn + router + experts) + d * c.vocabSize;
    return 6.0 * active + 12.0 * c.numHiddenLayers * h * hd * seqLen;
  }

  /** The parameter count of a config (every weight once, as torch counts them). */
  public static long parameterCount(MixtralConfig c) {
    long n = 0;
    for (long[] s : MixtralNames.hubShapes(c).values()) {
      n += HostTensor.numel(s);
    }
    return n;
  }

  /**
   * Trains {@code s.steps() + s.warmup() + 1} steps of a model with these weights on random tokens
   * and measures them; the backend stays open (the caller's). Progress lines go to {@code log}.
   */
  public static Result run(
      MixtralConfig config,
      Map<String, HostTensor> weights,
      Backend backend,
      Settings s,
      PrintStream log) {
    return run(config, weights, backend, s, log, null);
  }

  /**
   * As above, as one rank of a data-parallel group when {@code comm} is not null: every rank runs
   * its own random micro-batch of B sequences (weighted 1/N, so the summed gradient is the mean),
   * the optimizer is {@link moetune.engine.optim.ShardedAdamW} (reduce-scatter, shard step,
   * all-gather), and the row's tokens/s counts the whole group's N * B * T tokens per step. Every
   * step ends in collectives, so the ranks run in lockstep and rank 0's step times are the group's.
   */
  public static Result run(
      MixtralConfig config,
      Map<String, HostTensor> weights,
      Backend backend,
      Settings s,
      PrintStream log,
      Communicator comm) {
    OpProfiler profiler = OpProfiler.wrap(backend);
    try {
      return run(config, weights, backend, profiler, s, log, comm);
    } finally {
      profiler.close();
    }
  }

  private static Result run(
      MixtralConfig config,
      Map<String, HostTensor> weights,
      Backend backend,
      OpProfiler profiler,
      Settings s,
      PrintStream log,
      Communicator comm) {
    int ranks = comm == null ? 1 : comm.size();
    int rank = comm == null ? 0 : comm.rank();
    float lr = 1e-4f;
    TrainOptions o =
        TrainOptions.builder(new AdamWOptions(lr, 0.9, 0.999, 1e-8, 0.0, AdamWOptions.Decay.ALL))
            .microBatch(s.microBatch())
            .gradAccum(1)
            .epochs(1)
            .maxSteps(s.warmup() + s.steps() + 1)
            .schedule(LrSchedule.Kind.CONSTANT)
            .warmupSteps(0)
            .minLrRatio(0.0)
            .clipNorm(1.0)
            .auxLossCoef(config.routerAuxLossCoef)
            .routerZLossCoef(0.0)
            .freeze(FreezeSpec.NONE)
            .evalEvery(0)
            .checkpointEvery(0)
            .keepLast(0)
            .seed(s.seed())
            .shuffle(false)
            .build();
    MixtralModel model =
        MixtralModel.create(
            config,
            weights,
            profiler.backend(),
            MixtralTrainable.trainingOptions(new ModelOptions(s.activations(), s.seed()), o));
    try (MixtralTrainable trainable =
        new MixtralTrainable(model, config, null, List.of(), o, comm)) {
      MemoryPlan plan = MemoryPlan.of(model, ranks);
      log.println(plan.describe());
      long tokens = (long) s.microBatch() * s.seqLen();
      log.println(MemoryPlan.describeActivations(config, model.options(), tokens));
      log.println(MemoryPlan.describeHead(config, model.options(), tokens));
      List<Batch> batches = randomBatches(config.vocabSize, s, 4, s.seed() + 7919L * rank);
      double loss = 0;
      for (int i = 0; i < s.warmup(); i++) {
        double ms = step(trainable, batches.get(i % batches.size()), lr, backend, ranks)[0];
        log.printf("warm-up step %d: %.1f ms%n", i + 1, ms);
      }
      backend.resetPeak();
      double[] times = new double[s.steps()];
      for (int i = 0; i < s.steps(); i++) {
        double[] r =
            step(trainable, batches.get((s.warmup() + i) % batches.size()), lr, backend, ranks);
        times[i] = r[0];
        loss = r[1];
      }
      long peak = backend.peakBytes();
      long driver = backend instanceof CudaBackend c ? c.driverBytesUsed() : -1;
      profiler.begin();
      long t0 = System.nanoTime();
      step(trainable, batches.get(0), lr, backend, ranks);
      double profiledMs = (System.nanoTime() - t0) / 1e6;
      OpProfiler.Breakdown breakdown = profiler.end();
      double[] sorted = times.clone();
      Arrays.sort(sorted);
      double median =
          sorted.length % 2 == 1
              ? sorted[sorted.length / 2]
              : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
      double tokensPerS = ranks * s.tokensPerStep() / (median / 1000);
      Row row =
          new Row(
              "moetune "
                  + backend.name()
                  + (ranks > 1 ? " x " + ranks + " ranks" : "")
                  + " ("
                  + s.activations().name().toLowerCase()
                  + ")",
              model.parameters().count(),
              median,
              sorted[0],
              sorted[sorted.length - 1],
              tokensPerS,
              tokensPerS * flopsPerToken(config, s.seqLen()) / 1e12,
              peak,
              driver,
              loss);
      return new Result(row, breakdown, profiledMs, plan);
    }
  }

  /** One training step as the trainer runs it; returns {wall ms, mean CE}. */
  private static double[] step(
      MixtralTrainable trainable, Batch batch, float lr, Backend backend, int ranks) {
    long t0 = System.nanoTime();
    trainable.zeroGrad();
    MicroStep r = trainable.forwardBackward(batch, 1.0 / ranks);
    trainable.step(lr); // reads the gradient norm back, as the trainer does
    trainable.takeRouterStats(); // the trainer's expert-load monitor, read once per step
    backend.synchronize();
    double ms = (System.nanoTime() - t0) / 1e6;
    return new double[] {ms, r.lossSum() / Math.max(1, r.labelledTokens())};
  }

  /** n batches of uniformly random tokens, every token a target but each row's first. */
  static List<Batch> randomBatches(int vocab, Settings s, int n) {
    return randomBatches(vocab, s, n, s.seed());
  }

  static List<Batch> randomBatches(int vocab, Settings s, int n, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    List<Batch> out = new ArrayList<>();
    int t = s.seqLen();
    for (int b = 0; b < n; b++) {
      List<PackedSequence> rows = new ArrayList<>();
      for (int row = 0; row < s.microBatch(); row++) {
        int[] ids = new int[t];
        for (int i = 0; i < t; i++) {
          ids[i] = r.nextInt(vocab);
        }
        rows.add(PackedSequence.ofDocument(ids));
      }
      out.add(Batch.of(rows));
    }
    return out;
  }
}
