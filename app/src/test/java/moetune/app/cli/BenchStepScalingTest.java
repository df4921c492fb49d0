package moetune.app.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import moetune.engine.backend.cuda.CudaProbe;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code moetune bench step --gpus N}: one line when the host has fewer GPUs; on the CPU the whole
 * path (one rank, then N worker processes through the TCP group, then the efficiency table).
 */
class BenchStepScalingTest {
  @TempDir Path dir;

  private Path tinyConfig() throws Exception {
    return BenchStepCommandTest.tinyConfig(dir);
  }

  @Test
  void fewerGpusThanAskedIsOneLine() throws Exception {
    int n = 64; // more than any host here has
    CliRunner r = CliRunner.run("bench", "step", "--gpus", Integer.toString(n), "--config", "1.5b");
    assertTrue(CudaProbe.unavailableReason(n - 1) != null, "this host has " + n + " GPUs?");
    assertEquals(2, r.code(), r.err());
    // one line; the reason in the parentheses is the probe's (it words a missing driver its way)
    assertEquals(1, r.err().lines().count(), r.err());
    assertTrue(
        r.err()
            .startsWith(
                "moetune bench step: bench step --gpus 64: needs 64 GPUs but cuda:63 is not usable ("),
        r.err());
    assertTrue(
        r.err()
            .endsWith(
                "); run it on a host with 64 or more GPUs (scripts/device/run-multi-gpu.sh does)\n"),
        r.err());
    assertEquals("", r.out());
  }

  @Test
  void twoCpuRanksPrintTheEfficiency() throws Exception {
    ChildProcess p =
        ChildProcess.start(
            dir.resolve("bench.log"),
            List.of("-Xmx1g"),
            "moetune.app.Main",
            "bench",
            "step",
            "--gpus",
            "2",
            "--device",
            "cpu",
            "--precision",
            "fp32",
            "--config",
            tinyConfig().toString(),
            "--micro-batch",
            "2",
            "--seq-len",
            "8",
            "--steps",
            "3",
            "--warmup",
            "1");
    assertEquals(0, p.waitFor(300), p.output());
    String out = p.output();
    assertTrue(out.contains("| moetune cpu (f32) |"), out);
    assertTrue(out.contains("| moetune cpu x 2 ranks (f32) |"), out);
    assertTrue(out.contains("data parallel: rank 0 of 2 (TCP process group on the CPU"), out);
    Matcher one =
        Pattern.compile("\\| 1 \\| [0-9.]+ \\| ([0-9,]+) \\| 100% \\(reference\\) \\|")
            .matcher(out);
    Matcher two =
        Pattern.compile("\\| 2 \\| [0-9.]+ \\| ([0-9,]+) \\| ([0-9.]+)% \\|").matcher(out);
    assertTrue(one.find() && two.find(), out);
    double t1 = Double.parseDouble(one.group(1).replace(",", ""));
    double t2 = Double.parseDouble(two.group(1).replace(",", ""));
    double eff = Double.parseDouble(two.group(2));
    // the printed efficiency is tokens/s on 2 over 2 x one (up to the rounding of the printed
    // numbers)
    assertEquals(100 * t2 / (2 * t1), eff, 0.1 + 100 * (0.5 / t2 + 0.5 / t1) * t2 / (2 * t1));
  }
}
