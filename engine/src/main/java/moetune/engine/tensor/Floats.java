package moetune.engine.tensor;

/**
 * Exact conversions between float32 and the 16-bit float formats. Narrowing rounds to nearest, ties
 * to even (as torch does); widening is exact. NaN stays NaN, infinities stay infinite.
 */
public final class Floats {
  private Floats() {}

  /** bfloat16 bits to float32: exact (bf16 is the top half of a float32). */
  public static float bf16ToFloat(short bits) {
    return Float.intBitsToFloat((bits & 0xffff) << 16);
  }

  /** float32 to bfloat16 bits, round to nearest even; NaN maps to a quiet NaN. */
  public static short floatToBf16(float f) {
    int x = Float.floatToRawIntBits(f);
    if ((x & 0x7fffffff) > 0x7f800000) {
      return (short) ((x >>> 16) | 0x0040);
    }
    int lsb = (x >>> 16) & 1;
    return (short) ((x + 0x7fff + lsb) >>> 16);
  }

  /** Rounds a float32 value to the nearest bfloat16 value (still a float32). */
  public static float roundToBf16(float f) {
    return bf16ToFloat(floatToBf16(f));
  }

  /** IEEE half bits to float32: exact. */
  public static float f16ToFloat(short bits) {
    return Float.float16ToFloat(bits);
  }

  /** float32 to IEEE half bits, round to nearest even. */
  public static short floatToF16(float f) {
    return Float.floatToFloat16(f);
  }
}
