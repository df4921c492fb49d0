package moetune.engine.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import moetune.engine.backend.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

class KernelBandwidthBenchTest {

  @Test
  void timesEveryOpAgainstTheCopyInOneTable() {
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    try (CpuBackend cpu = new CpuBackend(1)) {
      List<KernelBandwidthBench.Row> rows =
          KernelBandwidthBench.run(
              cpu, 3, 1024, new PrintStream(buf, true, StandardCharsets.UTF_8));
      // copy, convert, 7 per-token ops twice (misaligned: scalar, aligned: vector), the previous
      // RoPE and cross-entropy kernels, 3 optimizer ops twice
      assertEquals(2 + 2 * 7 + 2 + 2 * 3, rows.size());
      assertTrue(rows.get(0).op().startsWith("copy"), rows.get(0).op());
      for (KernelBandwidthBench.Row r : rows) {
        assertTrue(r.bytes() > 0 && r.msMedian() > 0, r.toString());
        assertTrue(r.msMin() <= r.msMedian() && r.msMedian() <= r.msMax(), r.toString());
      }
      // the copy reads and writes 4 bytes per element (float32 on the CPU)
      assertEquals(2L * 4 * ((256L << 20) / 1024), rows.get(0).bytes());
    }
    String out = buf.toString(StandardCharsets.UTF_8);
    assertTrue(out.contains("| adamwStep |"), out);
    assertTrue(out.contains("| rmsnormBackward, scalar kernel (misaligned view) |"), out);
    assertTrue(out.contains("| swigluBackward |"), out);
    assertTrue(out.contains("| ropeForward (in place), previous vector kernel |"), out);
    assertTrue(out.contains("| crossEntropy + dLogits in place, previous vector kernel |"), out);
    assertEquals(null, System.getProperty("moetune.kernels.before"), "the property is restored");
    assertTrue(out.contains("| 100% |"), out);
  }
}
