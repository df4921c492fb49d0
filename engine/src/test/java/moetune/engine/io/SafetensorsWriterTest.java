package moetune.engine.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import moetune.engine.hf.CheckpointException;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsWriterTest {
  @TempDir Path tmp;

  @Test
  void parsesShardSizesAsHuggingFaceDoes() {
    assertEquals(5_000_000_000L, SafetensorsWriter.parseSize("5GB"));
    assertEquals(500_000_000L, SafetensorsWriter.parseSize("500MB"));
    assertEquals(2L << 30, SafetensorsWriter.parseSize("2GiB"));
    assertEquals(3L << 20, SafetensorsWriter.parseSize("3mib"));
    assertEquals(10_000L, SafetensorsWriter.parseSize("10KB"));
    assertEquals(625_000_000L, SafetensorsWriter.parseSize("5Gb")); // bits, as in HF
    assertEquals(12345L, SafetensorsWriter.parseSize("12345"));
    assertEquals(100L, SafetensorsWriter.parseSize("100B"));
    for (String bad : new String[] {"", "GB", "1.5GB", "-1GB", "0", "5 gigs", "99999999999999GB"}) {
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> SafetensorsWriter.parseSize(bad), bad);
      assertTrue(e.getMessage().contains("'" + bad + "'"), e.getMessage());
    }
  }

  private static SafetensorsWriter.Item item(String name, long bytes) {
    return new SafetensorsWriter.Item(name, DType.F32, new long[] {bytes / 4}, () -> null);
  }

  @Test
  void shardsFillInOrderAndOversizedTensorsStandAlone() {
    List<SafetensorsWriter.Item> items =
        List.of(
            item("a", 40),
            item("b", 40),
            item("c", 40),
            item("big", 400),
            item("d", 4),
            item("e", 100));
    List<List<String>> shards =
        SafetensorsWriter.planShards(items, 100).stream()
            .map(s -> s.stream().map(SafetensorsWriter.Item::name).toList())
            .toList();
    assertEquals(
        List.of(List.of("a", "b"), List.of("c"), List.of("big"), List.of("d"), List.of("e")),
        shards);
    assertEquals(1, SafetensorsWriter.planShards(items, 10_000).size());
    assertEquals(
        1, SafetensorsWriter.planShards(List.of(), 10).size()); // an empty model.safetensors
  }

  @Test
  void writesAnyDtypeScalarsAndEmptyTensorsAndReadsThemBack() throws Exception {
    HostTensor f32 = HostTensor.ofFloats(new float[] {1.5f, -2f, Float.NaN, Float.MIN_VALUE}, 2, 2);
    HostTensor bf16 = HostTensor.ofFloats(DType.BF16, new float[] {3.25f, 1e-40f, -0f}, 3);
    HostTensor f16 = HostTensor.ofFloats(DType.F16, new float[] {65504f}, 1);
    HostTensor i32 = HostTensor.ofInts(new int[] {Integer.MIN_VALUE, 7}, 2);
    HostTensor i64 = HostTensor.ofLongs(new long[] {Long.MAX_VALUE}); // a scalar: shape []
    HostTensor empty = HostTensor.zeros(DType.F32, 0, 5);
    List<SafetensorsWriter.Item> items =
        List.of(
            SafetensorsWriter.Item.of("f32", f32), SafetensorsWriter.Item.of("bf16", bf16),
            SafetensorsWriter.Item.of("empty", empty), SafetensorsWriter.Item.of("f16", f16),
            SafetensorsWriter.Item.of("i32", i32), SafetensorsWriter.Item.of("i64", i64));
    Path p = tmp.resolve("t.safetensors");
    SafetensorsWriter.writeFile(p, items, SafetensorsWriter.PT_METADATA);
    try (SafetensorsReader r = SafetensorsReader.open(p)) {
      assertEquals(List.of("f32", "bf16", "empty", "f16", "i32", "i64"), r.names());
      for (SafetensorsWriter.Item it : items) {
        HostTensor back = r.read(it.name());
        assertEquals(it.dtype(), back.dtype());
        assertArrayEquals(it.shape(), back.shape());
        assertEquals(it.data().get().bytes(), back.bytes(), it.name());
      }
      assertEquals(0, r.dataStart() % 8);
    }
    try (Stream<Path> s = Files.list(tmp)) {
      assertEquals(1, s.count()); // no temporary file left behind
    }
  }

  @Test
  void filesWithNoDataBytesReadBack() throws Exception {
    Path none = tmp.resolve("none.safetensors");
    SafetensorsWriter.writeFile(none, List.of(), SafetensorsWriter.PT_METADATA);
    Path empty = tmp.resolve("empty.safetensors");
    SafetensorsWriter.writeFile(
        empty, List.of(SafetensorsWriter.Item.of("e", HostTensor.zeros(DType.BF16, 3, 0))), null);
    try (SafetensorsReader r = SafetensorsReader.open(none)) {
      assertEquals(List.of(), r.names());
      assertEquals("pt", r.metadata().get("format"));
    }
    try (SafetensorsReader r = SafetensorsReader.open(empty)) {
      assertArrayEquals(new long[] {3, 0}, r.read("e").shape());
      assertEquals(Files.size(empty), r.dataStart());
    }
  }

  @Test
  void convertsFloatsToTheDeclaredDtypeAndRefusesMismatches() throws Exception {
    HostTensor f32 = HostTensor.ofFloats(new float[] {1.00390625f, 3f}, 2); // 1 + 2^-8: a bf16 tie
    Path p = tmp.resolve("t.safetensors");
    SafetensorsWriter.writeFile(
        p, List.of(new SafetensorsWriter.Item("x", DType.BF16, new long[] {2}, () -> f32)), null);
    try (SafetensorsReader r = SafetensorsReader.open(p)) {
      assertArrayEquals(new float[] {1f, 3f}, r.read("x").toFloatArray()); // ties to even
      assertTrue(r.metadata().isEmpty());
    }
    CheckpointException e =
        assertThrows(
            CheckpointException.class,
            () ->
                SafetensorsWriter.writeFile(
                    tmp.resolve("u.safetensors"),
                    List.of(new SafetensorsWriter.Item("y", DType.I32, new long[] {2}, () -> f32)),
                    null));
    assertTrue(e.getMessage().contains("tensor 'y'"), e.getMessage());
    assertThrows(
        CheckpointException.class,
        () ->
            SafetensorsWriter.writeFile(
                tmp.resolve("v.safetensors"),
                List.of(SafetensorsWriter.Item.of("z", f32), SafetensorsWriter.Item.of("z", f32)),
                null));
    assertTrue(
        !Files.exists(tmp.resolve("u.safetensors")) && !Files.exists(tmp.resolve("v.safetensors")));
  }
}
