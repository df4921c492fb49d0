package moetune.engine.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import moetune.engine.backend.cuda.CudaScatterMoe.Kernel;
import org.junit.jupiter.api.Test;

/** MOETUNE_MOE_KERNEL parsing (no GPU needed). */
class MoeKernelChoiceTest {
  @Test
  void defaultIsAutoAndNamesParse() {
    assertEquals(Kernel.AUTO, Kernel.fromEnv(null));
    assertEquals(Kernel.AUTO, Kernel.fromEnv(""));
    assertEquals(Kernel.AUTO, Kernel.fromEnv("Auto"));
    assertEquals(Kernel.V2, Kernel.fromEnv(" v2 "));
    assertEquals(Kernel.N256, Kernel.fromEnv("N256"));
    assertEquals(Kernel.N128, Kernel.fromEnv("n128"));
  }

  @Test
  void unknownNameSaysWhatToUse() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Kernel.fromEnv("wgmma"));
    assertTrue(e.getMessage().startsWith("MOETUNE_MOE_KERNEL=wgmma is not"), e.getMessage());
    assertTrue(e.getMessage().contains("n256"), e.getMessage());
  }
}
