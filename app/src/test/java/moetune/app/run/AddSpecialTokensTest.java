package moetune.app.run;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import moetune.app.config.RunConfig;
import moetune.app.config.RunConfigParser;
import moetune.datasets.ChatTokenizer;
import moetune.datasets.SampleData;
import moetune.engine.io.SafetensorsReader;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code add-special-tokens: true} with chatml on the fixture's Mistral tokenizer: the markers
 * become tokens 32000.., the model's embedding and LM head grow by their rows at the mean of the
 * old rows, and the export carries the grown tokenizer, config and weights.
 */
class AddSpecialTokensTest {
  static final Path TINY = Path.of(System.getProperty("moetune.fixtures"), "tiny-mixtral");

  @Test
  void markersBecomeTokensAndRowsGrowAtTheMean(@TempDir Path tmp) throws Exception {
    Path data = tmp.resolve("d.jsonl");
    SampleData.writeShareGpt(data, SampleData.arithmetic(8, 8));
    Path out = tmp.resolve("run");
    Path f = tmp.resolve("run.yaml");
    Files.writeString(
        f,
        "model: "
            + TINY
            + "\nout: "
            + out
            + "\ntemplate: chatml\nformat: sharegpt\nadd-special-tokens: true\n"
            + "max-steps: 1\nlr: 1e-12\nmax-length: 64\nmicro-batch: 2\ndevice: cpu\n"
            + "eval-split: 0\ncheckpoint-every: 1\ndatasets:\n  - "
            + data
            + "\n");
    RunConfig cfg = RunConfigParser.parse(f, Map.of());
    List<String> log = new ArrayList<>();
    try (TrainingJob job = TrainingJob.prepare(cfg, null, log::add)) {
      assertTrue(
          log.stream()
              .anyMatch(
                  l ->
                      l.equals(
                          "tokens: added <|im_start|> (id 32000), <|im_end|> (id 32001);"
                              + " embedding and lm_head grow from 32000 to 32002 rows, the"
                              + " new rows at the mean of the old ones")),
          log.toString());
      assertTrue(
          log.stream().noneMatch(l -> l.startsWith("warning: template chatml")), log.toString());
      job.run();
    }
    Path export = tmp.resolve("export");
    Exporter.export(checkpoint(out), export, DType.F32, Long.MAX_VALUE);
    try (ChatTokenizer tok = ChatTokenizer.load(export)) {
      assertEquals(32002, tok.vocabSize());
      assertEquals(1, tok.encode("<|im_start|>", false).length());
      assertEquals(32000, tok.encode("<|im_start|>", false).ids()[0]);
    }
    assertTrue(Files.readString(export.resolve("config.json")).contains("\"vocab_size\": 32002"));
    try (SafetensorsReader base = SafetensorsReader.open(TINY.resolve(firstShard(TINY)));
        SafetensorsReader r = SafetensorsReader.open(export.resolve("model.safetensors"))) {
      HostTensor e = r.read("model.embed_tokens.weight");
      assertEquals(32002, e.dim(0));
      float[] w = e.toFloatArray();
      int d = Math.toIntExact(e.dim(1));
      float[] old = base.read("model.embed_tokens.weight").toFloatArray();
      for (int j = 0; j < d; j++) {
        double mean = 0;
        for (int i = 0; i < 32000; i++) {
          mean += old[i * d + j];
        }
        mean /= 32000;
        assertEquals(mean, w[32000 * d + j], 1e-5, "row 32000, column " + j);
        assertEquals(mean, w[32001 * d + j], 1e-5, "row 32001, column " + j);
      }
    }
  }

  private static Path checkpoint(Path out) throws Exception {
    return moetune.engine.train.Trainer.findCheckpoint(out);
  }

  private static String firstShard(Path dir) throws Exception {
    try (var s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString())
          .filter(n -> n.startsWith("model-") && n.endsWith(".safetensors"))
          .filter(
              n -> {
                try (SafetensorsReader r = SafetensorsReader.open(dir.resolve(n))) {
                  return r.contains("model.embed_tokens.weight");
                } catch (Exception ex) {
                  return false;
                }
              })
          .findFirst()
          .orElseThrow();
    }
  }
}
