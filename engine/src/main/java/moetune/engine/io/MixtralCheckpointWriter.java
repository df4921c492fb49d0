package moetune.engine.io;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import moetune.engine.hf.CheckpointException;
import moetune.engine.hf.GenerationConfig;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;

/**
 * Saves a Mixtral model directory in the hub layout: weights (sharded as {@link
 * SafetensorsWriter#writeWeights} does), config.json (with {@code dtype} set to the saved type),
 * generation_config.json and any extra files (tokenizer files), all built in a temporary sibling
 * directory and swapped in by {@link ModelDirectory#replace}.
 */
final class MixtralCheckpointWriter {
  private MixtralCheckpointWriter() {}

  static void save(
      Path dir,
      MixtralConfig config,
      GenerationConfig generation,
      Function<String, HostTensor> weights,
      DType dtype,
      long maxShardBytes,
      List<Path> extraFiles) {
    if (!dtype.isFloating()) {
      throw new IllegalArgumentException("save dtype must be F32, BF16 or F16, got " + dtype);
    }
    MixtralConfig saved = config.toBuilder().set(b -> b.dtype = torchName(dtype)).build();
    GenerationConfig gen =
        generation != null ? generation : GenerationConfig.fromModelConfig(config);
    List<SafetensorsWriter.Item> items = new ArrayList<>();
    for (Map.Entry<String, long[]> e : MixtralNames.hubShapes(config).entrySet()) {
      String name = e.getKey();
      long[] shape = e.getValue();
      items.add(
          new SafetensorsWriter.Item(name, dtype, shape, () -> checked(dir, name, shape, weights)));
    }
    List<String> reserved = new ArrayList<>(List.of("config.json", "generation_config.json"));
    ModelDirectory.replace(
        dir,
        tmp -> {
          reserved.addAll(SafetensorsWriter.writeWeights(tmp, items, maxShardBytes));
          Files.writeString(tmp.resolve("config.json"), saved.toJson(), StandardCharsets.UTF_8);
          Files.writeString(
              tmp.resolve("generation_config.json"), gen.toJson(), StandardCharsets.UTF_8);
          copyExtras(dir, tmp, extraFiles, reserved);
        });
  }

  private static HostTensor checked(
      Path dir, String name, long[] shape, Function<String, HostTensor> weights) {
    HostTensor t = weights.apply(name);
    if (t == null) {
      throw new CheckpointException(dir, CheckpointException.tensor(name), "no weights supplied");
    }
    if (!t.dtype().isFloating() || !Arrays.equals(t.shape(), shape)) {
      throw new CheckpointException(
          dir,
          CheckpointException.tensor(name),
          "supplied as "
              + t.dtype()
              + Arrays.toString(t.shape())
              + ", the config needs a float tensor of shape "
              + Arrays.toString(shape));
    }
    return t;
  }

  private static void copyExtras(Path dir, Path tmp, List<Path> extras, List<String> reserved)
      throws IOException {
    for (Path f : extras) {
      String n = f.getFileName().toString();
      if (reserved.contains(n)) {
        throw new CheckpointException(
            f,
            null,
            "would overwrite the " + n + " that saving writes; leave it out of the extras");
      }
      if (!Files.isRegularFile(f)) {
        throw new CheckpointException(f, null, "extra file to copy into " + dir + " not found");
      }
      Files.copy(f, tmp.resolve(n));
    }
  }

  /** The name transformers writes in config.json's "dtype". */
  static String torchName(DType d) {
    return switch (d) {
      case F32 -> "float32";
      case BF16 -> "bfloat16";
      case F16 -> "float16";
      default -> throw new IllegalArgumentException("not a float dtype: " + d);
    };
  }
}
