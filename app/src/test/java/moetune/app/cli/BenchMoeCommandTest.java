package moetune.app.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * {@code moetune bench moe} without a GPU: the shape options are checked before any device is
 * opened, and a CPU device is refused with one line (the benchmark times the CUDA kernels).
 */
class BenchMoeCommandTest {
  @Test
  void partOfAShapeIsOneClearLine() {
    CliRunner r = CliRunner.run("bench", "moe", "--tokens", "1024", "--hidden", "512");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("give all of --tokens --hidden --ffn --experts --topk"), r.err());
    assertEquals(1, r.err().strip().lines().count(), r.err());
  }

  @Test
  void topKAboveTheExpertsIsRefused() {
    CliRunner r =
        CliRunner.run(
            "bench",
            "moe",
            "--tokens",
            "64",
            "--hidden",
            "64",
            "--ffn",
            "64",
            "--experts",
            "4",
            "--topk",
            "5",
            "--python",
            "none");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("k <= E"), r.err());
  }

  @Test
  void theCpuIsRefused() {
    CliRunner r =
        CliRunner.run(
            "bench",
            "moe",
            "--tokens",
            "64",
            "--hidden",
            "64",
            "--ffn",
            "64",
            "--experts",
            "4",
            "--topk",
            "2",
            "--device",
            "cpu",
            "--python",
            "none");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("use cuda"), r.err());
  }
}
