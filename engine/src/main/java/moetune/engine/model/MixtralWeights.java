package moetune.engine.model;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import moetune.engine.backend.Backend;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.io.MixtralCheckpoint;
import moetune.engine.io.SafetensorsIndex;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * A {@link MixtralModel}'s weights in and out: loading a HuggingFace directory (with a PEFT adapter
 * on top), building a model from named weights or random ones, and saving the hub layout. The
 * public entry points are {@link MixtralModel}'s {@code load}, {@code create}, {@code createRandom}
 * and {@code save}, which are documented there; checkpoint names come from {@link MixtralNames}
 * only.
 */
final class MixtralWeights {
  private MixtralWeights() {}

  static MixtralModel load(Path dir, Backend backend, ModelOptions options) {
    if (LoraWeights.isAdapterDir(dir) && !LoraWeights.hasWeights(dir)) {
      // an adapter-only directory (a LoRA run's checkpoint of a base model on disk)
      return load(LoraWeights.baseModel(dir), dir, backend, options);
    }
    if (LoraWeights.isAdapterDir(dir)) {
      return load(dir, dir, backend, options); // a merged base with its adapter beside it
    }
    return loadBase(dir, backend, options);
  }

  static MixtralModel load(Path dir, Path adapterDir, Backend backend, ModelOptions options) {
    LoraConfig stored = LoraWeights.readConfig(adapterDir, options.seed());
    checkSameAdapter(adapterDir, options.lora(), stored);
    MixtralModel m = loadBase(dir, backend, options.withLora(stored));
    try {
      LoraWeights.load(adapterDir, m);
    } catch (RuntimeException e) {
      m.close();
      throw e;
    }
    return m;
  }

  private static void checkSameAdapter(Path dir, LoraConfig wanted, LoraConfig stored) {
    if (wanted != null
        && (wanted.r() != stored.r()
            || wanted.alpha() != stored.alpha()
            || wanted.rslora() != stored.rslora()
            || !wanted.targets().equals(stored.targets()))) {
      throw new IllegalArgumentException(
          dir.resolve(LoraWeights.CONFIG_FILE)
              + ": the adapter has r="
              + stored.r()
              + " alpha="
              + stored.alpha()
              + " targets="
              + String.join(",", stored.targets())
              + " but the run asks for r="
              + wanted.r()
              + " alpha="
              + wanted.alpha()
              + " targets="
              + String.join(",", wanted.targets())
              + "; use the adapter's settings");
    }
  }

  private static MixtralModel loadBase(Path dir, Backend backend, ModelOptions options) {
    try (MixtralCheckpoint ckpt = MixtralCheckpoint.load(dir)) {
      Map<String, HostTensor> weights = new LinkedHashMap<>();
      for (String name : ckpt.names()) {
        weights.put(name, ckpt.tensor(name));
      }
      MixtralModel m = create(ckpt.config(), weights, backend, options);
      m.loadedFrom(dir, ckpt.generationConfig());
      return m;
    }
  }

  static MixtralModel create(
      MixtralConfig config,
      Map<String, HostTensor> weights,
      Backend backend,
      ModelOptions options) {
    return create(config, weights, backend, options, ExpertShard.ALL);
  }

  static MixtralModel create(
      MixtralConfig config,
      Map<String, HostTensor> weights,
      Backend backend,
      ModelOptions options,
      ExpertShard shard) {
    checkSupported(backend, options);
    Parameters p =
        Parameters.allocate(
            backend, config, options.activations(), options.frozen(), options.lora(), shard);
    try {
      Map<String, Long> covered = new LinkedHashMap<>();
      for (Map.Entry<String, HostTensor> w : weights.entrySet()) {
        if (config.tieWordEmbeddings && w.getKey().equals(MixtralNames.LM_HEAD)) {
          continue;
        }
        if (LoraWeights.isAdapterName(w.getKey())) {
          throw new IllegalArgumentException(
              "tensor '"
                  + w.getKey()
                  + "' is a LoRA adapter tensor among the base weights; load adapters with"
                  + " loadAdapter()");
        }
        if (!p.holds(w.getKey())) {
          continue; // another expert-parallel rank's expert
        }
        Parameters.Slice s = p.resolve(w.getKey());
        HostTensor value = p.localPart(w.getKey(), w.getValue());
        if (value.numel() != s.numel()) {
          throw new IllegalArgumentException(
              "tensor '"
                  + w.getKey()
                  + "' has shape "
                  + Arrays.toString(w.getValue().shape())
                  + ", the config needs "
                  + Arrays.toString(s.shape()));
        }
        p.set(s, value);
        covered.merge(owner(p, s), s.numel(), Long::sum);
      }
      List<String> missing = new ArrayList<>();
      for (Parameters.Slice s : p.slices()) {
        if (!s.isLora() && covered.getOrDefault(s.name(), 0L) != s.numel()) {
          missing.add(s.name());
        }
      }
      if (!missing.isEmpty()) {
        throw new IllegalArgumentException(
            "weights missing or partial for: " + String.join(", ", missing));
      }
      if (options.lora() != null) {
        LoraWeights.initialise(p, options.lora());
      }
      p.syncWorkingCopy();
      return new MixtralModel(config, backend, options, p);
    } catch (RuntimeException e) {
      p.close();
      throw e;
    }
  }

  static MixtralModel createRandom(
      MixtralConfig config, Backend backend, ModelOptions options, long seed) {
    checkSupported(backend, options);
    Parameters p =
        Parameters.allocate(
            backend, config, options.activations(), options.frozen(), options.lora());
    try {
      float std = (float) config.initializerRange;
      long tensor = 0;
      for (Parameters.Slice s : p.slices()) {
        if (s.isLora()) {
          continue;
        }
        Tensor v = p.value(s);
        if (s.isVector()) {
          backend.fill(v, 1f);
        } else {
          // counters tensor * 2^40 + i: disjoint ranges (a tensor has < 2^40 elements)
          backend.randomNormal(v, seed + ++tensor * (0x9E3779B97F4A7C15L << 40), std);
        }
      }
      if (options.lora() != null) {
        LoraWeights.initialise(p, options.lora());
      }
      p.syncWorkingCopy();
      return new MixtralModel(config, backend, options, p);
    } catch (RuntimeException e) {
      p.close();
      throw e;
    }
  }

  private static void checkSupported(Backend backend, ModelOptions options) {
    for (DType t : new DType[] {options.activations(), options.residual()}) {
      if (!backend.supports(t)) {
        throw new IllegalArgumentException(
            "backend "
                + backend.name()
                + " does not compute in "
                + t
                + "; use precision fp32 on this device");
      }
    }
  }

  /** The fused parameter a resolved slice lies in. */
  private static String owner(Parameters p, Parameters.Slice s) {
    for (Parameters.Slice f : p.slices()) {
      if (f.frozen() == s.frozen()
          && s.offset() >= f.offset()
          && s.offset() < f.offset() + f.numel()) {
        return f.name();
      }
    }
    throw new IllegalStateException("slice " + s.name() + " outside the parameters");
  }

  static void save(MixtralModel m, Path dir, DType dtype, long maxShardBytes) {
    MixtralConfig.Builder b = m.config().toBuilder();
    b.dtype =
        switch (dtype) {
          case F32 -> "float32";
          case BF16 -> "bfloat16";
          case F16 -> "float16";
          default ->
              throw new IllegalArgumentException(
                  "save: weights must be F32, BF16 or F16, not " + dtype);
        };
    MixtralCheckpoint.save(
        dir,
        b.build(),
        m.generation(),
        m::parameter,
        dtype,
        maxShardBytes,
        extraFiles(m.sourceDir()));
  }

  /** The weight dtype config.json names (float32 when none). */
  static DType configDtype(MixtralConfig config) {
    if (config.dtype == null) {
      return DType.F32;
    }
    return switch (config.dtype) {
      case "bfloat16" -> DType.BF16;
      case "float16" -> DType.F16;
      default -> DType.F32;
    };
  }

  /** Files of the source directory other than weights and configs (tokenizer files). */
  private static List<Path> extraFiles(Path sourceDir) {
    List<Path> out = new ArrayList<>();
    if (sourceDir == null) {
      return out;
    }
    try (Stream<Path> files = Files.list(sourceDir)) {
      for (Path f : (Iterable<Path>) files::iterator) {
        String n = f.getFileName().toString();
        boolean weightsOrConfig =
            n.endsWith(".safetensors")
                || n.equals(SafetensorsIndex.FILE_NAME)
                || n.equals("config.json")
                || n.equals("generation_config.json")
                || n.equals(LoraWeights.CONFIG_FILE)
                || n.startsWith(".");
        if (!weightsOrConfig && Files.isRegularFile(f)) {
          out.add(f);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot list " + sourceDir + ": " + e.getMessage(), e);
    }
    return out;
  }
}
