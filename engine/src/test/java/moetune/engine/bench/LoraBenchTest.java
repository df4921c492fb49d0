package moetune.engine.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.model.Recompute;
import moetune.engine.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The LoRA bench on the CPU with a tiny shape: one row pair per target list, the reference's RESULT
 * lines parsed from a stand-in script, and the ratios printed.
 */
class LoraBenchTest {

  private static MixtralConfig tiny() {
    MixtralConfig.Builder b = MixtralConfig.builder();
    b.vocabSize = 64;
    b.hiddenSize = 32;
    b.intermediateSize = 48;
    b.numHiddenLayers = 2;
    b.numAttentionHeads = 4;
    b.numKeyValueHeads = 2;
    b.numLocalExperts = 4;
    b.numExpertsPerTok = 2;
    b.ropeTheta = 10000;
    b.bosTokenId = 1;
    b.eosTokenIds = List.of(2);
    return b.build();
  }

  @Test
  void timesEveryTargetListNextToTheReference(@TempDir Path tmp) throws Exception {
    MixtralConfig c = tiny();
    Path cfg = tmp.resolve("config.json");
    Files.writeString(cfg, c.toJson());
    // stands in for tools/bench_peft_lora.py: one RESULT line per target list, as it prints them
    Path script = tmp.resolve("ref.py");
    Files.writeString(
        script,
        """
        import json, sys
        args = sys.argv[1:]
        for t in args[args.index("--targets") + 1].split(";"):
            print("RESULT " + json.dumps({"targets": t, "step_ms": [40.0, 50.0, 60.0],
                  "impl": "stand-in", "peak_bytes": 2 ** 30}))
        """);
    String sets = "q_proj,k_proj,v_proj,o_proj;q_proj,k_proj,v_proj,o_proj,w1,w2,w3";
    LoraBench.Settings s =
        new LoraBench.Settings(
            c, cfg, 24, 1, 4, 8, sets, 3, 1, 5, Recompute.LAYER, DType.F32, "python3", script);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    List<LoraBench.Row[]> rows =
        LoraBench.run(
            s,
            () -> new CpuBackend(2),
            DType.F32,
            new PrintStream(bytes, true, StandardCharsets.UTF_8));
    String out = bytes.toString(StandardCharsets.UTF_8);
    assertEquals(2, rows.size(), out);
    for (LoraBench.Row[] pair : rows) {
      assertEquals(50.0, pair[0].medianMs(), out);
      assertEquals(3, pair[1].stepMs().length);
      assertTrue(pair[1].peakBytes() > 0 && pair[1].medianMs() > 0, out);
      assertEquals(pair[0].targets(), pair[1].targets());
    }
    assertTrue(out.contains("activations kept for 24 tokens per micro-batch"), out);
    assertTrue(out.contains("q_proj,k_proj,v_proj,o_proj,w1,w2,w3: moetune / reference"), out);
  }

  @Test
  void profileAddsAStepWithEveryOpTimed() throws Exception {
    MixtralConfig c = tiny();
    LoraBench.Settings s =
        new LoraBench.Settings(
            c,
            null,
            16,
            1,
            4,
            8,
            "q_proj,v_proj",
            2,
            0,
            5,
            Recompute.ATTENTION,
            DType.F32,
            null,
            null,
            true);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    LoraBench.run(
        s,
        () -> new CpuBackend(2),
        DType.F32,
        new PrintStream(bytes, true, StandardCharsets.UTF_8));
    String out = bytes.toString(StandardCharsets.UTF_8);
    assertTrue(out.contains("profiled step:") && out.contains("op attentionForward"), out);
  }
}
