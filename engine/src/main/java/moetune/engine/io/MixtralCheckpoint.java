package moetune.engine.io;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Function;
import moetune.engine.hf.CheckpointException;
import moetune.engine.hf.GenerationConfig;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;

/**
 * A HuggingFace Mixtral model directory, opened for reading: {@code config.json}, the optional
 * {@code generation_config.json}, and the weights from {@code model.safetensors} or the shards that
 * {@code model.safetensors.index.json} names, in any float dtype.
 *
 * <p>Each layer may be stored in the hub layout or the transformers-v5 fused layout (see {@link
 * MixtralNames}); either way the weights are presented under the canonical hub names ({@link
 * #names()}), and {@link #expertsGateUp} / {@link #expertsDown} give a layer's experts fused, as
 * ParallelLinear stores them. Opening checks the headers only: every tensor the config implies must
 * be there with the right shape and a float type, and no other tensor may be (except {@code
 * lm_head.weight} when the embeddings are tied, which transformers ignores, and rotary {@code
 * inv_freq} buffers old checkpoints carry). All missing, unexpected and misshapen tensors are
 * listed in one {@link CheckpointException}. Data is read on demand from the memory-mapped files;
 * {@link #close} unmaps them.
 */
public final class MixtralCheckpoint implements AutoCloseable {
  public static final String SINGLE_FILE = "model.safetensors";

  /** Where a canonical tensor's elements are: a contiguous range of a stored tensor. */
  private record Source(SafetensorsReader reader, String stored, long first, long[] shape) {}

  private final Path dir;
  private final MixtralConfig config;
  private final GenerationConfig generation; // null when the directory has none
  private final List<SafetensorsReader> readers;
  private final Map<String, Source> sources; // canonical name -> source, in canonical order
  private final boolean[] fusedLayer;

  private MixtralCheckpoint(
      Path dir,
      MixtralConfig config,
      GenerationConfig generation,
      List<SafetensorsReader> readers,
      Map<String, Source> sources,
      boolean[] fusedLayer) {
    this.dir = dir;
    this.config = config;
    this.generation = generation;
    this.readers = readers;
    this.sources = sources;
    this.fusedLayer = fusedLayer;
  }

  /**
   * Opens a model directory and validates config and tensors.
   *
   * @throws CheckpointException one line naming the file and the field or tensor(s)
   */
  public static MixtralCheckpoint load(Path dir) {
    if (!Files.isDirectory(dir)) {
      throw new CheckpointException(
          dir, null, Files.exists(dir) ? "is not a directory" : "model directory not found");
    }
    MixtralConfig config = MixtralConfig.load(dir.resolve("config.json"));
    Path genFile = dir.resolve("generation_config.json");
    GenerationConfig gen = Files.exists(genFile) ? GenerationConfig.load(genFile) : null;
    List<SafetensorsReader> readers = new ArrayList<>();
    try {
      Map<String, SafetensorsReader> present = openWeights(dir, readers);
      return assemble(dir, config, gen, readers, present);
    } catch (RuntimeException e) {
      readers.forEach(SafetensorsReader::close);
      throw e;
    }
  }

  /** Opens the weight files; returns every stored tensor name with the reader holding it. */
  private static Map<String, SafetensorsReader> openWeights(
      Path dir, List<SafetensorsReader> readers) {
    Map<String, SafetensorsReader> present = new LinkedHashMap<>();
    Path single = dir.resolve(SINGLE_FILE);
    Path indexFile = dir.resolve(SafetensorsIndex.FILE_NAME);
    if (Files.exists(single)) {
      SafetensorsReader r = SafetensorsReader.open(single);
      readers.add(r);
      r.names().forEach(n -> present.put(n, r));
      return present;
    }
    if (!Files.exists(indexFile)) {
      throw new CheckpointException(
          dir,
          null,
          "has neither "
              + SINGLE_FILE
              + " nor "
              + SafetensorsIndex.FILE_NAME
              + "; moetune reads HuggingFace safetensors checkpoints");
    }
    SafetensorsIndex index = SafetensorsIndex.load(indexFile);
    Set<String> shards = new LinkedHashSet<>(index.weightMap().values());
    List<String> missing = new ArrayList<>();
    for (String s : shards) {
      if (!Files.isRegularFile(dir.resolve(s))) {
        missing.add(s);
      }
    }
    if (!missing.isEmpty()) {
      throw new CheckpointException(
          indexFile,
          "weight_map",
          "names " + missing.size() + " missing shard file(s): " + String.join(", ", missing));
    }
    Map<String, SafetensorsReader> byShard = new LinkedHashMap<>();
    for (String s : shards) {
      SafetensorsReader r = SafetensorsReader.open(dir.resolve(s));
      readers.add(r);
      byShard.put(s, r);
    }
    for (Map.Entry<String, String> e : index.weightMap().entrySet()) {
      SafetensorsReader r = byShard.get(e.getValue());
      if (!r.contains(e.getKey())) {
        throw new CheckpointException(
            r.file(),
            CheckpointException.tensor(e.getKey()),
            "is missing, though " + SafetensorsIndex.FILE_NAME + " places it in this shard");
      }
      present.put(e.getKey(), r);
    }
    for (SafetensorsReader r : readers) {
      for (String n : r.names()) {
        if (!index.weightMap().containsKey(n)) {
          throw new CheckpointException(
              r.file(),
              CheckpointException.tensor(n),
              "is in this shard but not in " + SafetensorsIndex.FILE_NAME + "'s weight_map");
        }
        if (present.get(n) != r) {
          // The same tensor in two shards: which copy is right cannot be known.
          throw new CheckpointException(
              r.file(),
              CheckpointException.tensor(n),
              "is also in "
                  + present.get(n).file().getFileName()
                  + ", where "
                  + SafetensorsIndex.FILE_NAME
                  + " places it; a tensor must be stored in one shard only (the checkpoint"
                  + " was merged or copied wrongly)");
        }
      }
    }
    return present;
  }

  private static MixtralCheckpoint assemble(
      Path dir,
      MixtralConfig c,
      GenerationConfig gen,
      List<SafetensorsReader> readers,
      Map<String, SafetensorsReader> present) {
    boolean[] fused = new boolean[c.numHiddenLayers];
    for (String n : present.keySet()) {
      for (int l = 0; l < c.numHiddenLayers; l++) {
        if (n.startsWith(MixtralNames.layer(l) + "mlp.")) {
          fused[l] = true;
        }
      }
    }
    // expected stored names and shapes
    Map<String, long[]> hub = MixtralNames.hubShapes(c);
    Map<String, long[]> expected = new LinkedHashMap<>();
    for (Map.Entry<String, long[]> e : hub.entrySet()) {
      int l = MixtralNames.layerOf(e.getKey());
      boolean moe = e.getKey().contains(".block_sparse_moe.");
      if (l >= 0 && fused[l] && moe) {
        expected.putAll(MixtralNames.fusedShapes(c, l));
      } else {
        expected.put(e.getKey(), e.getValue());
      }
    }
    Set<String> missing = new TreeSet<>();
    for (String n : expected.keySet()) {
      if (!present.containsKey(n)) {
        missing.add(n);
      }
    }
    Set<String> unexpected = new TreeSet<>();
    for (String n : present.keySet()) {
      if (!expected.containsKey(n) && !ignorable(n, c)) {
        unexpected.add(n);
      }
    }
    if (!missing.isEmpty() || !unexpected.isEmpty()) {
      StringBuilder sb = new StringBuilder("tensors do not match config.json (" + c + "): ");
      if (!missing.isEmpty()) {
        sb.append(missing.size()).append(" missing: ").append(String.join(", ", missing));
      }
      if (!unexpected.isEmpty()) {
        sb.append(missing.isEmpty() ? "" : "; ")
            .append(unexpected.size())
            .append(" unexpected: ")
            .append(String.join(", ", unexpected));
      }
      throw new CheckpointException(dir, null, sb.toString());
    }
    List<String> bad = new ArrayList<>();
    for (Map.Entry<String, long[]> e : expected.entrySet()) {
      SafetensorsEntry entry = present.get(e.getKey()).entry(e.getKey());
      if (!Arrays.equals(entry.shape(), e.getValue())) {
        bad.add(
            "'"
                + e.getKey()
                + "' in "
                + present.get(e.getKey()).file().getFileName()
                + " has shape "
                + Arrays.toString(entry.shape())
                + ", config.json implies "
                + Arrays.toString(e.getValue()));
      } else if (!entry.dtype().isFloating() || entry.dtype() == SafetensorsDtype.C64) {
        bad.add(
            "'"
                + e.getKey()
                + "' in "
                + present.get(e.getKey()).file().getFileName()
                + " is "
                + entry.dtype()
                + ", not a real float type");
      }
    }
    if (!bad.isEmpty()) {
      throw new CheckpointException(
          dir, null, bad.size() + " tensor(s) do not fit config.json: " + String.join("; ", bad));
    }
    Map<String, Source> sources = new LinkedHashMap<>();
    long e2fd = 2L * c.intermediateSize * c.hiddenSize;
    long fd = (long) c.intermediateSize * c.hiddenSize;
    for (Map.Entry<String, long[]> e : hub.entrySet()) {
      String n = e.getKey();
      long[] shape = e.getValue();
      int l = MixtralNames.layerOf(n);
      if (l >= 0 && fused[l] && n.contains(".block_sparse_moe.")) {
        MixtralNames.ExpertWeight w = MixtralNames.parseExpert(n);
        if (w == null) { // the router
          String s = MixtralNames.fusedRouter(l);
          sources.put(n, new Source(present.get(s), s, 0, shape));
        } else if (w.w().equals("w2")) {
          String s = MixtralNames.fusedDown(l);
          sources.put(n, new Source(present.get(s), s, w.expert() * fd, shape));
        } else {
          String s = MixtralNames.fusedGateUp(l);
          long first = w.expert() * e2fd + (w.w().equals("w3") ? fd : 0);
          sources.put(n, new Source(present.get(s), s, first, shape));
        }
      } else {
        sources.put(n, new Source(present.get(n), n, 0, shape));
      }
    }
    return new MixtralCheckpoint(
        dir, c, gen, List.copyOf(readers), Collections.unmodifiableMap(sources), fused);
  }

  /** Tensors transformers ignores on load: a tied lm_head, rotary inv_freq buffers. */
  private static boolean ignorable(String name, MixtralConfig c) {
    return (c.tieWordEmbeddings && name.equals(MixtralNames.LM_HEAD))
        || MixtralNames.isRotaryBuffer(name);
  }

  public Path directory() {
    return dir;
  }

  public MixtralConfig config() {
    return config;
  }

  /** The directory's generation_config.json, or null when it has none. */
  public GenerationConfig generationConfig() {
    return generation;
  }

  /** True when the layer's router and experts are stored in the transformers-v5 fused layout. */
  public boolean isFused(int layer) {
    return fusedLayer[layer];
  }

  /** Canonical (hub) names in transformers' parameter order. */
  public List<String> names() {
    return List.copyOf(sources.keySet());
  }

  public boolean contains(String name) {
    return sources.containsKey(name);
  }

  /** The shape of a canonical tensor. */
  public long[] shape(String name) {
    return source(name).shape().clone();
  }

  /** The type the tensor is stored in (for a fused-layout expert, the fused tensor's). */
  public SafetensorsDtype storedType(String name) {
    Source s = source(name);
    return s.reader().entry(s.stored()).dtype();
  }

  /**
   * A canonical tensor, read from disk in its stored type (F32, BF16, F16; other float types
   * converted to F32 as {@link SafetensorsDtype} describes).
   */
  public HostTensor tensor(String name) {
    Source s = source(name);
    if (s.first() == 0 && Arrays.equals(s.reader().entry(s.stored()).shape(), s.shape())) {
      return s.reader().read(s.stored());
    }
    return s.reader().readRange(s.stored(), s.first(), s.shape());
  }

  /** A canonical tensor's values as float32 (exact for F32, BF16, F16 and the 8-bit floats). */
  public float[] floats(String name) {
    return tensor(name).toFloatArray();
  }

  /** A layer's experts' w1 and w3, fused as ParallelLinear stores them: (E, 2F, D). */
  public float[] expertsGateUp(int layer) {
    if (fusedLayer[layer]) {
      String n = MixtralNames.fusedGateUp(layer);
      return readerOf(n).read(n).toFloatArray();
    }
    int e = config.numLocalExperts;
    int fd = config.intermediateSize * config.hiddenSize;
    float[] out = new float[Math.multiplyExact(2 * e, fd)];
    for (int x = 0; x < e; x++) {
      System.arraycopy(floats(MixtralNames.expert(layer, x, "w1")), 0, out, 2 * x * fd, fd);
      System.arraycopy(floats(MixtralNames.expert(layer, x, "w3")), 0, out, (2 * x + 1) * fd, fd);
    }
    return out;
  }

  /** A layer's experts' w2, fused as ParallelLinear stores them: (E, D, F). */
  public float[] expertsDown(int layer) {
    if (fusedLayer[layer]) {
      String n = MixtralNames.fusedDown(layer);
      return readerOf(n).read(n).toFloatArray();
    }
    int e = config.numLocalExperts;
    int df = config.intermediateSize * config.hiddenSize;
    float[] out = new float[Math.multiplyExact(e, df)];
    for (int x = 0; x < e; x++) {
      System.arraycopy(floats(MixtralNames.expert(layer, x, "w2")), 0, out, x * df, df);
    }
    return out;
  }

  private SafetensorsReader readerOf(String stored) {
    for (SafetensorsReader r : readers) {
      if (r.contains(stored)) {
        return r;
      }
    }
    throw new IllegalStateException("no reader holds " + stored);
  }

  private Source source(String name) {
    Source s = sources.get(name);
    if (s == null) {
      throw new CheckpointException(
          dir,
          CheckpointException.tensor(name),
          "is not a tensor of this model; names are the hub layout's (see MixtralNames)");
    }
    return s;
  }

  /**
   * Saves a model directory in the hub layout, atomically: nothing is half-written, and an existing
   * model directory at {@code dir} is replaced only once the new one is complete.
   *
   * @param weights gives each canonical tensor ({@link MixtralNames#hubShapes}) in any float type;
   *     it is called once per tensor while that tensor is written
   * @param dtype F32, BF16 or F16 (floats are rounded to nearest even); config.json's "dtype" says
   *     which
   * @param maxShardBytes shard size limit ({@link SafetensorsWriter#parseSize} reads "5GB")
   * @param generation generation_config.json; null derives it from the config as transformers does
   * @param extraFiles files copied in unchanged (tokenizer.json, tokenizer_config.json, ...)
   */
  public static void save(
      Path dir,
      MixtralConfig config,
      GenerationConfig generation,
      Function<String, HostTensor> weights,
      DType dtype,
      long maxShardBytes,
      List<Path> extraFiles) {
    MixtralCheckpointWriter.save(
        dir, config, generation, weights, dtype, maxShardBytes, extraFiles);
  }

  /**
   * Saves this checkpoint (in the hub layout, whatever layout it was read from) to {@code dir},
   * copying the other files of its directory (tokenizer files and the like) along. Saving over the
   * directory it was read from is allowed.
   */
  public void save(Path target, DType dtype, long maxShardBytes) {
    List<Path> extras = new ArrayList<>();
    try (java.util.stream.Stream<Path> files = Files.list(dir)) {
      for (Path f : (Iterable<Path>) files::iterator) {
        String n = f.getFileName().toString();
        boolean ours =
            n.endsWith(".safetensors")
                || n.equals(SafetensorsIndex.FILE_NAME)
                || n.equals("config.json")
                || n.equals("generation_config.json")
                || n.equals("adapter_config.json")
                || n.startsWith(".");
        if (!ours && Files.isRegularFile(f)) {
          extras.add(f);
        }
      }
    } catch (java.io.IOException e) {
      throw new CheckpointException(dir, null, "cannot list: " + e, e);
    }
    save(target, config, generation, this::tensor, dtype, maxShardBytes, extras);
  }

  /** Unmaps the weight files; tensors already read stay valid. */
  @Override
  public void close() {
    readers.forEach(SafetensorsReader::close);
  }
}
