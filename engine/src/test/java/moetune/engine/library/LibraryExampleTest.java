package moetune.engine.library;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import moetune.engine.backend.Backend;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.model.Batch;
import moetune.engine.model.KvCache;
import moetune.engine.model.Loss;
import moetune.engine.model.MixtralModel;
import moetune.engine.moe.MoeMlp;
import moetune.engine.optim.AdamW;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Java examples of the README's library section, compiled and run. Each ```java block of the
 * README must appear in this file line for line (indentation aside), so the page cannot drift from
 * code that works.
 */
class LibraryExampleTest {
  static final Path FIXTURE = Path.of(System.getProperty("moetune.fixtures"), "tiny-mixtral");

  // ---- README.md: one training step

  static float trainOneStep(Path modelDir, Path outDir) {
    try (Backend backend = new CpuBackend();
        MixtralModel model = MixtralModel.load(modelDir, backend);
        AdamW optimizer =
            new AdamW(
                model.parameters(),
                new AdamW.Settings(0.9f, 0.95f, 1e-8f, 0.1f, 1.0f),
                AdamW.DECAY_MATRICES)) {
      int[][] ids = {{1, 733, 16289, 28793, 1824, 349, 574, 16020}};
      int[][] labels = {{-100, -100, -100, -100, 1824, 349, 574, 16020}};
      Batch batch = Batch.of(ids, labels);

      model.zeroGrad();
      Loss loss = model.forward(batch); // logits, cross-entropy, load-balancing loss
      model.backward(); // d loss.total() / d every parameter, accumulated
      HostTensor g = model.gradient("model.layers.0.block_sparse_moe.experts.1.w1.weight");
      optimizer.step(1e-3f); // clip the global grad norm to 1.0, then AdamW at lr 1e-3
      System.out.printf(
          "loss %.4f, w1 gradient %s, grad norm %.4f%n",
          loss.total(), Arrays.toString(g.shape()), optimizer.lastGradNorm());
      model.save(outDir); // HuggingFace layout, written atomically
      return loss.total();
    }
  }

  // ---- README.md: greedy decoding with the KV cache

  static int[] greedy(MixtralModel model, int[] prompt, int newTokens) {
    try (KvCache cache = model.newKvCache(1, prompt.length + newTokens)) {
      int[] out = new int[newTokens];
      HostTensor logits = model.decode(cache, new int[][] {prompt}); // (1, V)
      for (int i = 0; i < newTokens; i++) {
        out[i] = argmax(logits.toFloatArray());
        if (i + 1 < newTokens) {
          logits = model.decode(cache, new int[][] {{out[i]}});
        }
      }
      return out;
    }
  }

  static int argmax(float[] v) {
    int best = 0;
    for (int i = 1; i < v.length; i++) {
      if (v[i] > v[best]) {
        best = i;
      }
    }
    return best;
  }

  // ---- README.md: the ScatterMoE MLP on its own

  static float[] moeMlp(
      Backend backend,
      float[] xs,
      float[] weights,
      int[] experts,
      float[] gateUpW,
      float[] downW,
      int tokens,
      int hidden,
      int inter,
      int numExperts,
      int k) {
    try (MoeMlp mlp = MoeMlp.allocate(backend, DType.F32, hidden, inter, numExperts);
        Tensor x = backend.upload(HostTensor.ofFloats(xs, tokens, hidden));
        Tensor topKWeights = backend.upload(HostTensor.ofFloats(weights, tokens, k));
        Tensor topKIndices = backend.upload(HostTensor.ofInts(experts, tokens, k))) {
      backend.copyFromHost(
          HostTensor.ofFloats(gateUpW, numExperts, 2 * inter, hidden), mlp.gateUp());
      backend.copyFromHost(HostTensor.ofFloats(downW, numExperts, hidden, inter), mlp.down());
      try (MoeMlp.Forward y = mlp.forward(x, topKWeights, topKIndices); // (tokens, hidden)
          Tensor dY = backend.zeros(DType.F32, tokens, hidden);
          MoeMlp.Grads grads = mlp.backward(y, dY)) { // mlp.gateUpGrad(), mlp.downGrad() +=
        System.out.println(
            "dX " + grads.dX().describe() + ", dTopKWeights " + grads.dTopKWeights().describe());
        return backend.download(y.output()).toFloatArray();
      }
    }
  }

  // ---- the checks

  @Test
  void trainingStepExampleRunsAndSavesAReloadableModel(@TempDir Path tmp) {
    Path out = tmp.resolve("out");
    float loss = trainOneStep(FIXTURE, out);
    try (Backend be = new CpuBackend();
        MixtralModel original = MixtralModel.load(FIXTURE, be);
        MixtralModel saved = MixtralModel.load(out, be)) {
      Loss reference =
          original.forward(
              Batch.of(
                  new int[][] {{1, 733, 16289, 28793, 1824, 349, 574, 16020}},
                  new int[][] {{-100, -100, -100, -100, 1824, 349, 574, 16020}}));
      assertEquals(
          reference.total(), loss, 1e-6f * Math.abs(loss), "the example's loss is the model's");
      float[] before = original.parameter("model.norm.weight").toFloatArray();
      float[] after = saved.parameter("model.norm.weight").toFloatArray();
      double moved = 0;
      for (int i = 0; i < before.length; i++) {
        moved = Math.max(moved, Math.abs(after[i] - before[i]));
      }
      // lr 1e-3: Adam's first step moves every weight with a nonzero gradient by about lr.
      assertTrue(
          moved > 5e-4 && moved < 2e-3, "one AdamW step moved model.norm.weight by " + moved);
      assertTrue(
          Files.isRegularFile(out.resolve("tokenizer.json")), "tokenizer files are copied along");
    }
  }

  @Test
  void greedyExampleEqualsArgmaxOfFullForwards() {
    try (Backend be = new CpuBackend();
        MixtralModel model = MixtralModel.load(FIXTURE, be)) {
      int[] prompt = {1, 733, 16289, 28793};
      int[] got = greedy(model, prompt, 5);
      List<Integer> seq = new ArrayList<>();
      for (int p : prompt) {
        seq.add(p);
      }
      int[] want = new int[5];
      for (int i = 0; i < 5; i++) {
        int[] ids = seq.stream().mapToInt(Integer::intValue).toArray();
        model.evaluate(Batch.of(new int[][] {ids}, null));
        float[] all = model.logits().toFloatArray();
        int v = model.config().vocabSize;
        want[i] = argmax(Arrays.copyOfRange(all, (ids.length - 1) * v, ids.length * v));
        seq.add(want[i]);
      }
      assertArrayEquals(want, got);
    }
  }

  @Test
  void moeMlpExampleComputesTheSwigluExperts() {
    // 2 tokens, hidden 3, intermediate 2, 2 experts, top-1: y = w * down_e(silu(w1_e x) * w3_e x)
    float[] x = {1, 0, -1, 0.5f, 2, 0};
    float[] weights = {1, 0.25f};
    int[] experts = {1, 0};
    float[] gateUp = new float[2 * 4 * 3];
    float[] down = new float[2 * 3 * 2];
    for (int i = 0; i < gateUp.length; i++) {
      gateUp[i] = (float) Math.sin(i + 1);
    }
    for (int i = 0; i < down.length; i++) {
      down[i] = (float) Math.cos(i + 1);
    }
    float[] y;
    try (Backend be = new CpuBackend()) {
      y = moeMlp(be, x, weights, experts, gateUp, down, 2, 3, 2, 2, 1);
    }
    for (int t = 0; t < 2; t++) {
      int e = experts[t];
      double[] a = new double[2];
      for (int f = 0; f < 2; f++) {
        double g = 0;
        double u = 0;
        for (int d = 0; d < 3; d++) {
          g += gateUp[(e * 4 + f) * 3 + d] * x[t * 3 + d];
          u += gateUp[(e * 4 + 2 + f) * 3 + d] * x[t * 3 + d];
        }
        a[f] = g / (1 + Math.exp(-g)) * u;
      }
      for (int d = 0; d < 3; d++) {
        double want =
            weights[t] * (down[(e * 3 + d) * 2] * a[0] + down[(e * 3 + d) * 2 + 1] * a[1]);
        assertEquals(want, y[t * 3 + d], 1e-5, "y[" + t + "][" + d + "]");
      }
    }
  }

  @Test
  void everyJavaBlockOfTheLibraryPageIsInThisTest() throws IOException {
    List<String> page = Files.readAllLines(Path.of("..", "README.md"));
    List<String> source =
        strip(
            Files.readAllLines(
                Path.of(
                    "src",
                    "test",
                    "java",
                    "moetune",
                    "engine",
                    "library",
                    "LibraryExampleTest.java")));
    int blocks = 0;
    for (int i = 0; i < page.size(); i++) {
      if (!page.get(i).trim().equals("```java")) {
        continue;
      }
      List<String> block = new ArrayList<>();
      for (i++; !page.get(i).trim().equals("```"); i++) {
        block.add(page.get(i));
      }
      blocks++;
      assertTrue(
          Collections.indexOfSubList(source, strip(block)) >= 0,
          "README.md block "
              + blocks
              + " (starting '"
              + block.get(0).trim()
              + "') is not in LibraryExampleTest");
    }
    assertTrue(blocks >= 3, "README.md has " + blocks + " java blocks");
  }

  private static List<String> strip(List<String> lines) {
    List<String> out = new ArrayList<>();
    for (String l : lines) {
      if (!l.isBlank()) {
        out.add(l.strip());
      }
    }
    return out;
  }
}
