package moetune.engine.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import moetune.kernels.KernelSignatures;
import org.junit.jupiter.api.Test;

/**
 * The launch builder's checks against the kernels' signature table run before anything reaches the
 * driver, so they are tested here without a GPU (no module: a launch that passes them would need
 * one).
 */
class KernelLaunchTest {

  private static KernelLaunch launch(String kernel) {
    return new KernelLaunch(null, KernelSignatures.load().get(kernel), null);
  }

  @Test
  void anArgumentPassedInTheWrongPlaceNamesTheKernelAndTheParameter() {
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class, () -> launch("scale_kernel").ptr("x", 0L).f32("s", 2f));
    assertEquals(
        "kernel scale_kernel (elementwise.cu): argument 2 is passed as f32 's' but the kernel"
            + " declares parameter 2 as 'int dt' (i32)",
        e.getMessage());
  }

  @Test
  void anIntWhereTheKernelTakesALongLongFails() {
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class,
            () -> launch("scale_kernel").ptr("x", 0L).i32("dt", 0).f32("s", 2f).i32("n", 7));
    assertEquals(
        "kernel scale_kernel (elementwise.cu): argument 4 is passed as i32 'n' but the kernel"
            + " declares parameter 4 as 'long long n' (i64)",
        e.getMessage());
  }

  @Test
  void aMissingOrExtraArgumentIsNamed() {
    IllegalStateException missing =
        assertThrows(
            IllegalStateException.class,
            () -> launch("scale_kernel").grid(1).block(256).ptr("x", 0L).i32("dt", 0).launch());
    assertEquals(
        "kernel scale_kernel (elementwise.cu) takes 4 arguments; the launch passes 2, missing"
            + " 'float s'",
        missing.getMessage());
    IllegalStateException extra =
        assertThrows(
            IllegalStateException.class,
            () ->
                launch("scale_kernel")
                    .ptr("x", 0L)
                    .i32("dt", 0)
                    .f32("s", 1f)
                    .i64("n", 1)
                    .i32("more", 1));
    assertEquals(
        "kernel scale_kernel (elementwise.cu) takes 4 arguments; the launch passes more: 'more'",
        extra.getMessage());
  }

  @Test
  void aStructMustHaveTheKernelsFieldCount() {
    KernelLaunch l =
        launch("attention_fa2_forward_hd64")
            .ptr("q", 0L)
            .ptr("k", 0L)
            .ptr("v", 0L)
            .ptr("out", 0L)
            .ptr("lse", 0L)
            .ptr("doc", 0L);
    IllegalStateException e =
        assertThrows(IllegalStateException.class, () -> l.struct("a", new int[7]));
    assertEquals(
        "kernel attention_fa2_forward_hd64 (attention_fa2.cu): struct argument 'a' has 7 fields,"
            + " the kernel's AttnDims has 8",
        e.getMessage());
  }
}
