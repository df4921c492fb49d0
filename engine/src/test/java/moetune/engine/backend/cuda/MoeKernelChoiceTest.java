package moetune.engine.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
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
    assertEquals(Kernel.WS256, Kernel.fromEnv("ws256"));
    assertEquals(Kernel.WS128, Kernel.fromEnv("WS128"));
    assertEquals(Kernel.WS256R, Kernel.fromEnv("ws256r"));
    assertEquals(Kernel.V10, Kernel.fromEnv("V10"));
    assertEquals(Kernel.V11, Kernel.fromEnv("v11"));
    assertEquals(Kernel.V15, Kernel.fromEnv("V15"));
    assertEquals(Kernel.V16, Kernel.fromEnv("v16"));
    assertEquals(Kernel.V14, Kernel.fromEnv("V14"));
    assertTrue(
        Kernel.AUTO.picked()
            && Kernel.V10.picked()
            && Kernel.V11.picked()
            && Kernel.V15.picked()
            && Kernel.V16.picked()
            && !Kernel.WS256R.picked());
    // the epilogue generations: AUTO newest, V16 / V15 / V11 / V10 older, named families none
    assertEquals(25, Kernel.AUTO.generation());
    // V14 is AUTO but for the float32 dW kernel (variant 14, not variant 42's clusters)
    assertTrue(Kernel.V14.picked());
    assertEquals(25, Kernel.V14.generation());
    assertEquals("group_xty_ws256_tmar_mc_kernel42", CudaScatterMoe.groupXtYTmaKernel(Kernel.AUTO));
    assertEquals("group_xty_ws256_tmar_kernel14", CudaScatterMoe.groupXtYTmaKernel(Kernel.V14));
    // V54 is AUTO but for the first product's epilogue (variant 39)
    assertEquals(Kernel.V54, Kernel.fromEnv("v54"));
    assertTrue(Kernel.V54.picked());
    assertEquals(25, Kernel.V54.generation());
    // H keeps AUTO's kernels saving h (the path before variant 56)
    assertEquals(Kernel.H, Kernel.fromEnv("h"));
    assertTrue(Kernel.H.picked());
    assertEquals(25, Kernel.H.generation());
    assertEquals(16, Kernel.V16.generation());
    // AUTO's dX2 is variant 25, V16 keeps variant 13
    assertEquals(
        "scatter2scatter_ws256_ng_glubwd_kernel25",
        CudaScatterMoe.gluBackwardKernel(true, Kernel.AUTO.generation()));
    assertEquals(
        "scatter2scatter_ws256_ng_glubwd_kernel13",
        CudaScatterMoe.gluBackwardKernel(true, Kernel.V16.generation()));
    assertEquals(
        "scatter2scatter_ws256_ng_glubwd_kernel11",
        CudaScatterMoe.gluBackwardKernel(false, Kernel.AUTO.generation()));
    assertEquals(15, Kernel.V15.generation());
    assertEquals(11, Kernel.V11.generation());
    assertEquals(10, Kernel.V10.generation());
    assertEquals(0, Kernel.WS256R.generation());
    assertTrue(Kernel.WS256.warpSpecialised() && !Kernel.N256.warpSpecialised());
    assertEquals(256, Kernel.WS256.tileN());
    assertEquals(128, Kernel.WS128.tileN());
    assertTrue(Kernel.WS256R.warpSpecialised());
    assertEquals(256, Kernel.WS256R.tileN());
    // the families' dW kernels (names as in moe_wgmma_ws.cu)
    assertEquals("group_xty_ws256_kernel5", Kernel.WS256.groupXtYKernel());
    assertEquals("group_xty_ws128_kernel5", Kernel.WS128.groupXtYKernel());
    assertEquals("group_xty_ws256_red_kernel7", Kernel.WS256R.groupXtYKernel());
  }

  @Test
  void variantElevensStagingFitsBesideUpToTwoHundredFortySevenExperts() {
    // the forward's staging fits beside 247 experts' tile table, the backward's (two barriers
    // more) beside 245; past that variant 10 runs (227 KiB of dynamic shared memory per block)
    int max = 227 * 1024;
    assertTrue(CudaScatterMoe.gluSmem(247, CudaScatterMoe.WS_GLU_OUT_BYTES) <= max);
    assertTrue(CudaScatterMoe.gluSmem(248, CudaScatterMoe.WS_GLU_OUT_BYTES) > max);
    assertTrue(CudaScatterMoe.gluSmem(245, CudaScatterMoe.WS_GLU_BWD_OUT_BYTES) <= max);
    assertTrue(CudaScatterMoe.gluSmem(246, CudaScatterMoe.WS_GLU_BWD_OUT_BYTES) > max);
    // variant 13's backward (four barriers) beside 243; past that variant 11's
    assertTrue(CudaScatterMoe.gluSmem(243, CudaScatterMoe.WS_GLU_BWD13_OUT_BYTES) <= max);
    assertTrue(CudaScatterMoe.gluSmem(244, CudaScatterMoe.WS_GLU_BWD13_OUT_BYTES) > max);
  }

  @Test
  void variantSixteensBuffersFitBesideUpTo2295Experts() {
    // the eight warps' 2 KiB buffers after the stages, the tile table after them; past 2295
    // experts variant 5's epilogue runs (variant 2 takes up to 4096)
    int max = 227 * 1024;
    assertTrue(CudaScatterMoe.stSmem(2295) <= max);
    assertTrue(CudaScatterMoe.stSmem(2296) > max);
    assertEquals(
        "scatter2scatter_ws256_tc_st_kernel16",
        CudaScatterMoe.scatter2scatterWsKernel(256, true, true, true));
    assertEquals(
        "scatter2scatter_ws128_ng_kernel5",
        CudaScatterMoe.scatter2scatterWsKernel(128, false, false, false));
  }

  @Test
  void variantThreeTilesFollowTheLabsMeasurement() {
    // AUTO runs variant 5 (128 x 256) on Hopper and falls back to these where TMA cannot
    assertEquals(Kernel.N256, CudaScatterMoe.variant3(CudaScatterMoe.Product.FORWARD, false, 1024));
    assertEquals(Kernel.N128, CudaScatterMoe.variant3(CudaScatterMoe.Product.FORWARD, true, 1024));
    assertEquals(Kernel.N256, CudaScatterMoe.variant3(CudaScatterMoe.Product.DX, true, 16384));
    assertEquals(Kernel.N128, CudaScatterMoe.variant3(CudaScatterMoe.Product.DW, false, 1 << 20));
  }

  @Test
  void tensorMapArgumentsAreCheckedBeforeTheDriver() {
    // a valid map: W (8, 1792, 4096) read in (64, 256, 1) boxes
    TensorMaps.check(4096, new long[] {4096, 1792, 8}, new int[] {64, 256, 1}, "W");
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> TensorMaps.check(4104, new long[] {4096, 1792}, new int[] {64, 256}, "W"));
    assertTrue(e.getMessage().startsWith("W: TMA needs a 16-byte-aligned base"), e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> TensorMaps.check(4096, new long[] {4100, 1792}, new int[] {64, 256}, "x"));
    assertTrue(e.getMessage().contains("multiple of 8"), e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> TensorMaps.check(4096, new long[] {4096, 1792}, new int[] {128, 256}, "x"));
    assertTrue(e.getMessage().contains("at most 64 bf16"), e.getMessage());
    // variant 13's h boxes: 32-element rows (64-byte swizzle); other widths are refused
    TensorMaps.check(4096, new long[] {1792, 2, 4096}, new int[] {32, 1, 64}, "h");
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> TensorMaps.check(4096, new long[] {4096, 1792}, new int[] {48, 64}, "x"));
    assertTrue(e.getMessage().contains("32 (64-byte swizzle)"), e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> TensorMaps.check(4096, new long[] {4096, 1792}, new int[] {64, 512}, "x"));
    assertTrue(e.getMessage().contains("boxes 1..256"), e.getMessage());
  }

  @Test
  void unknownNameSaysWhatToUse() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Kernel.fromEnv("wgmma"));
    assertTrue(e.getMessage().startsWith("MOETUNE_MOE_KERNEL=wgmma is not"), e.getMessage());
    assertTrue(e.getMessage().contains("n256"), e.getMessage());
  }

  /** MOETUNE_MOE_STAGGER (variant 59's start groups): parsing, the delay, and bad values. */
  @Test
  void startGroupsParseAndScaleWithTheMainLoop() {
    assertEquals(CudaScatterMoe.Stagger.NONE, CudaScatterMoe.Stagger.fromEnv(null));
    assertEquals(CudaScatterMoe.Stagger.NONE, CudaScatterMoe.Stagger.fromEnv(" OFF "));
    CudaScatterMoe.Stagger two = CudaScatterMoe.Stagger.fromEnv("2:1");
    assertEquals(new CudaScatterMoe.Stagger(2, 1), two);
    assertEquals("2:1.0", two.toString());
    // half of a 16-step main loop between the two groups (D = 1024), a quarter of 64 (D = 4096)
    assertEquals(8 * CudaScatterMoe.Stagger.CYCLES_PER_K_STEP, two.cycles(1024));
    assertEquals(
        16 * CudaScatterMoe.Stagger.CYCLES_PER_K_STEP,
        CudaScatterMoe.Stagger.fromEnv("4:1").cycles(4096));
    assertEquals(0, CudaScatterMoe.Stagger.NONE.cycles(4096));
    for (String bad : new String[] {"2", "2:x", "0:1", "2:-1", "2:1:3", "65:1"}) {
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class, () -> CudaScatterMoe.Stagger.fromEnv(bad), bad);
      assertTrue(e.getMessage().startsWith("MOETUNE_MOE_STAGGER="), e.getMessage());
    }
  }

  /** MOETUNE_MOE_GROUP_GATES (variant 60): fused, split (the default), and a bad value. */
  @Test
  void groupGatesSettingParses() {
    assertFalse(CudaScatterMoe.groupGatesFromEnv(null));
    assertFalse(CudaScatterMoe.groupGatesFromEnv(" split "));
    assertTrue(CudaScatterMoe.groupGatesFromEnv("FUSED"));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> CudaScatterMoe.groupGatesFromEnv("on"));
    assertTrue(e.getMessage().startsWith("MOETUNE_MOE_GROUP_GATES=on is not"), e.getMessage());
  }

  /** MOETUNE_MOE_BESIDE (variant 61): SMS, SWIGLU/PLAIN, :v14, off, and bad values. */
  @Test
  void besideSettingParses() {
    assertEquals(CudaScatterMoe.Beside.OFF, CudaScatterMoe.Beside.fromEnv(null));
    assertEquals(CudaScatterMoe.Beside.OFF, CudaScatterMoe.Beside.fromEnv(" Off "));
    CudaScatterMoe.Beside both = CudaScatterMoe.Beside.fromEnv("66");
    assertEquals(new CudaScatterMoe.Beside(66, 66, false), both);
    assertEquals("66", both.toString());
    CudaScatterMoe.Beside two = CudaScatterMoe.Beside.fromEnv("52/0:V14");
    assertEquals(new CudaScatterMoe.Beside(52, 0, true), two);
    assertEquals(52, two.sms(true));
    assertEquals(0, two.sms(false));
    assertEquals("52/0:v14", two.toString());
    assertEquals("off", CudaScatterMoe.Beside.OFF.toString());
    for (String bad : new String[] {"0", "0/0", "-3", "x", "66:v42", "66:v14:1", "2000", "1/2/3"}) {
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class, () -> CudaScatterMoe.Beside.fromEnv(bad), bad);
      assertTrue(e.getMessage().startsWith("MOETUNE_MOE_BESIDE="), e.getMessage());
    }
  }

  /**
   * MOETUNE_MOE_PINGPONG (variants 62-66): each alone, a dX2 variant with v64, off (the default),
   * bad values; the kernels' shared memory (moe_wgmma_ws.cu ws_pp_smem_bytes plus the tile table)
   * fits a Hopper block for 64 experts.
   */
  @Test
  void pingPongSettingParses() {
    assertEquals(CudaScatterMoe.PingPong.OFF, CudaScatterMoe.PingPong.fromEnv(null));
    assertEquals(CudaScatterMoe.PingPong.OFF, CudaScatterMoe.PingPong.fromEnv(" Off "));
    assertEquals(new CudaScatterMoe.PingPong(62, 0), CudaScatterMoe.PingPong.fromEnv("v62"));
    assertEquals(new CudaScatterMoe.PingPong(63, 0), CudaScatterMoe.PingPong.fromEnv(" V63 "));
    assertEquals(new CudaScatterMoe.PingPong(0, 64), CudaScatterMoe.PingPong.fromEnv("v64"));
    CudaScatterMoe.PingPong both = CudaScatterMoe.PingPong.fromEnv("v64/v63");
    assertEquals(new CudaScatterMoe.PingPong(63, 64), both);
    assertEquals("v63/v64", both.toString());
    assertEquals("v62", new CudaScatterMoe.PingPong(62, 0).toString());
    assertEquals("off", CudaScatterMoe.PingPong.OFF.toString());
    for (String bad :
        new String[] {"v27", "v62/v63", "v65/v62", "v64/v64", "v64/v66", "v62/", "on"}) {
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class, () -> CudaScatterMoe.PingPong.fromEnv(bad), bad);
      assertTrue(
          e.getMessage().startsWith("MOETUNE_MOE_PINGPONG=" + bad + " is not"), e.getMessage());
    }
    assertThrows(IllegalArgumentException.class, () -> new CudaScatterMoe.PingPong(61, 0));
    assertThrows(IllegalArgumentException.class, () -> new CudaScatterMoe.PingPong(0, 65));
    // 1 KiB slack, four stages of 40 KiB, two 16 KiB slots, 32 + 64 bytes of barriers, 129 ints
    int four = 1024 + 4 * 40960 + 2 * 16384 + 32 + 64 + 129 * 4;
    assertEquals(four, new CudaScatterMoe.PingPong(62, 0).dx2Smem(64));
    assertEquals(four, CudaScatterMoe.PingPong.fromEnv("v64").fwd1Smem(64));
    // five stages, one slot
    int five = 1024 + 5 * 40960 + 16384 + 32 + 80 + 129 * 4;
    assertEquals(five, new CudaScatterMoe.PingPong(63, 0).dx2Smem(64));
    assertTrue(five <= 227 * 1024, "variant 63 fits 64 experts");
    // six stages of 32 KiB (128 x 128 tiles), two slots
    int six = 1024 + 6 * 32768 + 2 * 16384 + 32 + 96 + 129 * 4;
    assertEquals(six, CudaScatterMoe.PingPong.fromEnv("v65").dx2Smem(64));
    assertEquals(six, CudaScatterMoe.PingPong.fromEnv("v66").fwd1Smem(64));
    assertEquals("v65/v66", CudaScatterMoe.PingPong.fromEnv("v66/v65").toString());
    assertTrue(six <= 227 * 1024, "variant 65 fits 64 experts");
    assertEquals(64, new CudaScatterMoe.PingPong(63, 0).dx2Rows());
    assertEquals(128, new CudaScatterMoe.PingPong(65, 66).dx2Rows());
    assertEquals(128, CudaScatterMoe.PingPong.OFF.dx2Rows());
    assertEquals(
        List.of(
            "scatter2scatter_ws256_nc_glubwd_fac_kernel56",
            "scatter2scatter_ws256_nc_glubwd_fac_pp_kernel62",
            "scatter2scatter_ws256_nc_glubwd_fac_pp_kernel63",
            "scatter2scatter_ws128_nc_glubwd_fac_pp_kernel65"),
        CudaScatterMoe.gluFactorsBackwardKernelNames());
  }

  /**
   * The lab settings together (CudaScatterMoe.Lab, what MOE_BENCH_SETTINGS and the GPU tests
   * switch): base, +-joined entries over the base, each setting's own parsing, a bad entry.
   */
  @Test
  void labSettingsJoin() {
    CudaScatterMoe.Lab off =
        new CudaScatterMoe.Lab(
            CudaScatterMoe.Stagger.NONE,
            false,
            CudaScatterMoe.Beside.OFF,
            CudaScatterMoe.PingPong.OFF);
    assertEquals(off, off.with(" base "));
    CudaScatterMoe.Lab l = off.with("stagger=2:1+pingpong=v65/v66+groupgates=fused");
    assertEquals(
        new CudaScatterMoe.Lab(
            new CudaScatterMoe.Stagger(2, 1),
            true,
            CudaScatterMoe.Beside.OFF,
            new CudaScatterMoe.PingPong(65, 66)),
        l);
    assertEquals(
        "MOETUNE_MOE_STAGGER=2:1.0 MOETUNE_MOE_GROUP_GATES=fused MOETUNE_MOE_BESIDE=off"
            + " MOETUNE_MOE_PINGPONG=v65/v66",
        l.toString());
    assertEquals(off, l.with("stagger=off+groupgates=split+pingpong=off"));
    assertEquals(new CudaScatterMoe.Beside(52, 66, false), off.with("beside=52/66").beside());
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> off.with("stagger=2:1+fast=1"));
    assertTrue(e.getMessage().startsWith("lab setting fast=1 is not"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> off.with("pingpong=v27"));
  }
}
