package moetune.engine.tensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A tensor in host memory: dtype, shape and little-endian bytes (the safetensors layout). This is
 * how data enters and leaves a {@link moetune.engine.backend.Backend} and how checkpoints are read
 * and written. Immutable in shape and dtype; the bytes may be a memory-mapped slice.
 */
public final class HostTensor {
  private final DType dtype;
  private final long[] shape;
  private final ByteBuffer data; // little-endian, position 0, limit = numel * dtype.bytes()

  public HostTensor(DType dtype, long[] shape, ByteBuffer data) {
    this.dtype = dtype;
    this.shape = shape.clone();
    long n = numel(shape);
    if ((long) data.remaining() != n * dtype.bytes()) {
      throw new IllegalArgumentException(
          "HostTensor: shape "
              + Arrays.toString(shape)
              + " of "
              + dtype
              + " needs "
              + n * dtype.bytes()
              + " bytes, got "
              + data.remaining());
    }
    this.data = data.slice().order(ByteOrder.LITTLE_ENDIAN);
  }

  public static long numel(long[] shape) {
    long n = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
      }
      n = Math.multiplyExact(n, d);
    }
    return n;
  }

  public static HostTensor zeros(DType dtype, long... shape) {
    return new HostTensor(dtype, shape, allocate(numel(shape) * dtype.bytes()));
  }

  /** float32 values, converted (rounding to nearest even) to the given float dtype. */
  public static HostTensor ofFloats(DType dtype, float[] values, long... shape) {
    checkCount(values.length, shape);
    ByteBuffer b = allocate((long) values.length * dtype.bytes());
    switch (dtype) {
      case F32 -> b.asFloatBuffer().put(values);
      case BF16 -> {
        for (int i = 0; i < values.length; i++) b.putShort(2 * i, Floats.floatToBf16(values[i]));
      }
      case F16 -> {
        for (int i = 0; i < values.length; i++) b.putShort(2 * i, Floats.floatToF16(values[i]));
      }
      default -> throw new IllegalArgumentException("ofFloats: " + dtype + " is not a float dtype");
    }
    return new HostTensor(dtype, shape, b);
  }

  public static HostTensor ofFloats(float[] values, long... shape) {
    return ofFloats(DType.F32, values, shape);
  }

  public static HostTensor ofInts(int[] values, long... shape) {
    checkCount(values.length, shape);
    ByteBuffer b = allocate((long) values.length * 4);
    b.asIntBuffer().put(values);
    return new HostTensor(DType.I32, shape, b);
  }

  public static HostTensor ofLongs(long[] values, long... shape) {
    checkCount(values.length, shape);
    ByteBuffer b = allocate((long) values.length * 8);
    b.asLongBuffer().put(values);
    return new HostTensor(DType.I64, shape, b);
  }

  public DType dtype() {
    return dtype;
  }

  public long[] shape() {
    return shape.clone();
  }

  public int rank() {
    return shape.length;
  }

  public long dim(int i) {
    return shape[i < 0 ? shape.length + i : i];
  }

  public long numel() {
    return numel(shape);
  }

  /** The raw little-endian bytes (a read-only view; position 0). */
  public ByteBuffer bytes() {
    return data.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  /** Same bytes, new shape with the same element count. */
  public HostTensor reshape(long... newShape) {
    checkCount(numel(), newShape);
    return new HostTensor(dtype, newShape, data);
  }

  /** Every element as float32 (exact for F32/BF16/F16; I32/I64 converted as by a cast). */
  public float[] toFloatArray() {
    int n = Math.toIntExact(numel());
    float[] out = new float[n];
    switch (dtype) {
      case F32 -> data.asFloatBuffer().get(out);
      case BF16 -> {
        for (int i = 0; i < n; i++) out[i] = Floats.bf16ToFloat(data.getShort(2 * i));
      }
      case F16 -> {
        for (int i = 0; i < n; i++) out[i] = Floats.f16ToFloat(data.getShort(2 * i));
      }
      case I32 -> {
        for (int i = 0; i < n; i++) out[i] = data.getInt(4 * i);
      }
      case I64 -> {
        for (int i = 0; i < n; i++) out[i] = data.getLong(8 * i);
      }
    }
    return out;
  }

  /** Every element as int (I32 and I64 only; I64 values must fit in an int). */
  public int[] toIntArray() {
    int n = Math.toIntExact(numel());
    int[] out = new int[n];
    switch (dtype) {
      case I32 -> data.asIntBuffer().get(out);
      case I64 -> {
        for (int i = 0; i < n; i++) out[i] = Math.toIntExact(data.getLong(8 * i));
      }
      default ->
          throw new IllegalStateException(
              "toIntArray: tensor is " + dtype + ", not an integer type");
    }
    return out;
  }

  /** Every element as long (I32 and I64 only). */
  public long[] toLongArray() {
    int n = Math.toIntExact(numel());
    long[] out = new long[n];
    switch (dtype) {
      case I64 -> data.asLongBuffer().get(out);
      case I32 -> {
        for (int i = 0; i < n; i++) out[i] = data.getInt(4 * i);
      }
      default ->
          throw new IllegalStateException(
              "toLongArray: tensor is " + dtype + ", not an integer type");
    }
    return out;
  }

  /** A copy converted to another dtype (floats round to nearest even; ints convert exactly). */
  public HostTensor to(DType target) {
    if (target == dtype) {
      return this;
    }
    if (target.isFloating()) {
      return ofFloats(target, toFloatArray(), shape);
    }
    if (dtype.isFloating()) {
      throw new IllegalArgumentException("cannot convert " + dtype + " to " + target);
    }
    return target == DType.I32 ? ofInts(toIntArray(), shape) : ofLongs(toLongArray(), shape);
  }

  @Override
  public String toString() {
    return "HostTensor(" + dtype + ", " + Arrays.toString(shape) + ")";
  }

  private static ByteBuffer allocate(long bytes) {
    if (bytes > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "HostTensor of " + bytes + " bytes exceeds 2 GiB; split it");
    }
    return ByteBuffer.allocate((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
  }

  private static void checkCount(long count, long[] shape) {
    if (count != numel(shape)) {
      throw new IllegalArgumentException(
          count + " values do not fill shape " + Arrays.toString(shape));
    }
  }
}
