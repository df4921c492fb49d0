package moetune.engine.backend.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * TMA descriptors (CUtensorMap) for the warp-specialised MoE kernels (moe_wgmma_ws.cu), encoded by
 * the driver's {@code cuTensorMapEncodeTiled} bound with FFM (JCuda 12.6 does not have it). A map
 * is 128 opaque bytes, returned as 32 ints: {@link KernelModule#launch} passes an int[] by value,
 * which is how the kernels take it ({@code const __grid_constant__ CUtensorMap}).
 *
 * <p>Every map here is bf16 (operands) or float32 (variant 14's dW), dimension 0 contiguous, zeros
 * out of bounds, L2 promotion of 256 bytes, swizzled by its box's row: a row of 128 bytes (64 bf16,
 * 32 float32) takes the 128-byte swizzle, a row of 64 bytes the 64-byte swizzle (one swizzle row
 * each; the kernels address shared memory accordingly).
 */
final class TensorMaps {
  // CUtensorMapDataType, CUtensorMapInterleave, CUtensorMapSwizzle, CUtensorMapL2promotion and
  // CUtensorMapFloatOOBfill values from cuda.h
  private static final int FLOAT32 = 7,
      BFLOAT16 = 9,
      INTERLEAVE_NONE = 0,
      SWIZZLE_64B = 2,
      SWIZZLE_128B = 3,
      L2_256B = 3,
      OOB_ZERO = 0;

  private static MethodHandle encode;

  private TensorMaps() {}

  private static synchronized MethodHandle encode() {
    if (encode == null) {
      encode =
          Driver.downcall(
              "cuTensorMapEncodeTiled",
              FunctionDescriptor.of(
                  JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS, ADDRESS,
                  ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT),
              "the MoE TMA kernels need it; MOETUNE_MOE_KERNEL=v2 runs without them");
    }
    return encode;
  }

  /**
   * The map of a bf16 tensor at device address {@code base} with extents {@code dims} (dims[0]
   * contiguous, the rest packed row-major behind it), read in boxes of {@code box}.
   */
  static int[] bf16(long base, long[] dims, int[] box, String what) {
    return cached(2, base, dims, box, what);
  }

  /** {@link #bf16} for a float32 tensor (box rows of 32 or 16 elements). */
  static int[] f32(long base, long[] dims, int[] box, String what) {
    return cached(4, base, dims, box, what);
  }

  private static int[] cached(int elemBytes, long base, long[] dims, int[] box, String what) {
    check(elemBytes, base, dims, box, what);
    Key key = new Key(elemBytes, base, dims, box);
    synchronized (CACHE) {
      int[] hit = CACHE.get(key);
      if (hit != null) {
        return hit.clone();
      }
    }
    int[] map = encode(elemBytes, base, dims, box, what);
    synchronized (CACHE) { // the caller may reuse its arrays
      CACHE.put(new Key(elemBytes, base, dims.clone(), box.clone()), map);
    }
    return map.clone();
  }

  // A map is a pure function of (element size, base, dims, box) (the rest is fixed above), so maps
  // are cached by that key whatever tensor lives at the address now: every MoE launch needs two,
  // and the allocator hands the same addresses back step after step. Bounded, least recently used
  // out.
  // (Compared by value without building strings: two lookups per MoE launch.)
  private static final class Key {
    private final int elemBytes;
    private final long base;
    private final long[] dims;
    private final int[] box;
    private final int hash;

    Key(int elemBytes, long base, long[] dims, int[] box) {
      this.elemBytes = elemBytes;
      this.base = base;
      this.dims = dims;
      this.box = box;
      this.hash =
          31 * (31 * (31 * elemBytes + Long.hashCode(base)) + Arrays.hashCode(dims))
              + Arrays.hashCode(box);
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Key k
          && k.elemBytes == elemBytes
          && k.base == base
          && Arrays.equals(k.dims, dims)
          && Arrays.equals(k.box, box);
    }

    @Override
    public int hashCode() {
      return hash;
    }
  }

  private static final int CACHE_SIZE = 512;
  private static final Map<Key, int[]> CACHE =
      new LinkedHashMap<>(64, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Key, int[]> eldest) {
          return size() > CACHE_SIZE;
        }
      };

  /** The driver's encoding of a bf16 map, not cached (tests compare it with {@link #bf16}). */
  static int[] encode(long base, long[] dims, int[] box, String what) {
    return encode(2, base, dims, box, what);
  }

  private static int[] encode(int elemBytes, long base, long[] dims, int[] box, String what) {
    int rank = dims.length;
    try (Arena a = Arena.ofConfined()) {
      MemorySegment map = a.allocate(128, 64);
      MemorySegment gd = a.allocate(JAVA_LONG, rank);
      MemorySegment gs = a.allocate(JAVA_LONG, Math.max(1, rank - 1));
      MemorySegment bx = a.allocate(JAVA_INT, rank);
      MemorySegment es = a.allocate(JAVA_INT, rank);
      long stride = elemBytes;
      for (int i = 0; i < rank; i++) {
        gd.setAtIndex(JAVA_LONG, i, dims[i]);
        bx.setAtIndex(JAVA_INT, i, box[i]);
        es.setAtIndex(JAVA_INT, i, 1);
        if (i > 0) {
          gs.setAtIndex(JAVA_LONG, i - 1, stride);
        }
        stride *= dims[i];
      }
      int rc =
          (int)
              encode()
                  .invokeExact(
                      map,
                      elemBytes == 4 ? FLOAT32 : BFLOAT16,
                      rank,
                      base,
                      gd,
                      gs,
                      bx,
                      es,
                      INTERLEAVE_NONE,
                      box[0] * elemBytes == 64 ? SWIZZLE_64B : SWIZZLE_128B,
                      L2_256B,
                      OOB_ZERO);
      Driver.check(rc, "cuTensorMapEncodeTiled", what + " " + describe(dims, box));
      return map.toArray(JAVA_INT);
    } catch (CudaException e) {
      throw e;
    } catch (Throwable t) {
      throw new CudaException("cuTensorMapEncodeTiled for " + what + ": " + t);
    }
  }

  /**
   * The encoder's own limits for a bf16 map, checked so a bad map fails with the operand's name.
   */
  static void check(long base, long[] dims, int[] box, String what) {
    check(2, base, dims, box, what);
  }

  private static void check(int elemBytes, long base, long[] dims, int[] box, String what) {
    String shape = describe(dims, box);
    if (dims.length < 1 || dims.length > 5 || box.length != dims.length) {
      throw new IllegalArgumentException(what + ": a tensor map has 1 to 5 dimensions, " + shape);
    }
    if (base % 16 != 0) {
      throw new IllegalArgumentException(
          what + ": TMA needs a 16-byte-aligned base, got address " + base);
    }
    String type = elemBytes == 4 ? "float32" : "bf16";
    int per16 = 16 / elemBytes, row128 = 128 / elemBytes, row64 = 64 / elemBytes;
    if (dims[0] % per16 != 0) {
      throw new IllegalArgumentException(
          "%s: TMA needs the contiguous extent to be a multiple of %d %s, %s"
              .formatted(what, per16, type, shape));
    }
    if (box[0] != row128 && box[0] != row64) {
      throw new IllegalArgumentException(
          ("%s: a box row is %d %s (128-byte swizzle) or %d (64-byte swizzle), at most %d %s per"
                  + " box row, %s")
              .formatted(what, row128, type, row64, row128, type, shape));
    }
    for (int i = 0; i < dims.length; i++) {
      if (dims[i] < 1 || dims[i] > (1L << 32) || box[i] < 1 || box[i] > 256) {
        throw new IllegalArgumentException(
            what + ": extents 1..2^32 and boxes 1..256 per dimension, " + shape);
      }
    }
  }

  private static String describe(long[] dims, int[] box) {
    return "dims " + Arrays.toString(dims) + " box " + Arrays.toString(box);
  }
}
