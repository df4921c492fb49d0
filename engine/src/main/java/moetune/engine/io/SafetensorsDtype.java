package moetune.engine.io;

import java.util.Arrays;
import java.util.stream.Collectors;
import moetune.engine.tensor.DType;

/**
 * Every element type the safetensors format defines (safetensors 0.6: the 15 classic types plus F4,
 * F6_E2M3, F6_E3M2, F8_E8M0 and C64), with its width in bits and the moetune {@link DType} it is
 * read as.
 *
 * <p>F32, BF16, F16, I32 and I64 are read as they are. Every other type is converted on read:
 *
 * <ul>
 *   <li>F8_E4M3 (OCP E4M3FN: bias 7, no infinities, S.1111.111 is NaN), F8_E5M2 (IEEE-like, bias
 *       15), F8_E8M0 (OCP scale: 2^(e-127), 0xFF is NaN), F6_E2M3, F6_E3M2 and F4 (OCP MX E2M1) to
 *       F32, exactly: every value of these formats is a float32 value;
 *   <li>F64 to F32, rounding to nearest even as torch's {@code .float()} does (exact where the
 *       value is a float32 value; overflow gives an infinity);
 *   <li>C64 to F32 with one more trailing dimension of 2 holding (real, imaginary), the layout of
 *       torch's {@code view_as_real};
 *   <li>BOOL, U8, I8, U16, I16, U32 and U64 to I64, exactly (BOOL: nonzero is 1); a U64 value above
 *       2^63-1 has no I64 value and is refused by name.
 * </ul>
 *
 * <p>Packed sub-byte types: F4 holds two elements per byte, element 2i in the low nibble (as
 * torch's {@code float4_e2m1fn_x2}); F6 elements are read as a little-endian bit stream, element i
 * in bits [6i, 6i+6) (safetensors fixes the width but not the bit order; torch has no 6-bit type,
 * so this is moetune's choice). A tensor's element count times the width must be a whole number of
 * bytes.
 */
public enum SafetensorsDtype {
  BOOL(8, DType.I64),
  F4(4, DType.F32),
  F6_E2M3(6, DType.F32),
  F6_E3M2(6, DType.F32),
  U8(8, DType.I64),
  I8(8, DType.I64),
  F8_E5M2(8, DType.F32),
  F8_E4M3(8, DType.F32),
  F8_E8M0(8, DType.F32),
  I16(16, DType.I64),
  U16(16, DType.I64),
  F16(16, DType.F16),
  BF16(16, DType.BF16),
  I32(32, DType.I32),
  U32(32, DType.I64),
  F32(32, DType.F32),
  C64(64, DType.F32),
  F64(64, DType.F32),
  I64(64, DType.I64),
  U64(64, DType.I64);

  private final int bits;
  private final DType readAs;

  SafetensorsDtype(int bits, DType readAs) {
    this.bits = bits;
    this.readAs = readAs;
  }

  /** Width of one element in bits (4, 6, 8, 16, 32 or 64). */
  public int bits() {
    return bits;
  }

  /** The moetune dtype a tensor of this type is read as. */
  public DType readAs() {
    return readAs;
  }

  /** True when the bytes are stored exactly as moetune holds them (no conversion on read). */
  public boolean isNative() {
    return this == F32 || this == BF16 || this == F16 || this == I32 || this == I64;
  }

  /** True for the floating types (C64 included). */
  public boolean isFloating() {
    return readAs == DType.F32 || readAs == DType.BF16 || readAs == DType.F16;
  }

  /** The safetensors type moetune writes for a moetune dtype. */
  public static SafetensorsDtype of(DType d) {
    return switch (d) {
      case F32 -> F32;
      case BF16 -> BF16;
      case F16 -> F16;
      case I32 -> I32;
      case I64 -> I64;
    };
  }

  /** The type named in a header, or null if the format defines no such type. */
  public static SafetensorsDtype byName(String name) {
    for (SafetensorsDtype t : values()) {
      if (t.name().equals(name)) {
        return t;
      }
    }
    return null;
  }

  /** All names, for error messages. */
  public static String allNames() {
    return Arrays.stream(values()).map(Enum::name).collect(Collectors.joining(", "));
  }

  /**
   * Bytes taken by {@code numel} elements, or -1 when they do not fill a whole number of bytes.
   *
   * @throws ArithmeticException on overflow
   */
  public long byteSize(long numel) {
    long totalBits = Math.multiplyExact(numel, (long) bits);
    return totalBits % 8 == 0 ? totalBits / 8 : -1;
  }

  /** F8_E4M3 (E4M3FN) bits to float32, exactly. */
  static float f8e4m3ToFloat(int b) {
    if ((b & 0x7f) == 0x7f) {
      return Float.NaN;
    }
    return minifloat(b, 4, 3, 7);
  }

  /** F8_E5M2 bits to float32, exactly: E5M2 is the top byte of an IEEE half. */
  static float f8e5m2ToFloat(int b) {
    return Float.float16ToFloat((short) ((b & 0xff) << 8));
  }

  /** F8_E8M0 bits (an unsigned exponent, bias 127) to float32, exactly; 0xFF is NaN. */
  static float f8e8m0ToFloat(int b) {
    int e = b & 0xff;
    return e == 0xff ? Float.NaN : Math.scalb(1.0f, e - 127);
  }

  /** F6_E2M3 bits to float32 (bias 1, no infinities or NaN). */
  static float f6e2m3ToFloat(int b) {
    return minifloat(b, 2, 3, 1);
  }

  /** F6_E3M2 bits to float32 (bias 3, no infinities or NaN). */
  static float f6e3m2ToFloat(int b) {
    return minifloat(b, 3, 2, 3);
  }

  /** F4 (E2M1) bits to float32 (bias 1): 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives. */
  static float f4ToFloat(int b) {
    return minifloat(b, 2, 1, 1);
  }

  /**
   * A finite minifloat with {@code e} exponent and {@code m} mantissa bits below a sign bit:
   * subnormal when the exponent field is 0. Exact in float32 for every format used here.
   */
  private static float minifloat(int b, int e, int m, int bias) {
    int sign = (b >>> (e + m)) & 1;
    int exp = (b >>> m) & ((1 << e) - 1);
    int man = b & ((1 << m) - 1);
    float mag =
        exp == 0
            ? Math.scalb((float) man, 1 - bias - m)
            : Math.scalb((float) ((1 << m) | man), exp - bias - m);
    return sign == 1 ? -mag : mag;
  }
}
