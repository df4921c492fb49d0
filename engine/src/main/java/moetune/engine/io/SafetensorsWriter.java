package moetune.engine.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.function.Supplier;
import moetune.engine.hf.CheckpointException;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.files.AtomicFiles;

/**
 * Writes safetensors files in the layout the Python {@code safetensors} library reads: 8-byte
 * little-endian header length, a compact JSON header with {@code __metadata__} first and the
 * tensors in the order given, padded with spaces to a multiple of 8 bytes (so every tensor's data
 * starts 8-byte aligned), then the tensors' bytes back to back.
 *
 * <p>Tensors are described up front ({@link Item}: name, dtype, shape) and their data is asked for
 * only while it is written, one tensor at a time, so a model larger than memory can be saved. Every
 * file is written under a temporary name, forced to disk and renamed into place.
 *
 * <p>{@link #writeWeights} shards like HuggingFace: tensors fill a shard in order until the next
 * one would exceed the maximum shard size (a tensor larger than the maximum gets a shard of its
 * own); one shard is written as {@code model.safetensors}, several as {@code
 * model-00001-of-0000N.safetensors} with {@code model.safetensors.index.json}.
 */
public final class SafetensorsWriter {
  private SafetensorsWriter() {}

  /** HuggingFace's default maximum shard size, "5GB". */
  public static final long DEFAULT_MAX_SHARD_BYTES = 5_000_000_000L;

  /** The metadata transformers writes: {@code {"format": "pt"}}. */
  public static final Map<String, String> PT_METADATA = Map.of("format", "pt");

  /**
   * A tensor to write. {@code data} is called once, while the tensor is written; it must return a
   * tensor of this shape, in {@code dtype} or in a float type that converts to it (floats are
   * rounded to nearest even).
   */
  public record Item(String name, DType dtype, long[] shape, Supplier<HostTensor> data) {
    public Item {
      shape = shape.clone();
    }

    @Override
    public long[] shape() {
      return shape.clone();
    }

    public long byteSize() {
      return HostTensor.numel(shape) * dtype.bytes();
    }

    /** An item for a tensor already in memory, written in its own dtype. */
    public static Item of(String name, HostTensor t) {
      return new Item(name, t.dtype(), t.shape(), () -> t);
    }
  }

  /** Writes one safetensors file atomically. */
  public static void writeFile(Path file, List<Item> items, Map<String, String> metadata) {
    Path abs = file.toAbsolutePath();
    checkNames(abs, items);
    Path tmp = abs.resolveSibling("." + abs.getFileName() + ".moetune-tmp-" + UUID.randomUUID());
    try {
      try (FileChannel ch =
          FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
        writeAll(ch, ByteBuffer.wrap(header(items, metadata)));
        for (Item it : items) {
          writeAll(ch, dataOf(abs, it));
        }
        ch.force(true);
      }
      AtomicFiles.moveAtomically(tmp, abs);
      AtomicFiles.forceDirectory(abs.getParent());
    } catch (IOException e) {
      AtomicFiles.deleteQuietly(tmp);
      throw new CheckpointException(abs, null, "cannot write: " + e, e);
    } catch (RuntimeException e) {
      AtomicFiles.deleteQuietly(tmp);
      throw e;
    }
  }

  /**
   * Writes a model's weights into {@code dir}: {@code model.safetensors} when they fit in one
   * shard, otherwise shards plus {@code model.safetensors.index.json}. Each file is atomic; use
   * {@link ModelDirectory#replace} to make the whole set atomic.
   *
   * @return the files written, in order
   */
  public static List<String> writeWeights(Path dir, List<Item> items, long maxShardBytes) {
    checkNames(dir, items);
    List<List<Item>> shards = planShards(items, maxShardBytes);
    if (shards.size() <= 1) {
      writeFile(dir.resolve(MixtralCheckpoint.SINGLE_FILE), items, PT_METADATA);
      return List.of(MixtralCheckpoint.SINGLE_FILE);
    }
    List<String> files = new ArrayList<>();
    Map<String, String> weightMap = new LinkedHashMap<>();
    long totalSize = 0;
    long totalParams = 0;
    for (int s = 0; s < shards.size(); s++) {
      String name =
          String.format(Locale.ROOT, "model-%05d-of-%05d.safetensors", s + 1, shards.size());
      writeFile(dir.resolve(name), shards.get(s), PT_METADATA);
      files.add(name);
      for (Item it : shards.get(s)) {
        weightMap.put(it.name(), name);
        totalSize += it.byteSize();
        totalParams += HostTensor.numel(it.shape());
      }
    }
    SafetensorsIndex index = new SafetensorsIndex(weightMap, totalSize, totalParams);
    ModelDirectory.writeFile(
        dir.resolve(SafetensorsIndex.FILE_NAME), index.toJson().getBytes(StandardCharsets.UTF_8));
    files.add(SafetensorsIndex.FILE_NAME);
    return files;
  }

  /** Groups items in order into shards of at most {@code maxShardBytes} of tensor data. */
  public static List<List<Item>> planShards(List<Item> items, long maxShardBytes) {
    if (maxShardBytes <= 0) {
      throw new IllegalArgumentException("max shard size must be positive, got " + maxShardBytes);
    }
    List<List<Item>> shards = new ArrayList<>();
    List<Item> current = new ArrayList<>();
    long size = 0;
    for (Item it : items) {
      long b = it.byteSize();
      if (!current.isEmpty() && size + b > maxShardBytes) {
        shards.add(current);
        current = new ArrayList<>();
        size = 0;
      }
      current.add(it);
      size += b;
    }
    if (!current.isEmpty() || shards.isEmpty()) {
      shards.add(current);
    }
    return shards;
  }

  /**
   * Parses a shard size as HuggingFace does: a plain number of bytes, or an integer with KB, MB, GB
   * (powers of 10), KiB, MiB, GiB (powers of 2), case-insensitive; a lowercase final 'b' after
   * K/M/G ("5Gb") means bits, as in HuggingFace.
   */
  public static long parseSize(String s) {
    String t = s.strip();
    String u = t.toUpperCase(Locale.ROOT);
    long mult = 1;
    int cut = 0;
    String[] binary = {"KIB", "MIB", "GIB", "TIB"};
    String[] decimal = {"KB", "MB", "GB", "TB"};
    boolean bits = false;
    for (int i = 0; i < 4 && cut == 0; i++) {
      if (u.endsWith(binary[i])) {
        mult = 1L << (10 * (i + 1));
        cut = 3;
      } else if (u.endsWith(decimal[i])) {
        mult = (long) Math.pow(10, 3 * (i + 1));
        cut = 2;
        bits = t.endsWith("b");
      }
    }
    if (cut == 0 && u.endsWith("B")) {
      cut = 1;
    }
    String num = t.substring(0, t.length() - cut).strip();
    long v;
    try {
      v = Math.multiplyExact(Long.parseLong(num), mult);
    } catch (NumberFormatException | ArithmeticException e) {
      throw new IllegalArgumentException(
          "shard size '" + s + "' is not a size; use e.g. 5GB, 500MB, 2GiB or a number of bytes");
    }
    if (bits) {
      v /= 8;
    }
    if (v <= 0) {
      throw new IllegalArgumentException("shard size '" + s + "' must be positive");
    }
    return v;
  }

  /** The header bytes: 8-byte length, then JSON padded with spaces to a multiple of 8. */
  static byte[] header(List<Item> items, Map<String, String> metadata) throws IOException {
    ByteArrayOutputStream json = new ByteArrayOutputStream();
    try (JsonGenerator g = new JsonFactory().createGenerator(json)) {
      g.writeStartObject();
      if (metadata != null && !metadata.isEmpty()) {
        g.writeObjectFieldStart(SafetensorsHeader.METADATA_KEY);
        for (Map.Entry<String, String> e : metadata.entrySet()) {
          g.writeStringField(e.getKey(), e.getValue());
        }
        g.writeEndObject();
      }
      long offset = 0;
      for (Item it : items) {
        g.writeObjectFieldStart(it.name());
        g.writeStringField("dtype", SafetensorsDtype.of(it.dtype()).name());
        g.writeArrayFieldStart("shape");
        for (long d : it.shape()) {
          g.writeNumber(d);
        }
        g.writeEndArray();
        g.writeArrayFieldStart("data_offsets");
        g.writeNumber(offset);
        offset += it.byteSize();
        g.writeNumber(offset);
        g.writeEndArray();
        g.writeEndObject();
      }
      g.writeEndObject();
    }
    int n = json.size();
    int padded = (n + 7) / 8 * 8;
    ByteBuffer out = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
    out.putLong(padded).put(json.toByteArray());
    while (out.hasRemaining()) {
      out.put((byte) ' ');
    }
    return out.array();
  }

  /** The item's data in its declared dtype and shape, converting floats. */
  private static ByteBuffer dataOf(Path file, Item it) {
    HostTensor t = it.data().get();
    String what = CheckpointException.tensor(it.name());
    if (t == null) {
      throw new CheckpointException(file, what, "no data was supplied");
    }
    if (!Arrays.equals(t.shape(), it.shape())) {
      throw new CheckpointException(
          file,
          what,
          "data has shape "
              + Arrays.toString(t.shape())
              + " but "
              + Arrays.toString(it.shape())
              + " was declared");
    }
    if (t.dtype() != it.dtype()) {
      if (!t.dtype().isFloating() || !it.dtype().isFloating()) {
        throw new CheckpointException(
            file, what, "data is " + t.dtype() + " but " + it.dtype() + " was declared");
      }
      t = t.to(it.dtype());
    }
    return t.bytes();
  }

  private static void writeAll(FileChannel ch, ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      ch.write(b);
    }
  }

  private static void checkNames(Path where, List<Item> items) {
    Set<String> seen = new HashSet<>();
    for (Item it : items) {
      if (it.name().equals(SafetensorsHeader.METADATA_KEY) || !seen.add(it.name())) {
        throw new CheckpointException(
            where,
            CheckpointException.tensor(it.name()),
            "is reserved or given twice; tensor names must be unique");
      }
    }
  }
}
