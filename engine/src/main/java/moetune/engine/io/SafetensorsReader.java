package moetune.engine.io;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import moetune.engine.hf.CheckpointException;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;

/**
 * Reads one safetensors file. The header is parsed and validated when the file is opened (see
 * {@link SafetensorsHeader}); the data area is memory-mapped with {@link FileChannel#map} into a
 * shared arena, so files larger than 2 GiB work and {@link #close} unmaps at once.
 *
 * <p>{@link #read} returns a heap copy that stays valid after {@link #close}; types other than F32,
 * BF16, F16, I32 and I64 are converted as {@link SafetensorsDtype} describes. {@link #view} returns
 * a zero-copy view of the mapping for the native types; it fails with an IllegalStateException once
 * the reader is closed. A reader may be used from several threads.
 */
public final class SafetensorsReader implements AutoCloseable {
  private static final ValueLayout.OfShort LE_SHORT =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfInt LE_INT =
      ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfLong LE_LONG =
      ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfFloat LE_FLOAT =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfDouble LE_DOUBLE =
      ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private final Path file;
  private final SafetensorsHeader header;
  private final Map<String, SafetensorsEntry> byName;
  private final Arena arena;
  private final MemorySegment data; // the data area: file bytes [8 + N, size)

  private SafetensorsReader(Path file, SafetensorsHeader header, Arena arena, MemorySegment data) {
    this.file = file;
    this.header = header;
    this.arena = arena;
    this.data = data;
    this.byName = new HashMap<>();
    for (SafetensorsEntry e : header.entries()) {
      byName.put(e.name(), e);
    }
  }

  /**
   * Opens, validates and maps a file.
   *
   * @throws CheckpointException naming the file (and tensor) when it is missing, unreadable or not
   *     a valid safetensors file
   */
  public static SafetensorsReader open(Path file) {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = ch.size();
      ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      readFully(ch, len, 0);
      long n = SafetensorsHeader.checkLength(file, size, size < 8 ? 0 : len.getLong(0));
      ByteBuffer json = ByteBuffer.allocate((int) n);
      readFully(ch, json, 8);
      json.flip();
      long dataLength = size - 8 - n;
      SafetensorsHeader header = SafetensorsHeader.parse(file, json, dataLength);
      Arena arena = Arena.ofShared();
      try {
        MemorySegment seg =
            dataLength == 0
                ? MemorySegment.NULL
                : ch.map(FileChannel.MapMode.READ_ONLY, 8 + n, dataLength, arena);
        return new SafetensorsReader(file, header, arena, seg);
      } catch (IOException | RuntimeException e) {
        arena.close();
        throw e;
      }
    } catch (NoSuchFileException e) {
      throw new CheckpointException(file, null, "file not found", e);
    } catch (IOException e) {
      throw new CheckpointException(file, null, "cannot read: " + e, e);
    }
  }

  private static void readFully(FileChannel ch, ByteBuffer dst, long pos) throws IOException {
    while (dst.hasRemaining()) {
      int r = ch.read(dst, pos + dst.position());
      if (r < 0) {
        break; // a short file is reported by the length checks
      }
    }
  }

  public Path file() {
    return file;
  }

  /** The {@code __metadata__} map (empty if the header has none). */
  public Map<String, String> metadata() {
    return header.metadata();
  }

  /** Tensor names in data-offset order. */
  public List<String> names() {
    List<String> out = new ArrayList<>(header.entries().size());
    for (SafetensorsEntry e : header.entries()) {
      out.add(e.name());
    }
    return out;
  }

  /** Entries in data-offset order. */
  public List<SafetensorsEntry> entries() {
    return header.entries();
  }

  public boolean contains(String name) {
    return byName.containsKey(name);
  }

  /** The header entry of a tensor; a CheckpointException naming it if the file lacks it. */
  public SafetensorsEntry entry(String name) {
    SafetensorsEntry e = byName.get(name);
    if (e == null) {
      throw new CheckpointException(
          file,
          CheckpointException.tensor(name),
          "not in this file (" + byName.size() + " tensors)");
    }
    return e;
  }

  /** Absolute file offset of the data area (8 + header length). */
  public long dataStart() {
    return 8 + header.n();
  }

  /** A heap copy of a whole tensor, converted to its {@link SafetensorsDtype#readAs()} type. */
  public HostTensor read(String name) {
    SafetensorsEntry e = entry(name);
    return convert(e, data.asSlice(e.begin(), e.byteSize()), e.numel(), e.readShape());
  }

  /**
   * A heap copy of {@code numel(shape)} consecutive elements starting at element {@code first} of
   * the row-major tensor (e.g. one expert of a fused (E, 2F, D) tensor), converted as {@link #read}
   * does. The range must lie in the tensor and start and end on whole bytes. For C64, elements are
   * counted as floats of the (..., 2) shape that {@link #read} returns.
   */
  public HostTensor readRange(String name, long first, long... shape) {
    SafetensorsEntry e = entry(name);
    long count = HostTensor.numel(shape);
    long bits = e.dtype() == SafetensorsDtype.C64 ? 32 : e.dtype().bits();
    long perElem = e.dtype() == SafetensorsDtype.C64 ? 2 : 1;
    long total = e.numel() * perElem;
    if (first < 0 || first + count > total || (first * bits) % 8 != 0 || (count * bits) % 8 != 0) {
      throw new CheckpointException(
          file,
          CheckpointException.tensor(name),
          "element range ["
              + first
              + ", "
              + (first + count)
              + ") is outside the tensor's "
              + total
              + " elements or not byte aligned");
    }
    MemorySegment slice = data.asSlice(e.begin() + first * bits / 8, count * bits / 8);
    SafetensorsEntry sub =
        new SafetensorsEntry(
            name,
            e.dtype() == SafetensorsDtype.C64 ? SafetensorsDtype.F32 : e.dtype(),
            shape,
            0,
            count * bits / 8);
    return convert(sub, slice, count, shape);
  }

  /** A tensor's values as float32 (floating types only). */
  public float[] readFloats(String name) {
    SafetensorsEntry e = entry(name);
    if (!e.dtype().isFloating()) {
      throw new CheckpointException(
          file, CheckpointException.tensor(name), "is " + e.dtype() + ", not a floating type");
    }
    return read(name).toFloatArray();
  }

  /**
   * A zero-copy view of a tensor stored as F32, BF16, F16, I32 or I64. Valid only until {@link
   * #close}; tensors over 2 GiB cannot be viewed (read them in ranges).
   */
  public HostTensor view(String name) {
    SafetensorsEntry e = entry(name);
    if (!e.dtype().isNative()) {
      throw new CheckpointException(
          file,
          CheckpointException.tensor(name),
          "is " + e.dtype() + ", which needs conversion; use read() instead of view()");
    }
    checkSize(e.name(), e.byteSize());
    ByteBuffer b = data.asSlice(e.begin(), e.byteSize()).asByteBuffer();
    return new HostTensor(e.dtype().readAs(), e.shape(), b);
  }

  /** Unmaps the file. Tensors from {@link #read} stay valid; views from {@link #view} do not. */
  @Override
  public void close() {
    if (arena.scope().isAlive()) {
      arena.close();
    }
  }

  private HostTensor convert(SafetensorsEntry e, MemorySegment src, long numel, long[] shape) {
    SafetensorsDtype t = e.dtype();
    DType out = t.readAs();
    long outElems = t == SafetensorsDtype.C64 ? 2 * numel : numel;
    checkSize(e.name(), outElems * out.bytes());
    int n = (int) outElems;
    ByteBuffer dst = ByteBuffer.allocate(n * out.bytes()).order(ByteOrder.LITTLE_ENDIAN);
    if (t.isNative()) {
      MemorySegment.ofBuffer(dst).copyFrom(src);
    } else if (out == DType.F32) {
      for (int i = 0; i < n; i++) {
        dst.putFloat(4 * i, floatAt(t, src, i));
      }
    } else {
      for (int i = 0; i < n; i++) {
        dst.putLong(8 * i, longAt(e, src, i));
      }
    }
    return new HostTensor(out, shape, dst);
  }

  private static float floatAt(SafetensorsDtype t, MemorySegment s, long i) {
    return switch (t) {
      case F64 -> (float) s.get(LE_DOUBLE, 8 * i);
      case C64 -> s.get(LE_FLOAT, 4 * i); // (real, imaginary) pairs are consecutive floats
      case F8_E4M3 -> SafetensorsDtype.f8e4m3ToFloat(s.get(ValueLayout.JAVA_BYTE, i));
      case F8_E5M2 -> SafetensorsDtype.f8e5m2ToFloat(s.get(ValueLayout.JAVA_BYTE, i));
      case F8_E8M0 -> SafetensorsDtype.f8e8m0ToFloat(s.get(ValueLayout.JAVA_BYTE, i));
      case F4 -> {
        int b = s.get(ValueLayout.JAVA_BYTE, i >>> 1);
        yield SafetensorsDtype.f4ToFloat((i & 1) == 0 ? b & 0xf : (b >>> 4) & 0xf);
      }
      case F6_E2M3 -> SafetensorsDtype.f6e2m3ToFloat(sixBits(s, i));
      case F6_E3M2 -> SafetensorsDtype.f6e3m2ToFloat(sixBits(s, i));
      default -> throw new IllegalStateException("not a converted float type: " + t);
    };
  }

  /** Element i of a little-endian 6-bit stream: bits [6i, 6i+6). */
  private static int sixBits(MemorySegment s, long i) {
    long bit = 6 * i;
    long byteIdx = bit >>> 3;
    int lo = s.get(ValueLayout.JAVA_BYTE, byteIdx) & 0xff;
    int hi = byteIdx + 1 < s.byteSize() ? s.get(ValueLayout.JAVA_BYTE, byteIdx + 1) & 0xff : 0;
    return ((lo | (hi << 8)) >>> (bit & 7)) & 0x3f;
  }

  private long longAt(SafetensorsEntry e, MemorySegment s, long i) {
    return switch (e.dtype()) {
      case BOOL -> s.get(ValueLayout.JAVA_BYTE, i) != 0 ? 1 : 0;
      case U8 -> s.get(ValueLayout.JAVA_BYTE, i) & 0xffL;
      case I8 -> s.get(ValueLayout.JAVA_BYTE, i);
      case I16 -> s.get(LE_SHORT, 2 * i);
      case U16 -> s.get(LE_SHORT, 2 * i) & 0xffffL;
      case U32 -> s.get(LE_INT, 4 * i) & 0xffffffffL;
      case U64 -> {
        long v = s.get(LE_LONG, 8 * i);
        if (v < 0) {
          throw new CheckpointException(
              file,
              CheckpointException.tensor(e.name()),
              "U64 element "
                  + i
                  + " = "
                  + Long.toUnsignedString(v)
                  + " exceeds the I64 range moetune reads U64 into");
        }
        yield v;
      }
      default -> throw new IllegalStateException("not a converted integer type: " + e.dtype());
    };
  }

  private void checkSize(String name, long bytes) {
    if (bytes > Integer.MAX_VALUE) {
      throw new CheckpointException(
          file,
          CheckpointException.tensor(name),
          "is "
              + bytes
              + " bytes once read, over the 2 GiB a HostTensor holds; read it in ranges"
              + " (readRange)");
    }
  }

  @Override
  public String toString() {
    return "SafetensorsReader(" + file + ", " + header.entries().size() + " tensors)";
  }
}
