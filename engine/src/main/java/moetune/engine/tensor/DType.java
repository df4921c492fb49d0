package moetune.engine.tensor;

/**
 * The element types a moetune tensor can hold. Floating types are computed in float32 on the CPU;
 * BF16 and F16 exist for storage (checkpoints) and for the GPU's low-precision mode.
 */
public enum DType {
  F32(4, true, "F32"),
  BF16(2, true, "BF16"),
  F16(2, true, "F16"),
  I32(4, false, "I32"),
  I64(8, false, "I64");

  private final int bytes;
  private final boolean floating;
  private final String safetensorsName;

  DType(int bytes, boolean floating, String safetensorsName) {
    this.bytes = bytes;
    this.floating = floating;
    this.safetensorsName = safetensorsName;
  }

  /** Size of one element in bytes. */
  public int bytes() {
    return bytes;
  }

  public boolean isFloating() {
    return floating;
  }

  /** The dtype's name in a safetensors header ("F32", "BF16", ...). */
  public String safetensorsName() {
    return safetensorsName;
  }

  /** Parses a user-facing name: fp32/f32/float32, bf16/bfloat16, fp16/f16/float16, i32, i64. */
  public static DType parse(String s) {
    return switch (s.toLowerCase(java.util.Locale.ROOT)) {
      case "f32", "fp32", "float32", "float" -> F32;
      case "bf16", "bfloat16" -> BF16;
      case "f16", "fp16", "float16", "half" -> F16;
      case "i32", "int32" -> I32;
      case "i64", "int64" -> I64;
      default ->
          throw new IllegalArgumentException(
              "unknown dtype '" + s + "'; use one of fp32, bf16, fp16, i32, i64");
    };
  }
}
