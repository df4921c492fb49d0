package moetune.engine.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import moetune.engine.hf.CheckpointException;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.tensor.HostTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad model directories: one CheckpointException line naming the file and every culprit. */
class MixtralCheckpointErrorsTest {
  @TempDir Path tmp;

  private final MixtralConfig config = TinyModels.config();
  private final Map<String, HostTensor> weights = TinyModels.weights(config, 7);

  private Path dirWith(Map<String, HostTensor> w) throws Exception {
    Path d = Files.createDirectories(tmp.resolve("m" + System.nanoTime()));
    Files.writeString(d.resolve("config.json"), config.toJson(), StandardCharsets.UTF_8);
    SafetensorsWriter.writeFile(
        d.resolve("model.safetensors"), TinyModels.items(w), SafetensorsWriter.PT_METADATA);
    return d;
  }

  private static String fails(Path dir, String... mustMention) {
    CheckpointException e =
        assertThrows(CheckpointException.class, () -> MixtralCheckpoint.load(dir).close());
    String m = e.getMessage();
    System.out.println("expected error: " + m);
    assertFalse(m.contains("\n"), m);
    for (String s : mustMention) {
      assertTrue(m.contains(s), "message should mention '" + s + "': " + m);
    }
    return m;
  }

  @Test
  void goodDirectoryLoads() throws Exception {
    try (MixtralCheckpoint ck = MixtralCheckpoint.load(dirWith(weights))) {
      assertArrayEquals(
          weights.get(MixtralNames.NORM).toFloatArray(), ck.floats(MixtralNames.NORM));
    }
  }

  @Test
  void missingAndUnexpectedTensorsAreAllListed() throws Exception {
    Map<String, HostTensor> w = new LinkedHashMap<>(weights);
    w.remove(MixtralNames.expert(0, 1, "w2"));
    w.remove("model.layers.1.post_attention_layernorm.weight");
    w.put("model.extra.weight", HostTensor.zeros(moetune.engine.tensor.DType.F32, 2));
    w.put(
        "model.layers.5.self_attn.q_proj.weight",
        HostTensor.zeros(moetune.engine.tensor.DType.F32, 2));
    Path d = dirWith(w);
    fails(
        d,
        d.toString(),
        "2 missing",
        MixtralNames.expert(0, 1, "w2"),
        "model.layers.1.post_attention_layernorm.weight",
        "2 unexpected",
        "model.extra.weight",
        "model.layers.5.self_attn.q_proj.weight");
  }

  @Test
  void wrongShapesAreAllListed() throws Exception {
    Map<String, HostTensor> w = new LinkedHashMap<>(weights);
    w.put(
        MixtralNames.expert(1, 2, "w1"), HostTensor.zeros(moetune.engine.tensor.DType.F32, 8, 12));
    w.put(MixtralNames.EMBED, HostTensor.zeros(moetune.engine.tensor.DType.F32, 51, 8));
    fails(
        dirWith(w),
        "2 tensor(s)",
        MixtralNames.expert(1, 2, "w1"),
        "[8, 12]",
        "[12, 8]",
        MixtralNames.EMBED,
        "[51, 8]",
        "model.safetensors");
  }

  @Test
  void integerWeightIsRefused() throws Exception {
    Map<String, HostTensor> w = new LinkedHashMap<>(weights);
    w.put(MixtralNames.NORM, HostTensor.ofInts(new int[8], 8));
    fails(dirWith(w), MixtralNames.NORM, "I32", "not a real float type");
  }

  @Test
  void missingShardIsNamed() throws Exception {
    Path d = tmp.resolve("sharded");
    TinyModels.save(d, config, weights, 4000);
    SafetensorsIndex index = SafetensorsIndex.load(d.resolve(SafetensorsIndex.FILE_NAME));
    String second = index.weightMap().get(MixtralNames.router(1));
    assertTrue(second.matches("model-0000[2-9]-of-0000[3-9]\\.safetensors"), second);
    Files.delete(d.resolve(second));
    fails(d, SafetensorsIndex.FILE_NAME, second, "missing shard");
  }

  @Test
  void indexAndShardDisagree() throws Exception {
    Path d = tmp.resolve("sharded");
    TinyModels.save(d, config, weights, 4000);
    Path indexFile = d.resolve(SafetensorsIndex.FILE_NAME);
    String text = Files.readString(indexFile);
    SafetensorsIndex index = SafetensorsIndex.load(indexFile);
    String normShard = index.weightMap().get(MixtralNames.NORM);
    String firstShard = index.weightMap().get(MixtralNames.EMBED);
    assertTrue(!normShard.equals(firstShard));
    // move the final norm to a shard that does not hold it
    String line = "\"model.norm.weight\": \"" + normShard + "\"";
    assertTrue(text.contains(line));
    Files.writeString(
        indexFile, text.replace(line, "\"model.norm.weight\": \"" + firstShard + "\""));
    fails(d, firstShard, "tensor 'model.norm.weight'", "is missing");
    // drop it from the index altogether
    Map<String, String> dropped = new LinkedHashMap<>(index.weightMap());
    dropped.remove(MixtralNames.NORM);
    Files.writeString(indexFile, new SafetensorsIndex(dropped, index.totalSize(), -1).toJson());
    fails(d, normShard, "tensor 'model.norm.weight'", "not in");
  }

  @Test
  void theSameTensorInTwoShardsIsRefused() throws Exception {
    Path d = tmp.resolve("sharded");
    TinyModels.save(d, config, weights, 4000);
    SafetensorsIndex index = SafetensorsIndex.load(d.resolve(SafetensorsIndex.FILE_NAME));
    String normShard = index.weightMap().get(MixtralNames.NORM);
    String firstShard = index.weightMap().get(MixtralNames.EMBED);
    assertTrue(!normShard.equals(firstShard));
    // Rewrite the first shard with its own tensors plus a second copy of the final norm.
    Map<String, HostTensor> first = new LinkedHashMap<>();
    index
        .weightMap()
        .forEach(
            (n, shard) -> {
              if (shard.equals(firstShard)) {
                first.put(n, weights.get(n));
              }
            });
    first.put(MixtralNames.NORM, weights.get(MixtralNames.NORM));
    SafetensorsWriter.writeFile(
        d.resolve(firstShard), TinyModels.items(first), SafetensorsWriter.PT_METADATA);
    fails(d, firstShard, "tensor 'model.norm.weight'", "is also in " + normShard, "one shard only");
  }

  @Test
  void noWeightsOrNoDirectory() throws Exception {
    Path d = Files.createDirectories(tmp.resolve("empty"));
    Files.writeString(d.resolve("config.json"), config.toJson());
    fails(d, "model.safetensors", "model.safetensors.index.json");
    fails(tmp.resolve("absent"), "absent", "not found");
  }

  @Test
  void badConfigIsNamed() throws Exception {
    Path d = dirWith(weights);
    Files.writeString(
        d.resolve("config.json"), config.toJson().replace("\"mixtral\"", "\"llama\""));
    fails(d, d.resolve("config.json").toString(), "field 'model_type'", "llama");
  }

  @Test
  void tiedEmbeddingsNeedNoLmHeadAndIgnoreOne() throws Exception {
    MixtralConfig tied = config.toBuilder().set(b -> b.tieWordEmbeddings = true).build();
    Map<String, HostTensor> w = new LinkedHashMap<>(weights);
    for (boolean withHead : new boolean[] {false, true}) {
      if (!withHead) {
        w.remove(MixtralNames.LM_HEAD);
      } else {
        w.put(MixtralNames.LM_HEAD, weights.get(MixtralNames.LM_HEAD));
      }
      Path d = dirWith(w);
      Files.writeString(d.resolve("config.json"), tied.toJson());
      try (MixtralCheckpoint ck = MixtralCheckpoint.load(d)) {
        assertFalse(ck.contains(MixtralNames.LM_HEAD));
        assertEquals(MixtralNames.hubShapes(tied).keySet().stream().toList(), ck.names());
      }
    }
    // untied without lm_head is an error
    w.remove(MixtralNames.LM_HEAD);
    fails(dirWith(w), "1 missing: lm_head.weight");
  }

  @Test
  void aLayerMayNotMixLayouts() throws Exception {
    Map<String, HostTensor> w = new LinkedHashMap<>(weights);
    w.put(MixtralNames.fusedRouter(0), weights.get(MixtralNames.router(0)));
    fails(
        dirWith(w),
        "missing: model.layers.0.mlp.experts.down_proj",
        "model.layers.0.mlp.experts.gate_up_proj",
        "unexpected: " + MixtralNames.expert(0, 0, "w1"),
        MixtralNames.router(0));
  }
}
