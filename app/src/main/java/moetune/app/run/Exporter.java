package moetune.app.run;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.DoubleConsumer;
import java.util.stream.Stream;
import moetune.app.config.ConfigException;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.hf.MixtralNames;
import moetune.engine.io.MixtralCheckpoint;
import moetune.engine.io.ModelDirectory;
import moetune.engine.io.SafetensorsWriter;
import moetune.engine.model.Batch;
import moetune.engine.model.LoraConfig;
import moetune.engine.model.LoraWeights;
import moetune.engine.model.MixtralModel;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.train.CheckpointStore;
import moetune.engine.train.DataOrder;
import moetune.engine.train.Trainer;

/**
 * Exports a checkpoint as a HuggingFace model directory (hub per-expert layout, sharded safetensors
 * with an index when above the shard size, config.json, generation_config.json, tokenizer files)
 * and writes reference logits that {@code tools/check_export.py} compares transformers' logits
 * against.
 */
public final class Exporter {
  private Exporter() {}

  /**
   * The model directory a {@code --checkpoint} / {@code --model} value names: a HuggingFace
   * directory itself, or a run's output or checkpoints directory (its latest checkpoint).
   */
  public static Path modelDir(Path p, String flag) throws IOException {
    if (Files.isRegularFile(p.resolve("config.json")) || LoraWeights.isAdapterDir(p)) {
      return p;
    }
    if (!Files.isDirectory(p)) {
      throw new ConfigException(flag + " " + p + ": no such directory");
    }
    try {
      return Trainer.findCheckpoint(p);
    } catch (IllegalArgumentException e) {
      throw new ConfigException(
          flag
              + " "
              + p
              + ": neither a model directory (no config.json) nor a training output "
              + "with checkpoints; give a model directory or the --out of a train run");
    }
  }

  /**
   * Writes the export into a new or empty directory (see {@link #export(Path, Path, DType, long,
   * boolean, DoubleConsumer)}).
   */
  public static void export(Path from, Path to, DType dtype, long maxShardBytes)
      throws IOException {
    export(from, to, dtype, maxShardBytes, false, fraction -> {});
  }

  /** As {@link #export(Path, Path, DType, long, boolean, DoubleConsumer)} without overwriting. */
  public static void export(
      Path from, Path to, DType dtype, long maxShardBytes, DoubleConsumer progress)
      throws IOException {
    export(from, to, dtype, maxShardBytes, false, progress);
  }

  /**
   * Writes the export, reporting the fraction of the weight tensors written so far (in [0, 1], on
   * the calling thread) to {@code progress}.
   *
   * <p>{@code to} must be new or empty, unless {@code overwrite}: then it may be an earlier export
   * (a directory with config.json), whose model files are replaced while every other file in it (a
   * README, an eval-results folder) is kept. A training run's directory or checkpoint is never a
   * target, with or without overwrite.
   */
  public static void export(
      Path from,
      Path to,
      DType dtype,
      long maxShardBytes,
      boolean overwrite,
      DoubleConsumer progress)
      throws IOException {
    if (to.toAbsolutePath().normalize().equals(from.toAbsolutePath().normalize())) {
      throw new ConfigException(
          "--out " + to + ": is the checkpoint itself; choose another directory");
    }
    if (Files.exists(to) && !Files.isDirectory(to)) {
      throw new ConfigException("--out " + to + ": is a file; choose a directory");
    }
    if (isTrainingCheckpoint(to) || isInsideRun(to)) {
      throw new ConfigException(
          "--out "
              + to
              + ": belongs to a training run (a checkpoint or its folder); choose a directory"
              + " outside the run (nothing was written)");
    }
    if (Files.isDirectory(to) && !isEmpty(to)) {
      if (!overwrite) {
        throw new ConfigException(
            "--out "
                + to
                + ": exists and is not empty; choose a new or empty directory, or pass"
                + " --overwrite to replace an earlier export in it (nothing was written)");
      }
      if (!Files.isRegularFile(to.resolve("config.json"))) {
        throw new ConfigException(
            "--out "
                + to
                + ": is not empty and is not a model directory (no config.json); --overwrite"
                + " only replaces an earlier export; choose a new or empty directory (nothing"
                + " was written)");
      }
    }
    List<Path> tokenizer = ModelSetup.tokenizerFiles(from);
    try (MixtralCheckpoint ckpt = MixtralCheckpoint.load(weightsOf(from))) {
      // A LoRA checkpoint exports merged: W + scaling * B A for every adapted tensor (float32).
      LoraConfig lora = LoraWeights.isAdapterDir(from) ? LoraWeights.readConfig(from, 0L) : null;
      Map<String, HostTensor> adapter =
          lora == null ? Map.of() : LoraWeights.read(from, lora, ckpt.config());
      // the writer asks for each hub tensor once, while writing it
      int total = MixtralNames.hubShapes(ckpt.config()).size();
      int[] written = {0};
      progress.accept(0);
      MixtralCheckpoint.save(
          to,
          ckpt.config(),
          ckpt.generationConfig(),
          name -> {
            progress.accept(Math.min(1.0, (double) written[0]++ / total));
            HostTensor base = ckpt.tensor(name);
            return lora == null
                ? base
                : LoraWeights.merged(lora, ckpt.config(), name, base, adapter::get);
          },
          dtype,
          maxShardBytes,
          tokenizer);
      progress.accept(1);
    }
  }

  /**
   * Writes the PEFT adapter of a LoRA checkpoint (adapter_config.json, adapter_model.safetensors)
   * as a directory that {@code peft.PeftModel.from_pretrained} loads on top of the base model;
   * {@code to} must be new, empty, or an earlier export (it is replaced).
   */
  public static void exportAdapter(Path from, Path to) throws IOException {
    if (!LoraWeights.isAdapterDir(from)) {
      throw new ConfigException(
          "--checkpoint "
              + from
              + ": has no LoRA adapter ("
              + LoraWeights.CONFIG_FILE
              + "); --adapter exports the adapters of a run trained with --lora-r");
    }
    if (to.toAbsolutePath().normalize().equals(from.toAbsolutePath().normalize())) {
      throw new ConfigException(
          "--out " + to + ": is the checkpoint itself; choose another directory");
    }
    if (Files.exists(to) && !Files.isDirectory(to)) {
      throw new ConfigException("--out " + to + ": is a file; choose a directory");
    }
    if (Files.isDirectory(to)
        && !LoraWeights.isAdapterDir(to)
        && !Files.isRegularFile(to.resolve("config.json"))
        && !isEmpty(to)) {
      throw new ConfigException(
          "--out "
              + to
              + ": exists, is not empty and is not an export; choose a new or empty directory"
              + " (nothing was written)");
    }
    LoraConfig lora = LoraWeights.readConfig(from, 0L); // validates before anything is written
    try (MixtralCheckpoint ckpt = MixtralCheckpoint.load(weightsOf(from))) {
      LoraWeights.read(from, lora, ckpt.config()); // every tensor present, with its shape
    }
    ModelDirectory.replace(
        to,
        tmp -> {
          Files.copy(from.resolve(LoraWeights.CONFIG_FILE), tmp.resolve(LoraWeights.CONFIG_FILE));
          Files.copy(from.resolve(LoraWeights.WEIGHTS_FILE), tmp.resolve(LoraWeights.WEIGHTS_FILE));
        });
  }

  /** Where a checkpoint's base weights are: itself, or an adapter-only checkpoint's base model. */
  static Path weightsOf(Path from) {
    return LoraWeights.isAdapterDir(from) && !LoraWeights.hasWeights(from)
        ? LoraWeights.baseModel(from)
        : from;
  }

  private static boolean isEmpty(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.findAny().isEmpty();
    }
  }

  /**
   * Runs moetune (CPU, float32) on deterministic token ids, B rows of T, and writes {@code
   * input_ids} I64 (B, T) and {@code logits} F32 (B, T, V) to a safetensors file.
   */
  public static HostTensor writeReferenceLogits(
      Path modelDir, Path file, int rows, int len, long seed) throws IOException {
    try (CpuBackend cpu = new CpuBackend();
        MixtralModel model = MixtralModel.load(modelDir, cpu)) {
      int v = model.config().vocabSize;
      int[][] ids = new int[rows][len];
      long[] flat = new long[rows * len];
      long x = seed;
      for (int b = 0; b < rows; b++) {
        for (int t = 0; t < len; t++) {
          x += 0x9e3779b97f4a7c15L;
          ids[b][t] = (int) Long.remainderUnsigned(DataOrder.mix(x), v);
          flat[b * len + t] = ids[b][t];
        }
      }
      model.evaluate(Batch.of(ids, null));
      HostTensor logits = model.logits();
      Map<String, SafetensorsWriter.Item> items = new LinkedHashMap<>();
      items.put(
          "input_ids", SafetensorsWriter.Item.of("input_ids", HostTensor.ofLongs(flat, rows, len)));
      items.put("logits", SafetensorsWriter.Item.of("logits", logits));
      Path parent = file.toAbsolutePath().getParent();
      if (parent != null) {
        Files.createDirectories(parent);
      }
      SafetensorsWriter.writeFile(
          file,
          List.copyOf(items.values()),
          Map.of("format", "pt", "model", modelDir.toString(), "dtype", "float32"));
      return logits;
    }
  }

  /** Whether a directory is a checkpoint of a training run (has the trainer's state). */
  /**
   * Whether dir is a training run's output directory (it holds run-config.yaml or checkpoints/) or
   * lies in a run's checkpoints folder; a folder inside a run's output such as {@code <out>/export}
   * is fine.
   */
  static boolean isInsideRun(Path dir) {
    Path abs = dir.toAbsolutePath().normalize();
    if (Files.isRegularFile(abs.resolve(TrainingJob.CONFIG_FILE))
        || Files.isDirectory(abs.resolve("checkpoints"))) {
      return true;
    }
    for (Path p = abs; p != null; p = p.getParent()) {
      if (p.getFileName() != null
          && p.getFileName().toString().equals("checkpoints")
          && p.getParent() != null
          && Files.isRegularFile(p.getParent().resolve(TrainingJob.CONFIG_FILE))) {
        return true;
      }
    }
    return false;
  }

  public static boolean isTrainingCheckpoint(Path dir) {
    return CheckpointStore.isComplete(dir);
  }
}
