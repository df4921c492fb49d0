package moetune.engine.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import org.junit.jupiter.api.Test;

/** Reads the transformers-written fixture and checks it against a header parsed by hand. */
class SafetensorsFixtureTest {

  /** data_offsets, shape and dtype of one tensor, found with a regex in the raw header. */
  private record Raw(String dtype, long[] shape, long begin, long end, long dataStart) {}

  private static Raw rawEntry(byte[] file, String name) {
    long n = ByteBuffer.wrap(file, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    String header = new String(file, 8, (int) n, StandardCharsets.UTF_8);
    Matcher m =
        Pattern.compile(
                Pattern.quote("\"" + name + "\"")
                    + ":\\{\"dtype\":\"(\\w+)\",\"shape\":\\[([0-9,]*)\\],\"data_offsets\":\\[(\\d+),(\\d+)\\]\\}")
            .matcher(header);
    if (!m.find()) {
      throw new AssertionError("tensor " + name + " not found in raw header");
    }
    long[] shape =
        java.util.Arrays.stream(m.group(2).split(",")).mapToLong(Long::parseLong).toArray();
    return new Raw(
        m.group(1), shape, Long.parseLong(m.group(3)), Long.parseLong(m.group(4)), 8 + n);
  }

  @Test
  void readsShardLikeAHandParsedHeader() throws Exception {
    Path shard = Fixtures.tinyMixtral().resolve("model-00003-of-00003.safetensors");
    byte[] bytes = Files.readAllBytes(shard);
    String name = "model.layers.1.block_sparse_moe.experts.2.w2.weight";
    Raw raw = rawEntry(bytes, name);
    try (SafetensorsReader r = SafetensorsReader.open(shard)) {
      assertEquals("pt", r.metadata().get("format"));
      SafetensorsEntry e = r.entry(name);
      assertEquals(SafetensorsDtype.F32, e.dtype());
      assertEquals("F32", raw.dtype());
      assertArrayEquals(new long[] {32, 64}, e.shape());
      assertArrayEquals(raw.shape(), e.shape());
      assertEquals(raw.begin(), e.begin());
      assertEquals(raw.end(), e.end());
      assertEquals(raw.dataStart(), r.dataStart());

      HostTensor t = r.read(name);
      assertEquals(DType.F32, t.dtype());
      float[] got = t.toFloatArray();
      ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
      for (int i : new int[] {0, 1, 63, 64, 1000, 2047}) {
        float want = b.getFloat((int) (raw.dataStart() + raw.begin() + 4L * i));
        assertEquals(
            Float.floatToRawIntBits(want), Float.floatToRawIntBits(got[i]), "element " + i);
      }
      // a range read equals the matching slice of the whole read
      HostTensor row5 = r.readRange(name, 5 * 64, 64);
      assertArrayEquals(java.util.Arrays.copyOfRange(got, 5 * 64, 6 * 64), row5.toFloatArray());
      // the zero-copy view holds the same bytes
      assertEquals(t.bytes(), r.view(name).bytes());
    }
  }

  @Test
  void listsEveryTensorInOffsetOrder() {
    Path shard = Fixtures.tinyMixtral().resolve("model-00003-of-00003.safetensors");
    try (SafetensorsReader r = SafetensorsReader.open(shard)) {
      // 2 layers x (4 attn + router + 4 experts x 3 + 2 norms) + final norm = 39
      assertEquals(39, r.names().size());
      long prevEnd = 0;
      for (SafetensorsEntry e : r.entries()) {
        assertEquals(prevEnd, e.begin(), e.name());
        prevEnd = e.end();
      }
    }
  }
}
