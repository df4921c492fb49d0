package moetune.app.run;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;
import moetune.engine.train.EvalMetrics;
import moetune.engine.train.ExpertLoad;
import moetune.engine.train.StepMetrics;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The TensorBoard event file, read back by a reader written here from the format's description
 * (TFRecord framing with masked CRC-32C, Event and Summary protocol buffers), independent of the
 * writer's code.
 */
class TensorBoardLogTest {

  /** One scalar as TensorBoard would show it. */
  record Scalar(long step, String tag, float value) {}

  /** Reads every record, checking both CRCs; returns the scalars and the file_version. */
  static List<Object> read(Path file) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
    List<Object> out = new ArrayList<>();
    while (b.hasRemaining()) {
      byte[] len = new byte[8];
      b.get(len);
      assertEquals(mask(crc(len)), b.getInt(), "length CRC at " + b.position());
      int n = (int) ByteBuffer.wrap(len).order(ByteOrder.LITTLE_ENDIAN).getLong();
      byte[] data = new byte[n];
      b.get(data);
      assertEquals(mask(crc(data)), b.getInt(), "data CRC at " + b.position());
      out.addAll(event(data));
    }
    return out;
  }

  static int crc(byte[] a) {
    CRC32C c = new CRC32C();
    c.update(a);
    return (int) c.getValue();
  }

  static int mask(int crc) {
    return Integer.rotateRight(crc, 15) + 0xa282ead8;
  }

  /** An Event: file_version (3) as a String, or the scalars of its summary (5) at its step (2). */
  static List<Object> event(byte[] data) {
    ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    long step = 0;
    byte[] summary = null;
    List<Object> out = new ArrayList<>();
    while (b.hasRemaining()) {
      long key = varint(b);
      int field = (int) (key >>> 3);
      switch (field) {
        case 1 -> assertTrue(b.getDouble() > 1.7e9, "wall_time in seconds since 1970");
        case 2 -> step = varint(b);
        case 3 -> out.add(new String(bytes(b), StandardCharsets.UTF_8));
        case 5 -> summary = bytes(b);
        default -> throw new AssertionError("unexpected Event field " + field);
      }
    }
    if (summary != null) {
      ByteBuffer s = ByteBuffer.wrap(summary).order(ByteOrder.LITTLE_ENDIAN);
      while (s.hasRemaining()) {
        assertEquals(1 << 3 | 2, varint(s), "Summary.value");
        ByteBuffer v = ByteBuffer.wrap(bytes(s)).order(ByteOrder.LITTLE_ENDIAN);
        String tag = null;
        float value = Float.NaN;
        while (v.hasRemaining()) {
          long k = varint(v);
          if (k == (1 << 3 | 2)) {
            tag = new String(bytes(v), StandardCharsets.UTF_8);
          } else if (k == (2 << 3 | 5)) {
            value = v.getFloat();
          } else {
            throw new AssertionError("unexpected Value key " + k);
          }
        }
        out.add(new Scalar(step, tag, value));
      }
    }
    return out;
  }

  static long varint(ByteBuffer b) {
    long v = 0;
    for (int shift = 0; ; shift += 7) {
      int x = b.get() & 0xFF;
      v |= (long) (x & 0x7F) << shift;
      if (x < 0x80) {
        return v;
      }
    }
  }

  static byte[] bytes(ByteBuffer b) {
    byte[] a = new byte[(int) varint(b)];
    b.get(a);
    return a;
  }

  @Test
  void anEventIsTheBytesTheProtobufSpecGives() {
    // Event{wall_time: 1.5, step: 3, summary {value {tag: "a", simple_value: 2.0}}}, by hand
    Map<String, Float> v = new LinkedHashMap<>();
    v.put("a", 2.0f);
    assertEquals(
        "09" + "000000000000f83f" + "1003" + "2a0a" + "0a08" + "0a0161" + "1500000040",
        HexFormat.of().formatHex(TensorBoardLog.scalarEvent(1.5, 3, v)));
    // CRC-32C's check value ("123456789" -> 0xe3069283) under TFRecord's mask
    byte[] check = "123456789".getBytes(StandardCharsets.US_ASCII);
    assertEquals(mask(0xe3069283), TensorBoardLog.maskedCrc(check, 0, check.length));
    byte[] rec = TensorBoardLog.record(new byte[] {7});
    assertArrayEquals(new byte[] {1, 0, 0, 0, 0, 0, 0, 0}, java.util.Arrays.copyOf(rec, 8));
    assertEquals(8 + 4 + 1 + 4, rec.length);
  }

  @Test
  void theRunsScalarsReadBack(@TempDir Path tmp) throws IOException {
    Path file;
    try (TensorBoardLog tb = TensorBoardLog.create(tmp)) {
      file = tb.file();
      assertTrue(file.getFileName().toString().startsWith("events.out.tfevents."));
      tb.onStep(new StepMetrics(1, 10, 0, 2.5, 0.02, 0.0, 1.25, 1e-4, 100, 3000.0, 9.0));
      tb.onEval(EvalMetrics.of(1, 230.0, 100));
      tb.onExpertLoad(new ExpertLoad(1, new double[][] {{0.75, 0.25}}, new double[] {0.5}));
    }
    List<Object> all = read(file);
    assertEquals("brain.Event:2", all.get(0));
    List<Object> scalars = all.subList(1, all.size());
    assertTrue(scalars.contains(new Scalar(1, "train/loss", 2.5f)), scalars.toString());
    assertTrue(scalars.contains(new Scalar(1, "train/lr", 1e-4f)));
    assertTrue(scalars.contains(new Scalar(1, "train/grad_norm", 1.25f)));
    assertTrue(scalars.contains(new Scalar(1, "train/tokens_per_s", 3000f)));
    assertTrue(scalars.contains(new Scalar(1, "eval/loss", 2.3f)));
    assertTrue(scalars.contains(new Scalar(1, "expert_load/layer_0/expert_0", 0.75f)));
    assertTrue(scalars.contains(new Scalar(1, "router_entropy/layer_0", 0.5f)));
  }
}
