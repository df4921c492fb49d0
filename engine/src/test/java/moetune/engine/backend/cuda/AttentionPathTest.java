package moetune.engine.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import moetune.engine.backend.cuda.LayerOps.AttentionPath;
import org.junit.jupiter.api.Test;

/** MOETUNE_ATTENTION parsing (no GPU needed). */
class AttentionPathTest {
  @Test
  void defaultIsOwnAndNamesParse() {
    assertEquals(AttentionPath.OWN, AttentionPath.fromEnv(null));
    assertEquals(AttentionPath.OWN, AttentionPath.fromEnv(" "));
    assertEquals(AttentionPath.OWN, AttentionPath.fromEnv("own"));
    assertEquals(AttentionPath.OWN, AttentionPath.fromEnv("FA2"));
    assertEquals(AttentionPath.SCALAR, AttentionPath.fromEnv("Scalar"));
    assertTrue(AttentionPath.SCALAR.describe().contains("scalar"));
    assertTrue(AttentionPath.OWN.describe().contains("tensor-core"));
  }

  @Test
  void unknownValueSaysWhatToUse() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> AttentionPath.fromEnv("cudnn"));
    assertTrue(e.getMessage().startsWith("MOETUNE_ATTENTION=cudnn"), e.getMessage());
    assertTrue(e.getMessage().contains("own") && e.getMessage().contains("scalar"), e.getMessage());
  }
}
