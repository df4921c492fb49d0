package moetune.engine.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import org.junit.jupiter.api.Test;

/** Loads the sharded F32 fixture written by transformers 5.17. */
class MixtralCheckpointFixtureTest {

  @Test
  void loadsConfigAndAllTensors() {
    try (MixtralCheckpoint ck = MixtralCheckpoint.load(Fixtures.tinyMixtral())) {
      MixtralConfig c = ck.config();
      assertEquals(32000, c.vocabSize);
      assertEquals(32, c.hiddenSize);
      assertEquals(64, c.intermediateSize);
      assertEquals(2, c.numHiddenLayers);
      assertEquals(4, c.numAttentionHeads);
      assertEquals(2, c.numKeyValueHeads);
      assertNull(c.headDimField);
      assertEquals(8, c.headDim());
      assertEquals(4, c.numLocalExperts);
      assertEquals(2, c.numExpertsPerTok);
      assertEquals(1e6, c.ropeTheta);
      assertEquals(1e-5, c.rmsNormEps);
      assertNull(c.slidingWindow);
      assertFalse(c.tieWordEmbeddings);
      assertEquals(0.02, c.routerAuxLossCoef);
      assertEquals(List.of(2), c.eosTokenIds);
      assertEquals(1, ck.generationConfig().bosTokenId());

      // embed + 2 x (4 + 1 + 12 + 2) + norm + lm_head
      assertEquals(1 + 2 * 19 + 2, ck.names().size());
      assertArrayEquals(new long[] {32000, 32}, ck.shape("lm_head.weight"));
      assertArrayEquals(new long[] {16, 32}, ck.shape("model.layers.0.self_attn.k_proj.weight"));
      assertArrayEquals(new long[] {4, 32}, ck.shape(MixtralNames.router(1)));
      assertFalse(ck.isFused(0));
    }
  }

  @Test
  void fusedHelpersConcatenateW1W3AndStackW2() throws Exception {
    Path dir = Fixtures.tinyMixtral();
    try (MixtralCheckpoint ck = MixtralCheckpoint.load(dir)) {
      float[] gu = ck.expertsGateUp(1); // (E, 2F, D)
      float[] down = ck.expertsDown(1); // (E, D, F)
      assertEquals(4 * 128 * 32, gu.length);
      assertEquals(4 * 32 * 64, down.length);
      // expert 3, w3 row 10, column 7 = gate_up[3, 64 + 10, 7], read independently from bytes
      float w3 = rawFloat(dir, MixtralNames.expert(1, 3, "w3"), 10 * 32 + 7);
      assertEquals(w3, gu[(3 * 128 + 64 + 10) * 32 + 7]);
      float w1 = rawFloat(dir, MixtralNames.expert(1, 3, "w1"), 10 * 32 + 7);
      assertEquals(w1, gu[(3 * 128 + 10) * 32 + 7]);
      float w2 = rawFloat(dir, MixtralNames.expert(1, 2, "w2"), 31 * 64 + 63);
      assertEquals(w2, down[(2 * 32 + 31) * 64 + 63]);
    }
  }

  /** Element i of a tensor, from the shard named in the index, via a hand-parsed header. */
  static float rawFloat(Path dir, String name, int i) throws Exception {
    String index = Files.readString(dir.resolve(SafetensorsIndex.FILE_NAME));
    java.util.regex.Matcher m =
        java.util.regex.Pattern.compile(
                java.util.regex.Pattern.quote("\"" + name + "\"") + ": \"([^\"]+)\"")
            .matcher(index);
    if (!m.find()) {
      throw new AssertionError(name + " not in index");
    }
    byte[] bytes = Files.readAllBytes(dir.resolve(m.group(1)));
    long n = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    String header = new String(bytes, 8, (int) n, java.nio.charset.StandardCharsets.UTF_8);
    java.util.regex.Matcher o =
        java.util.regex.Pattern.compile(
                java.util.regex.Pattern.quote("\"" + name + "\"")
                    + ":\\{[^}]*\"data_offsets\":\\[(\\d+),")
            .matcher(header);
    if (!o.find()) {
      throw new AssertionError(name + " not in header");
    }
    long begin = Long.parseLong(o.group(1));
    return ByteBuffer.wrap(bytes)
        .order(ByteOrder.LITTLE_ENDIAN)
        .getFloat((int) (8 + n + begin + 4L * i));
  }
}
