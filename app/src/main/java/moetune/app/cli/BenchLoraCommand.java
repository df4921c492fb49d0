package moetune.app.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.AbstractMap;
import java.util.AbstractSet;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import moetune.app.run.Devices;
import moetune.engine.backend.Backend;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.model.Batch;
import moetune.engine.model.LoraConfig;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.ModelOptions;
import moetune.engine.optim.AdamW;
import moetune.engine.tensor.HostTensor;
import moetune.engine.train.MemoryPlan;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code moetune bench lora}: LoRA training steps of a model of CONFIG's shape with random weights,
 * next to transformers + PEFT ({@code tools/bench_peft_lora.py}, same shape, rank, targets and
 * sequence) run first in the same invocation. Prints tokens/s from the median step and the peak
 * device memory of each, and their ratios.
 *
 * <p>The weights are a window of one random pool per tensor (normal, std initializer_range), so
 * that routing is not degenerate and a 46.7B-parameter model is built without 187 GB of host
 * arrays. moetune's step: zero gradients, forward and backward of one micro-batch, AdamW on the
 * adapters, timed from one device synchronisation to the next.
 */
@Command(
    name = "lora",
    mixinStandardHelpOptions = true,
    description = {
      "Time LoRA training steps against transformers + PEFT (tools/bench_peft_lora.py) in the",
      "same run, e.g. --config tools/mixtral-8x7b-config.json --seq-len 4096 --r 16"
    })
public final class BenchLoraCommand implements Callable<Integer> {
  @Option(names = "--config", required = true, paramLabel = "CONFIG.json")
  Path config;

  @Option(names = "--seq-len", defaultValue = "4096")
  int seqLen;

  @Option(names = "--micro-batch", defaultValue = "1")
  int microBatch;

  @Option(names = "--r", defaultValue = "16")
  int r;

  @Option(names = "--alpha", defaultValue = "32")
  double alpha;

  @Option(names = "--targets", defaultValue = "q_proj,k_proj,v_proj,o_proj")
  String targets;

  @Option(names = "--steps", defaultValue = "5")
  int steps;

  @Option(names = "--warmup", defaultValue = "2")
  int warmup;

  @Option(names = "--device", defaultValue = "cuda")
  String device;

  @Option(names = "--precision", defaultValue = "auto", description = "fp32, bf16 or auto")
  String precision;

  @Option(
      names = "--python",
      defaultValue = "python3",
      description = "the Python that runs the reference (default: ${DEFAULT-VALUE})")
  String python;

  @Option(names = "--no-reference", description = "skip transformers + PEFT")
  boolean noReference;

  @Option(names = "--seed", defaultValue = "1234")
  long seed;

  @Override
  public Integer call() {
    try {
      MixtralConfig c = MixtralConfig.load(config);
      LoraConfig lora = new LoraConfig(r, alpha, 0, LoraConfig.parseTargets(targets), false, seed);
      JsonNode ref = noReference ? null : reference(); // first, while the device is free
      double[] ms;
      long peak;
      String plan;
      try (Backend be = Devices.open(device, System.out::println)) {
        ModelOptions o = new ModelOptions(Devices.precision(precision, be), seed).withLora(lora);
        try (MixtralModel m = MixtralModel.create(c, randomWeights(c, seed), be, o);
            AdamW opt =
                new AdamW(m.parameters(), AdamW.Settings.defaults(), AdamW.DECAY_MATRICES)) {
          plan = MemoryPlan.of(m).describe();
          Batch batch = batch(c);
          for (int i = 0; i < warmup; i++) {
            step(m, opt, batch);
          }
          be.synchronize();
          be.resetPeak();
          ms = new double[steps];
          for (int i = 0; i < steps; i++) {
            long t0 = System.nanoTime();
            step(m, opt, batch);
            be.synchronize();
            ms[i] = (System.nanoTime() - t0) / 1e6;
          }
          peak = be.peakBytes();
        }
      }
      print(c, plan, ms, peak, ref);
      return 0;
    } catch (Exception e) {
      return CliErrors.report("bench lora", e, System.err);
    }
  }

  private static void step(MixtralModel m, AdamW opt, Batch batch) {
    m.zeroGrad();
    m.forward(batch);
    m.backward();
    opt.step(1e-4f);
  }

  private Batch batch(MixtralConfig c) {
    SplittableRandom rnd = new SplittableRandom(seed);
    int[][] ids = new int[microBatch][seqLen];
    for (int[] row : ids) {
      for (int t = 0; t < row.length; t++) {
        row[t] = rnd.nextInt(c.vocabSize);
      }
    }
    return Batch.of(ids, ids);
  }

  /** The reference's RESULT line as JSON; fails naming the command when it fails. */
  private JsonNode reference() throws Exception {
    List<String> cmd =
        List.of(
            python,
            "tools/bench_peft_lora.py",
            "--config",
            config.toString(),
            "--seq-len",
            Integer.toString(seqLen),
            "--micro-batch",
            Integer.toString(microBatch),
            "--r",
            Integer.toString(r),
            "--alpha",
            Double.toString(alpha),
            "--targets",
            targets,
            "--steps",
            Integer.toString(steps),
            "--warmup",
            Integer.toString(warmup),
            "--seed",
            Long.toString(seed));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    JsonNode result = null;
    List<String> tail = new ArrayList<>();
    try (BufferedReader in =
        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      for (String line = in.readLine(); line != null; line = in.readLine()) {
        if (line.startsWith("RESULT ")) {
          result = new ObjectMapper().readTree(line.substring("RESULT ".length()));
        }
        tail.add(line);
        if (tail.size() > 20) {
          tail.removeFirst();
        }
      }
    }
    int code = p.waitFor();
    if (code != 0 || result == null) {
      throw new moetune.app.config.ConfigException(
          "the reference "
              + String.join(" ", cmd)
              + " failed (exit "
              + code
              + "): "
              + (tail.isEmpty() ? "no output" : tail.getLast())
              + "; it needs a GPU with torch, transformers and peft, or pass --no-reference");
    }
    return result;
  }

  private void print(MixtralConfig c, String plan, double[] ms, long peak, JsonNode ref) {
    double[] sorted = ms.clone();
    java.util.Arrays.sort(sorted);
    double med = sorted[sorted.length / 2];
    double tokens = (double) microBatch * seqLen;
    double tps = tokens / (med / 1000);
    System.out.println(plan);
    System.out.printf(
        Locale.ROOT,
        "LoRA r=%d alpha=%s on %s, %d x %d tokens, hidden %d, %d layers, %d experts top-%d%n",
        r,
        alpha,
        targets,
        microBatch,
        seqLen,
        c.hiddenSize,
        c.numHiddenLayers,
        c.numLocalExperts,
        c.numExpertsPerTok);
    System.out.println("| impl | tokens/s | step ms median (min-max) | peak GiB |");
    System.out.println("|---|---|---|---|");
    if (ref != null) {
      System.out.printf(
          Locale.ROOT,
          "| %s | %.0f | %.1f (%.1f-%.1f) | %.2f |%n",
          ref.get("impl").asText(),
          ref.get("tokens_per_s").asDouble(),
          ref.get("step_ms_median").asDouble(),
          ref.get("step_ms_min").asDouble(),
          ref.get("step_ms_max").asDouble(),
          ref.get("peak_bytes").asDouble() / (1L << 30));
    }
    System.out.printf(
        Locale.ROOT,
        "| moetune (%s) | %.0f | %.1f (%.1f-%.1f) | %.2f |%n",
        device,
        tps,
        med,
        sorted[0],
        sorted[sorted.length - 1],
        peak / (double) (1L << 30));
    if (ref != null) {
      System.out.printf(
          Locale.ROOT,
          "moetune / reference: tokens/s %.2fx, peak memory %.2fx%n",
          tps / ref.get("tokens_per_s").asDouble(),
          peak / ref.get("peak_bytes").asDouble());
    }
  }

  /**
   * Every hub tensor, generated when the model asks for it: a window of one shared random pool at a
   * per-tensor offset (the pool is far smaller than the model).
   */
  static Map<String, HostTensor> randomWeights(MixtralConfig c, long seed) {
    Map<String, long[]> shapes = MixtralNames.hubShapes(c);
    int poolSize = 1 << 24;
    float[] pool = new float[poolSize];
    SplittableRandom rnd = new SplittableRandom(seed);
    float std = (float) c.initializerRange;
    for (int i = 0; i < poolSize; i++) {
      pool[i] = (float) (std * rnd.nextGaussian());
    }
    return new AbstractMap<>() {
      @Override
      public Set<Entry<String, HostTensor>> entrySet() {
        return new AbstractSet<>() {
          @Override
          public Iterator<Entry<String, HostTensor>> iterator() {
            Iterator<Map.Entry<String, long[]>> it = shapes.entrySet().iterator();
            SplittableRandom offsets = new SplittableRandom(seed + 1);
            return new Iterator<>() {
              @Override
              public boolean hasNext() {
                return it.hasNext();
              }

              @Override
              public Entry<String, HostTensor> next() {
                Map.Entry<String, long[]> e = it.next();
                long[] shape = e.getValue();
                int n = Math.toIntExact(HostTensor.numel(shape));
                float[] v = new float[n];
                boolean norm = shape.length == 1;
                int at = offsets.nextInt(poolSize);
                for (int i = 0; i < n; ) {
                  int len = Math.min(n - i, poolSize - at);
                  if (norm) {
                    java.util.Arrays.fill(v, i, i + len, 1f);
                  } else {
                    System.arraycopy(pool, at, v, i, len);
                  }
                  i += len;
                  at = 0;
                }
                return new SimpleImmutableEntry<>(e.getKey(), HostTensor.ofFloats(v, shape));
              }
            };
          }

          @Override
          public int size() {
            return shapes.size();
          }
        };
      }
    };
  }
}
