package moetune.engine.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Floats;
import moetune.engine.tensor.HostTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every safetensors dtype reads to the values its bit patterns define. */
class SafetensorsDtypesTest {
  @TempDir Path tmp;

  private HostTensor readOne(String dtype, long[] shape, byte[] data) throws Exception {
    String shapeJson = java.util.Arrays.toString(shape).replace(" ", "");
    String h =
        "{\"t\":{\"dtype\":\""
            + dtype
            + "\",\"shape\":"
            + shapeJson
            + ",\"data_offsets\":[0,"
            + data.length
            + "]}}";
    Path p = tmp.resolve(dtype + ".safetensors");
    Files.write(p, SafetensorsErrorsTest.raw(h, data));
    try (SafetensorsReader r = SafetensorsReader.open(p)) {
      return r.read("t");
    }
  }

  private static byte[] bytes(int... b) {
    byte[] out = new byte[b.length];
    for (int i = 0; i < b.length; i++) {
      out[i] = (byte) b[i];
    }
    return out;
  }

  private static void assertFloats(float[] want, HostTensor t) {
    assertEquals(DType.F32, t.dtype());
    float[] got = t.toFloatArray();
    assertEquals(want.length, got.length);
    for (int i = 0; i < want.length; i++) {
      assertEquals(
          Float.floatToIntBits(want[i]),
          Float.floatToIntBits(got[i]),
          "element " + i + ": want " + want[i] + " got " + got[i]);
    }
  }

  @Test
  void f8e4m3() throws Exception {
    // 0x38 = 1.0; 0x7E = 448 (max); 0x01 = 2^-9 (smallest subnormal); 0xB8 = -1; 0x7F NaN; 0x08 =
    // 2^-6
    assertFloats(
        new float[] {1f, 448f, 0x1p-9f, -1f, Float.NaN, 0x1p-6f},
        readOne("F8_E4M3", new long[] {6}, bytes(0x38, 0x7e, 0x01, 0xb8, 0x7f, 0x08)));
  }

  @Test
  void f8e5m2() throws Exception {
    // 0x3C = 1.0; 0x7B = 57344 (max); 0x7C = inf; 0x01 = 2^-16; 0xC0 = -2
    assertFloats(
        new float[] {1f, 57344f, Float.POSITIVE_INFINITY, 0x1p-16f, -2f},
        readOne("F8_E5M2", new long[] {5}, bytes(0x3c, 0x7b, 0x7c, 0x01, 0xc0)));
  }

  @Test
  void f8e8m0() throws Exception {
    assertFloats(
        new float[] {1f, 0x1p-127f, 0x1p127f, Float.NaN, 0.5f},
        readOne("F8_E8M0", new long[] {5}, bytes(127, 0, 254, 255, 126)));
  }

  @Test
  void f4PacksLowNibbleFirst() throws Exception {
    // byte 0x71: element 0 = 0x1 = 0.5, element 1 = 0x7 = 6.0; byte 0xA4: 0x4 = 2.0, 0xA = -1.0
    assertFloats(
        new float[] {0.5f, 6f, 2f, -1f}, readOne("F4", new long[] {2, 2}, bytes(0x71, 0xa4)));
  }

  @Test
  void f6AsLittleEndianBitStream() throws Exception {
    // four 6-bit elements a, b, c, d in 3 bytes: bits [0,6)=a, [6,12)=b, [12,18)=c, [18,24)=d
    int a = 0x1f, b = 0x08, c = 0x21, d = 0x3f;
    int stream = a | (b << 6) | (c << 12) | (d << 18);
    byte[] data = bytes(stream & 0xff, (stream >> 8) & 0xff, (stream >> 16) & 0xff);
    // E2M3 (bias 1): 0x1f = 1.875*2^2 = 7.5; 0x08 = 1.0; 0x21 = -(0.125) (subnormal 1/8); 0x3f =
    // -7.5
    assertFloats(new float[] {7.5f, 1f, -0.125f, -7.5f}, readOne("F6_E2M3", new long[] {4}, data));
    // E3M2 (bias 3): 0x1f = 1.75*2^4 = 28; 0x08 = 2^(2-3) = 0.5; 0x21 = -(1/4 * 2^-2) = -0.0625;
    // 0x3f = -28
    assertFloats(new float[] {28f, 0.5f, -0.0625f, -28f}, readOne("F6_E3M2", new long[] {4}, data));
  }

  @Test
  void f64RoundsToNearestFloat() throws Exception {
    double[] v = {0.1, 1e40, -3.25, 1.0000000596046448}; // the last is a tie: rounds to even (1.0)
    ByteBuffer b = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN);
    for (double x : v) {
      b.putDouble(x);
    }
    assertFloats(
        new float[] {0.1f, Float.POSITIVE_INFINITY, -3.25f, 1.0f},
        readOne("F64", new long[] {4}, b.array()));
  }

  @Test
  void c64GainsATrailingPairDimension() throws Exception {
    ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
    b.putFloat(1f).putFloat(-2f).putFloat(3.5f).putFloat(0f);
    HostTensor t = readOne("C64", new long[] {2}, b.array());
    assertArrayEquals(new long[] {2, 2}, t.shape());
    assertFloats(new float[] {1f, -2f, 3.5f, 0f}, t);
  }

  @Test
  void integersWidenToI64Exactly() throws Exception {
    Map<String, Object[]> cases =
        Map.of(
            "BOOL", new Object[] {bytes(0, 1, 7), new long[] {0, 1, 1}},
            "U8", new Object[] {bytes(0, 255, 128), new long[] {0, 255, 128}},
            "I8", new Object[] {bytes(0, 255, 128), new long[] {0, -1, -128}},
            "I16", new Object[] {bytes(0xfe, 0xff, 0x00, 0x80, 1, 0), new long[] {-2, -32768, 1}},
            "U16", new Object[] {bytes(0xff, 0xff, 0x00, 0x80, 1, 0), new long[] {65535, 32768, 1}},
            "U32",
                new Object[] {
                  bytes(0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0x80, 2, 0, 0, 0),
                  new long[] {4294967295L, 2147483648L, 2}
                });
    for (var e : cases.entrySet()) {
      HostTensor t = readOne(e.getKey(), new long[] {3}, (byte[]) e.getValue()[0]);
      assertEquals(DType.I64, t.dtype(), e.getKey());
      assertArrayEquals((long[]) e.getValue()[1], t.toLongArray(), e.getKey());
    }
    ByteBuffer u64 = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(Long.MAX_VALUE);
    assertArrayEquals(
        new long[] {Long.MAX_VALUE}, readOne("U64", new long[] {1}, u64.array()).toLongArray());
  }

  @Test
  void nativeTypesReadAsStored() throws Exception {
    // BF16 0x3F80 = 1, 0xC0A0 = -5, 0x0001 = smallest subnormal; F16 0x3C00 = 1, 0x0001 = 2^-24
    HostTensor bf = readOne("BF16", new long[] {3}, bytes(0x80, 0x3f, 0xa0, 0xc0, 0x01, 0x00));
    assertEquals(DType.BF16, bf.dtype());
    assertFloats(new float[] {1f, -5f, Floats.bf16ToFloat((short) 1)}, bf.to(DType.F32));
    assertEquals(Float.MIN_VALUE * 65536, bf.toFloatArray()[2]);
    HostTensor h = readOne("F16", new long[] {2}, bytes(0x00, 0x3c, 0x01, 0x00));
    assertEquals(DType.F16, h.dtype());
    assertArrayEquals(new float[] {1f, 0x1p-24f}, h.toFloatArray());
    HostTensor i32 = readOne("I32", new long[] {1}, bytes(0xff, 0xff, 0xff, 0xff));
    assertEquals(DType.I32, i32.dtype());
    assertArrayEquals(new int[] {-1}, i32.toIntArray());
  }

  @Test
  void everyDtypeNameIsKnownWithItsWidth() {
    List<String> names =
        List.of(
            "BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16",
            "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64");
    int[] bits = {8, 4, 6, 6, 8, 8, 8, 8, 8, 16, 16, 16, 16, 32, 32, 32, 64, 64, 64, 64};
    for (int i = 0; i < names.size(); i++) {
      SafetensorsDtype t = SafetensorsDtype.byName(names.get(i));
      assertTrue(t != null, names.get(i));
      assertEquals(bits[i], t.bits(), names.get(i));
    }
    assertEquals(names.size(), SafetensorsDtype.values().length);
  }
}
