package moetune.engine.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import moetune.engine.hf.MixtralNames;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Save, reload, save again: bit-identical tensors and byte-identical files. */
class MixtralCheckpointRoundTripTest {
  @TempDir Path tmp;

  @ParameterizedTest(name = "{0}, max shard {1}")
  @CsvSource({"F32, 1MB", "F32, 5GB", "BF16, 1MB", "BF16, 5GB", "F16, 3MB", "F16, 5GB"})
  void roundTripIsBitIdentical(String dtypeName, String shard) throws Exception {
    DType dtype = DType.valueOf(dtypeName);
    long max = SafetensorsWriter.parseSize(shard);
    Path out = tmp.resolve("out");
    Path again = tmp.resolve("again");
    try (MixtralCheckpoint src = MixtralCheckpoint.load(Fixtures.tinyMixtral())) {
      src.save(out, dtype, max);
      try (MixtralCheckpoint back = MixtralCheckpoint.load(out)) {
        assertEquals(src.names(), back.names());
        for (String n : src.names()) {
          assertEquals(SafetensorsDtype.of(dtype), back.storedType(n), n);
          ByteBuffer want = src.tensor(n).to(dtype).bytes();
          assertEquals(want, back.tensor(n).bytes(), n);
        }
        assertEquals(
            src.config().toBuilder().set(b -> b.dtype = back.config().dtype).build().toJson(),
            back.config().toJson());
        back.save(again, dtype, max);
      }
    }
    boolean single = max >= 5_000_000_000L;
    assertEquals(single, Files.exists(out.resolve("model.safetensors")));
    assertEquals(!single, Files.exists(out.resolve(SafetensorsIndex.FILE_NAME)));
    List<String> names = list(out);
    assertEquals(names, list(again));
    for (String n : names) {
      assertArrayEquals(
          Files.readAllBytes(out.resolve(n)), Files.readAllBytes(again.resolve(n)), n);
    }
    // the fixture's tokenizer files were carried along
    assertTrue(names.contains("tokenizer.json"));
  }

  @Test
  void f32SaveReproducesTransformersConfigAndIndexForm() throws Exception {
    Path out = tmp.resolve("out");
    Path fixture = Fixtures.tinyMixtral();
    try (MixtralCheckpoint src = MixtralCheckpoint.load(fixture)) {
      src.save(out, DType.F32, 2_000_000);
    }
    assertEquals(
        Files.readString(fixture.resolve("config.json")),
        Files.readString(out.resolve("config.json")));
    assertEquals(
        Files.readString(fixture.resolve("generation_config.json")),
        Files.readString(out.resolve("generation_config.json")));
    SafetensorsIndex mine = SafetensorsIndex.load(out.resolve(SafetensorsIndex.FILE_NAME));
    SafetensorsIndex theirs = SafetensorsIndex.load(fixture.resolve(SafetensorsIndex.FILE_NAME));
    assertEquals(theirs.totalSize(), mine.totalSize());
    assertEquals(theirs.totalParameters(), mine.totalParameters());
    assertEquals(theirs.weightMap().keySet(), mine.weightMap().keySet());
    // 2 MB shards: embed (4.1 MB) alone, the layers, lm_head alone
    assertEquals(
        List.of(
            "model-00001-of-00003.safetensors",
            "model-00002-of-00003.safetensors",
            "model-00003-of-00003.safetensors"),
        list(out).stream().filter(n -> n.startsWith("model-")).toList());
    assertEquals("model-00001-of-00003.safetensors", mine.weightMap().get(MixtralNames.EMBED));
    assertEquals("model-00003-of-00003.safetensors", mine.weightMap().get(MixtralNames.LM_HEAD));
  }

  @Test
  void writtenHeadersArePaddedAndCarryPtMetadata() throws Exception {
    Path out = tmp.resolve("out");
    try (MixtralCheckpoint src = MixtralCheckpoint.load(Fixtures.tinyMixtral())) {
      src.save(out, DType.BF16, SafetensorsWriter.DEFAULT_MAX_SHARD_BYTES);
    }
    byte[] b = Files.readAllBytes(out.resolve("model.safetensors"));
    long n = ByteBuffer.wrap(b, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
    assertEquals(0, n % 8);
    String header = new String(b, 8, (int) n, java.nio.charset.StandardCharsets.UTF_8);
    assertTrue(
        header.startsWith(
            "{\"__metadata__\":{\"format\":\"pt\"},\"model.embed_tokens.weight\":"
                + "{\"dtype\":\"BF16\",\"shape\":[32000,32],\"data_offsets\":[0,2048000]}"),
        header.substring(0, 120));
    assertEquals(
        header.stripTrailing() + " ".repeat((int) (n - header.stripTrailing().length())), header);
    assertTrue(header.stripTrailing().endsWith("}"));
  }

  @Test
  void shardedAndSingleFileLoadsAgree() throws Exception {
    Path single = tmp.resolve("single");
    try (MixtralCheckpoint src = MixtralCheckpoint.load(Fixtures.tinyMixtral())) {
      src.save(single, DType.F32, SafetensorsWriter.DEFAULT_MAX_SHARD_BYTES);
      try (MixtralCheckpoint one = MixtralCheckpoint.load(single)) {
        for (String n : src.names()) {
          assertArrayEquals(src.floats(n), one.floats(n), n);
        }
        for (int l = 0; l < 2; l++) {
          assertArrayEquals(src.expertsGateUp(l), one.expertsGateUp(l));
          assertArrayEquals(src.expertsDown(l), one.expertsDown(l));
        }
      }
    }
  }

  @Test
  void fusedLayoutLoadsLikeTheHubLayout() throws Exception {
    Path fusedDir = tmp.resolve("fused");
    Files.createDirectories(fusedDir);
    Path fixture = Fixtures.tinyMixtral();
    Files.copy(fixture.resolve("config.json"), fusedDir.resolve("config.json"));
    try (MixtralCheckpoint hub = MixtralCheckpoint.load(fixture)) {
      var c = hub.config();
      long e = c.numLocalExperts;
      long f = c.intermediateSize;
      long d = c.hiddenSize;
      List<SafetensorsWriter.Item> items = new ArrayList<>();
      for (String n : hub.names()) {
        if (!n.contains("block_sparse_moe")) {
          items.add(SafetensorsWriter.Item.of(n, hub.tensor(n)));
        }
      }
      for (int l = 0; l < c.numHiddenLayers; l++) {
        // v5 fused layout, stored in BF16 for layer 1 to exercise "any float dtype"
        DType t = l == 1 ? DType.BF16 : DType.F32;
        items.add(
            SafetensorsWriter.Item.of(
                MixtralNames.fusedRouter(l), hub.tensor(MixtralNames.router(l)).to(t)));
        items.add(
            SafetensorsWriter.Item.of(
                MixtralNames.fusedGateUp(l),
                HostTensor.ofFloats(t, hub.expertsGateUp(l), e, 2 * f, d)));
        items.add(
            SafetensorsWriter.Item.of(
                MixtralNames.fusedDown(l), HostTensor.ofFloats(t, hub.expertsDown(l), e, d, f)));
      }
      SafetensorsWriter.writeFile(
          fusedDir.resolve("model.safetensors"), items, SafetensorsWriter.PT_METADATA);
      try (MixtralCheckpoint fused = MixtralCheckpoint.load(fusedDir)) {
        assertTrue(fused.isFused(0));
        assertEquals(hub.names(), fused.names());
        for (String n : hub.names()) {
          boolean bf16 = n.startsWith("model.layers.1.block_sparse_moe");
          HostTensor want = bf16 ? hub.tensor(n).to(DType.BF16) : hub.tensor(n);
          assertEquals(want.bytes(), fused.tensor(n).bytes(), n);
        }
        assertArrayEquals(hub.expertsGateUp(0), fused.expertsGateUp(0));
        assertArrayEquals(hub.expertsDown(0), fused.expertsDown(0));
        // saving a fused checkpoint writes the hub layout
        fused.save(tmp.resolve("hub-again"), DType.F32, SafetensorsWriter.DEFAULT_MAX_SHARD_BYTES);
        try (MixtralCheckpoint again = MixtralCheckpoint.load(tmp.resolve("hub-again"))) {
          assertFalse(again.isFused(0));
          assertArrayEquals(
              fused.floats(MixtralNames.expert(1, 2, "w3")),
              again.floats(MixtralNames.expert(1, 2, "w3")));
        }
      }
    }
  }

  @Test
  void savingFromFusedArraysGivesTheSameFiles() throws Exception {
    Path viaNames = tmp.resolve("names");
    Path viaFused = tmp.resolve("fused");
    try (MixtralCheckpoint src = MixtralCheckpoint.load(Fixtures.tinyMixtral())) {
      var c = src.config();
      float[][] gateUp = {src.expertsGateUp(0), src.expertsGateUp(1)};
      float[][] down = {src.expertsDown(0), src.expertsDown(1)};
      src.save(viaNames, DType.BF16, 3_000_000);
      MixtralCheckpoint.save(
          viaFused,
          c,
          src.generationConfig(),
          n -> {
            MixtralNames.ExpertWeight w = MixtralNames.parseExpert(n);
            return w == null
                ? src.tensor(n)
                : MixtralNames.expertFromFused(c, w, gateUp[w.layer()], down[w.layer()]);
          },
          DType.BF16,
          3_000_000,
          List.of());
    }
    for (String n : list(viaFused)) {
      assertArrayEquals(
          Files.readAllBytes(viaNames.resolve(n)), Files.readAllBytes(viaFused.resolve(n)), n);
    }
  }

  private static List<String> list(Path dir) throws Exception {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }
}
