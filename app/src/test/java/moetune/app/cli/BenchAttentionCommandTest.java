package moetune.app.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** {@code moetune bench attention}'s argument checks (no GPU needed: they fail first). */
class BenchAttentionCommandTest {
  @Test
  void headsNotAMultipleOfKvHeadsIsOneLine() {
    CliRunner r = CliRunner.run("bench", "attention", "--heads", "30", "--kv-heads", "8");
    assertEquals(2, r.code(), r.err());
    assertEquals(1, r.err().strip().lines().count(), r.err());
    assertTrue(r.err().contains("--heads must be a positive multiple of --kv-heads"), r.err());
  }

  @Test
  void helpListsTheReferenceOption() {
    CliRunner r = CliRunner.run("bench", "attention", "--help");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("--reference"), r.out());
    assertTrue(r.out().contains("--sdpa-script"), r.out());
  }

  @Test
  void theScriptIsFoundFromTheRepository() {
    // tests run in app/; the script lives in ../tools: the jar-folder walk finds it
    assertTrue(
        BenchAttentionCommand.findScript() != null
            && BenchAttentionCommand.findScript().endsWith("tools/bench_sdpa.py"),
        String.valueOf(BenchAttentionCommand.findScript()));
  }
}
