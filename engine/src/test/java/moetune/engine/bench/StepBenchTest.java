package moetune.engine.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import moetune.engine.backend.OpProfiler;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.tensor.DType;
import moetune.engine.train.MemoryPlan;
import org.junit.jupiter.api.Test;

class StepBenchTest {

  static MixtralConfig tiny() {
    return MixtralConfig.builder()
        .set(
            b -> {
              b.vocabSize = 64;
              b.hiddenSize = 32;
              b.intermediateSize = 48;
              b.numHiddenLayers = 2;
              b.numAttentionHeads = 4;
              b.numKeyValueHeads = 2;
              b.numLocalExperts = 4;
              b.numExpertsPerTok = 2;
              b.maxPositionEmbeddings = 128;
              b.routerAuxLossCoef = 0.02;
              b.initializerRange = 0.02;
            })
        .build();
  }

  @Test
  void theShippedConfigIsThePerfMd15bModel() {
    MixtralConfig c = StepBench.config(StepBench.CONFIG_1_5B);
    assertEquals(32000, c.vocabSize);
    assertEquals(1024, c.hiddenSize);
    assertEquals(3584, c.intermediateSize);
    assertEquals(16, c.numHiddenLayers);
    assertEquals(16, c.numAttentionHeads);
    assertEquals(8, c.numKeyValueHeads);
    assertEquals(8, c.numLocalExperts);
    assertEquals(2, c.numExpertsPerTok);
    // embeddings and LM head 2 x 32000 x 1024; per layer q,o 1024^2 each, k,v 512 x 1024 each,
    // router 8 x 1024, experts 8 x 3 x 3584 x 1024, two norms; the final norm
    long perLayer = 2L * 1024 * 1024 + 2L * 512 * 1024 + 8 * 1024 + 8L * 3 * 3584 * 1024 + 2048;
    assertEquals(2L * 32000 * 1024 + 16 * perLayer + 1024, StepBench.parameterCount(c));
    assertEquals(1_525_318_656L, StepBench.parameterCount(c));
  }

  @Test
  void modelFlopsPerTokenCountActiveWeightsAndAttention() {
    MixtralConfig c = StepBench.config(StepBench.CONFIG_1_5B);
    // active matmul weights per token: 16 layers x (q, k, v, o 3,145,728 + router 8,192 + two
    // experts' w1, w2, w3 22,020,096) + LM head 32,768,000 = 435,552,256; times 6, plus attention
    // 12 x 16 layers x 16 heads x 64 x 2048 tokens
    assertEquals(6.0 * 435_552_256L + 12.0 * 16 * 16 * 64 * 2048, StepBench.flopsPerToken(c, 2048));
    assertEquals(3.016e9, StepBench.flopsPerToken(c, 2048), 1e6);
  }

  @Test
  void runsTheStepOnTheCpuAndAccountsForItsTime() {
    MixtralConfig c = tiny();
    StepBench.Settings s = new StepBench.Settings(2, 16, 3, 1, DType.F32, 7);
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    PrintStream log = new PrintStream(buf, true, StandardCharsets.UTF_8);
    try (CpuBackend cpu = new CpuBackend(2)) {
      StepBench.Result r = StepBench.run(c, StepBench.randomWeights(c, 7), cpu, s, log);
      StepBench.Row row = r.row();
      long p = StepBench.parameterCount(c);
      assertEquals(p, row.params());
      assertEquals(32 / (row.stepMsMedian() / 1000), row.tokensPerS(), 1e-6 * row.tokensPerS());
      assertTrue(row.stepMsMin() <= row.stepMsMedian() && row.stepMsMedian() <= row.stepMsMax());
      // random tokens under a near-uniform random model: the loss is close to ln V
      assertEquals(Math.log(64), row.lastLoss(), 0.3, "loss " + row.lastLoss());
      assertEquals(-1, row.driverBytes());
      // fp32 on the CPU: master 4P (no separate working copy), grads 4P, moments 8P
      MemoryPlan plan = r.plan();
      assertEquals(16 * p, plan.totalBytes());
      assertTrue(row.peakBytes() > plan.totalBytes(), plan.describe() + " peak " + row.peakBytes());
      OpProfiler.Breakdown b = r.breakdown();
      double sum = b.byPhase().values().stream().mapToDouble(Double::doubleValue).sum();
      assertEquals(b.totalMs(), sum, 1e-6 * b.totalMs());
      for (OpProfiler.Phase ph :
          new OpProfiler.Phase[] {
            OpProfiler.Phase.ATTENTION,
            OpProfiler.Phase.MOE,
            OpProfiler.Phase.GEMM,
            OpProfiler.Phase.OPTIMIZER,
            OpProfiler.Phase.OTHER
          }) {
        assertTrue(b.byPhase().get(ph) > 0, ph + " has no time: " + b.byPhase());
      }
      assertTrue(b.ops() > 20 * c.numHiddenLayers, "ops " + b.ops());
      assertTrue(b.byOp().containsKey("adamwStep"));
      assertTrue(b.byOp().containsKey("scatter2scatter"), "MoE ops reached via x.backend()");
      StepBenchReport.printRows(log, c, s, "cpu", row, java.util.List.of());
      StepBenchReport.printBreakdown(log, r);
    }
    String out = buf.toString(StandardCharsets.UTF_8);
    assertTrue(out.contains("memory plan:"), out);
    assertTrue(out.contains("| moetune cpu (f32) |"), out);
    assertTrue(out.contains("| attention kernels |"), out);
  }

  @Test
  void parsesTheReferenceResultLine() throws IOException {
    MixtralConfig c = StepBench.config(StepBench.CONFIG_1_5B);
    StepBench.Row r =
        TransformersReference.parse(
            "{\"impl\": \"transformers 5.17.0 (sdpa)\", \"params\": 1525318656,"
                + " \"step_ms_median\": 232.0, \"step_ms_min\": 230.5, \"step_ms_max\": 240.0,"
                + " \"tokens_per_s\": 35310.3, \"peak_bytes\": 44023414784,"
                + " \"driver_bytes\": 46000000000, \"last_loss\": 10.4}",
            c,
            2048);
    assertEquals(35310.3, r.tokensPerS());
    assertEquals(44023414784L, r.peakBytes());
    assertEquals(46000000000L, r.driverBytes());
    assertEquals(35310.3 * StepBench.flopsPerToken(c, 2048) / 1e12, r.tflops(), 1e-9);
    IOException e =
        assertThrows(
            IOException.class,
            () -> TransformersReference.parse("{\"impl\": \"x\", \"params\": 1}", c, 2048));
    assertTrue(e.getMessage().contains("step_ms_median"), e.getMessage());
  }

  @Test
  void printsARatioPerReferenceRowAndToTheFastest() {
    MixtralConfig c = StepBench.config(StepBench.CONFIG_1_5B);
    StepBench.Settings s = new StepBench.Settings(4, 2048, 6, 2, DType.BF16, 1);
    StepBench.Row ours =
        new StepBench.Row("moetune cuda:0", 1, 100, 99, 101, 60000, 180, 30L << 30, -1, 10.4);
    StepBench.Row slow =
        new StepBench.Row("tf grouped_mm", 1, 400, 399, 401, 15000, 45, 40L << 30, -1, 10.4);
    StepBench.Row fast =
        new StepBench.Row("tf eager", 1, 200, 199, 201, 30000, 90, 40L << 30, -1, 10.4);
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    StepBenchReport.printRows(
        new PrintStream(buf, true, StandardCharsets.UTF_8),
        c,
        s,
        "cuda",
        ours,
        List.of(slow, fast));
    String out = buf.toString(StandardCharsets.UTF_8);
    assertTrue(out.contains("moetune / tf grouped_mm: 4.00x the tokens/s, 0.75x"), out);
    assertTrue(out.contains("moetune / tf eager: 2.00x the tokens/s"), out);
    assertTrue(out.contains("the fastest reference row (tf eager): 2.00x the tokens/s"), out);
  }

  @Test
  void aMissingReferenceScriptIsOneClearLine() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> TransformersReference.findScript(Path.of("no/such/bench.py")));
    assertTrue(e.getMessage().contains("no/such/bench.py"), e.getMessage());
    assertTrue(e.getMessage().contains(TransformersReference.SCRIPT), e.getMessage());
  }

  @Test
  void rejectsNonsenseSettings() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> new StepBench.Settings(0, 2048, 10, 3, DType.BF16, 1));
    assertTrue(e.getMessage().contains("--micro-batch"), e.getMessage());
  }
}
