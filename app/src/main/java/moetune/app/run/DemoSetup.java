package moetune.app.run;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import moetune.datasets.ByteTokenizerFiles;
import moetune.datasets.SampleData;
import moetune.engine.hf.MixtralConfig;

/**
 * The demo run of {@code moetune train --demo}: a tiny Mixtral (hidden 64, 2 layers, 4 experts
 * top-2, byte-level vocabulary) trained on the bundled arithmetic chats. Writes the model config
 * and the data to {@code OUT/demo/} and returns the run config values (as flags) that the user's
 * own flags override; the run itself is an ordinary {@link TrainingJob}.
 *
 * <p>The schedule is sized so a CPU with two cores finishes in a few minutes and the eval loss
 * falls clearly (from ln(272) = 5.6 to well under half of that).
 */
public final class DemoSetup {
  private DemoSetup() {}

  /** Conversations in the demo data set. */
  public static final int CONVERSATIONS = 2000;

  /** The demo's model: small enough for a CPU, with every Mixtral feature (GQA, MoE top-2). */
  public static MixtralConfig config() {
    return MixtralConfig.builder()
        .set(
            b -> {
              b.vocabSize = 272; // the byte tokenizer's 265 ids, rounded up to a multiple of 16
              b.hiddenSize = 64;
              b.intermediateSize = 128;
              b.numHiddenLayers = 2;
              b.numAttentionHeads = 4;
              b.numKeyValueHeads = 2;
              b.maxPositionEmbeddings = 1024;
              b.numLocalExperts = 4;
              b.numExpertsPerTok = 2;
              b.routerAuxLossCoef = 0.02;
              b.ropeTheta = 10000;
              b.bosTokenId = ByteTokenizerFiles.BOS;
              b.eosTokenIds = java.util.List.of(ByteTokenizerFiles.EOS);
              b.dtype = "float32";
            })
        .build();
  }

  /** Writes OUT/demo/{config.json, sample.jsonl}; returns the demo's config values. */
  public static Map<String, String> write(Path out, long seed) throws IOException {
    Path demo = out.resolve("demo");
    Files.createDirectories(demo);
    Path config = demo.resolve("config.json");
    Files.writeString(config, config().toJson(), StandardCharsets.UTF_8);
    Path data = demo.resolve("sample.jsonl");
    SampleData.writeShareGpt(data, SampleData.arithmetic(seed, CONVERSATIONS));
    Map<String, String> m = new LinkedHashMap<>();
    m.put("model", "new:" + config);
    m.put("datasets", data.toString());
    m.put("format", "sharegpt");
    m.put("template", "chatml");
    m.put("max-length", "128");
    m.put("packing", "true");
    m.put("micro-batch", "8");
    m.put("grad-accum", "1");
    m.put("max-steps", "200");
    m.put("lr", "3e-3");
    m.put("warmup-steps", "20");
    m.put("schedule", "cosine");
    m.put("min-lr-ratio", "0.1");
    m.put("weight-decay", "0.01");
    m.put("eval-split", "0.05");
    m.put("eval-every", "50");
    m.put("checkpoint-every", "100");
    m.put("keep-last", "2");
    m.put("seed", Long.toString(seed));
    m.put("device", "auto");
    m.put("out", out.toString());
    return m;
  }
}
