package moetune.engine.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import moetune.engine.hf.CheckpointException;
import moetune.engine.tensor.HostTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every malformed file gives one CheckpointException line naming the file and the culprit. */
class SafetensorsErrorsTest {
  @TempDir Path tmp;

  /** A file of 8-byte length + header + data, with the header written exactly as given. */
  static byte[] raw(String header, byte[] data) {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).array());
    out.writeBytes(h);
    out.writeBytes(data);
    return out.toByteArray();
  }

  private Path file(String name, byte[] bytes) throws Exception {
    Path p = tmp.resolve(name);
    Files.write(p, bytes);
    return p;
  }

  /** Opens (and reads every tensor of) a file that must fail; returns the one-line message. */
  private String fails(Path p, String... mustMention) {
    CheckpointException e =
        assertThrows(
            CheckpointException.class,
            () -> {
              try (SafetensorsReader r = SafetensorsReader.open(p)) {
                r.names().forEach(r::read);
              }
            });
    String m = e.getMessage();
    System.out.println("expected error: " + m);
    assertFalse(m.contains("\n"), m);
    assertTrue(m.startsWith(p.toString() + ": "), m);
    for (String s : mustMention) {
      assertTrue(m.contains(s), "message should mention '" + s + "': " + m);
    }
    return m;
  }

  private static final String OK_A =
      "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

  @Test
  void validFileReads() throws Exception {
    Path p = file("ok.safetensors", raw("{" + OK_A + "}", new byte[8]));
    try (SafetensorsReader r = SafetensorsReader.open(p)) {
      assertEquals(List.of("a"), r.names());
    }
  }

  @Test
  void corruptHeaderJson() throws Exception {
    fails(
        file("x.safetensors", raw("{\"a\":{\"dtype\":\"F32\",", new byte[0])),
        "header",
        "not valid JSON");
  }

  @Test
  void headerNotAnObject() throws Exception {
    fails(file("x.safetensors", raw("[1, 2]  ", new byte[0])), "header");
  }

  @Test
  void headerNotUtf8() throws Exception {
    byte[] b = raw("{\"\u00e9\":1}", new byte[0]);
    b[10] = (byte) 0xff;
    fails(file("x.safetensors", b), "header", "UTF-8");
  }

  @Test
  void duplicateTensorName() throws Exception {
    fails(file("x.safetensors", raw("{" + OK_A + "," + OK_A + "}", new byte[8])), "header", "'a'");
  }

  @Test
  void truncatedData() throws Exception {
    byte[] full = raw("{" + OK_A + "}", new byte[8]);
    fails(file("x.safetensors", Arrays.copyOf(full, full.length - 3)), "tensor 'a'", "truncated");
  }

  @Test
  void truncatedHeader() throws Exception {
    byte[] full = raw("{" + OK_A + "}", new byte[8]);
    fails(file("x.safetensors", Arrays.copyOf(full, 20)), "header", "truncated");
    fails(file("y.safetensors", Arrays.copyOf(full, 5)), "header", "truncated");
    fails(file("z.safetensors", new byte[0]), "header", "truncated");
  }

  @Test
  void absurdHeaderLength() throws Exception {
    byte[] b = raw("{" + OK_A + "}", new byte[8]);
    ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(0, -5);
    fails(file("x.safetensors", b), "header: length");
  }

  @Test
  void overlappingOffsets() throws Exception {
    String h = "{" + OK_A + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
    fails(file("x.safetensors", raw(h, new byte[12])), "tensor 'b'", "overlap tensor 'a'");
  }

  @Test
  void holeBetweenTensors() throws Exception {
    String h = "{" + OK_A + ",\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}";
    fails(file("x.safetensors", raw(h, new byte[16])), "tensor 'b'", "hole");
  }

  @Test
  void reversedOffsets() throws Exception {
    String h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}";
    fails(file("x.safetensors", raw(h, new byte[8])), "tensor 'a'", "end before");
  }

  @Test
  void headerLiesAboutSize() throws Exception {
    String h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,8]}}";
    fails(file("x.safetensors", raw(h, new byte[8])), "tensor 'w'", "needs 16 bytes", "hold 8");
  }

  @Test
  void trailingBytesAfterLastTensor() throws Exception {
    fails(
        file("x.safetensors", raw("{" + OK_A + "}", new byte[12])), "tensor 'a'", "4 bytes follow");
  }

  @Test
  void unknownDtype() throws Exception {
    String h = "{\"w\":{\"dtype\":\"F12\",\"shape\":[2],\"data_offsets\":[0,3]}}";
    fails(file("x.safetensors", raw(h, new byte[3])), "tensor 'w'", "unknown dtype 'F12'", "BF16");
  }

  @Test
  void badShapeAndOffsetsFields() throws Exception {
    fails(
        file(
            "a.safetensors",
            raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", new byte[4])),
        "tensor 'w'",
        "shape");
    fails(
        file(
            "b.safetensors",
            raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", new byte[4])),
        "tensor 'w'",
        "data_offsets");
    fails(
        file("c.safetensors", raw("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4])),
        "tensor 'w'",
        "dtype");
    fails(
        file(
            "d.safetensors",
            raw(
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}",
                new byte[4])),
        "tensor 'w'",
        "overflow");
    fails(
        file(
            "e.safetensors",
            raw("{\"w\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", new byte[2])),
        "tensor 'w'",
        "whole bytes");
  }

  @Test
  void metadataMustBeStrings() throws Exception {
    fails(
        file("x.safetensors", raw("{\"__metadata__\":{\"format\":1}," + OK_A + "}", new byte[8])),
        "__metadata__",
        "format");
  }

  @Test
  void missingFileAndMissingTensor() throws Exception {
    fails(tmp.resolve("nope.safetensors"), "not found");
    Path p = file("ok.safetensors", raw("{" + OK_A + "}", new byte[8]));
    try (SafetensorsReader r = SafetensorsReader.open(p)) {
      CheckpointException e = assertThrows(CheckpointException.class, () -> r.read("zz"));
      assertTrue(e.getMessage().contains("tensor 'zz'"), e.getMessage());
    }
  }

  @Test
  void u64AboveI64RangeIsRefusedByName() throws Exception {
    byte[] data =
        ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(5).putLong(-1).array();
    Path p =
        file(
            "x.safetensors",
            raw("{\"u\":{\"dtype\":\"U64\",\"shape\":[2],\"data_offsets\":[0,16]}}", data));
    fails(p, "tensor 'u'", "18446744073709551615");
  }

  @Test
  void closedReaderViewsFailCleanly() throws Exception {
    Path p = file("ok.safetensors", raw("{" + OK_A + "}", new byte[8]));
    HostTensor copy;
    HostTensor view;
    try (SafetensorsReader r = SafetensorsReader.open(p)) {
      copy = r.read("a");
      view = r.view("a");
    }
    assertEquals(2, copy.toFloatArray().length); // a copy outlives the reader
    assertThrows(IllegalStateException.class, view::toFloatArray); // a view does not
  }
}
