package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.CudaContext.blockFor;
import static moetune.engine.backend.cuda.CudaContext.dt;
import static moetune.engine.backend.cuda.CudaContext.require;

import java.util.ArrayList;
import java.util.List;
import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * scatter2scatter, groupXtY, group, combine and combineGatesBackward on the GPU: the ScatterMoE
 * kernels (scatter2scatter.cu, moe_mma.cu, moe_wgmma.cu, groupxty.cu, group.cu). Routing
 * (CudaRouter) stays on the device: top-k, the counting sort and the expert offsets never visit the
 * host. The CPU twin is {@code CpuScatterMoe}.
 */
final class CudaScatterMoe {
  private static final int TILE = 64; // tile.cuh TBM = TBN (the float32 SIMT kernels)
  private static final int TC_TILE =
      128; // tc_tile.cuh TC_BM = TC_BN (the bf16 tensor-core kernels, variant 1)
  // moe_mma.cu (variant 2: mma.sync + 4-stage cp.async): MM_BM = MM_BN, MM_SMEM_BYTES
  private static final int MM_TILE = 128, MM_SMEM_BYTES = 4 * 2 * 128 * 40 * 2;
  // its per-block expert table takes (2E + 1) ints of shared memory next to the 80 KiB of stages;
  // up to 4096 experts two blocks still fit an SM (beyond, variant 1 runs)
  private static final int MM_MAX_EXPERTS = 4096;
  // moe_wgmma.cu (variant 3: sm_90a wgmma): wg_smem_bytes(256, 4) and wg_smem_bytes(128, 3); the
  // MN-major descriptors' leading byte offset (one 64-column slab of a tile)
  private static final int WG_N256_SMEM = 4 * (128 + 256) * 64 * 2 + 1024,
      WG_N128_SMEM = 3 * (128 + 128) * 64 * 2 + 1024,
      WG_SLAB = 8192;
  // moe_wgmma_ws.cu (variant 5: warp-specialised, TMA): ws_smem_bytes(256, 4), ws_smem_bytes(128,
  // 6) (stages + 1 KiB alignment slack + the full and empty barriers), 384 threads
  private static final int WS_256_SMEM = 4 * (128 + 256) * 64 * 2 + 1024 + 2 * 4 * 8,
      WS_128_SMEM = 6 * (128 + 128) * 64 * 2 + 1024 + 2 * 6 * 8,
      WS_THREADS = 384;
  // variant 11's staging after the stages (moe_wgmma_ws.cu WS_GLU_OUT_BYTES; the backward adds
  // its two 8-byte barriers, variant 13's backward four); the most dynamic shared memory a Hopper
  // block may have
  static final int WS_GLU_OUT_BYTES = 2 * 64 * 128 * 2,
      WS_GLU_BWD_OUT_BYTES = WS_GLU_OUT_BYTES + 16,
      WS_GLU_BWD13_OUT_BYTES = WS_GLU_OUT_BYTES + 32,
      // variant 14's dW staging (moe_wgmma_ws.cu WS_XTY_OUT_BYTES: two 8 KiB buffers per consumer
      // warpgroup)
      WS_XTY_OUT_BYTES = 2 * 2 * 64 * 32 * 4,
      // variant 16's per-warp buffers (moe_wgmma_ws.cu WS_ST_OUT_BYTES: eight consumer warps x 16
      // rows x 128 bytes)
      WS_ST_OUT_BYTES = 8 * 16 * 128,
      MAX_SMEM = 227 * 1024;

  /**
   * Which bf16 kernels run the grouped products (environment MOETUNE_MOE_KERNEL). AUTO takes, per
   * product, the kernel measured fastest on the device (kernels/lab/moe/README.md): WS256R
   * (variants 5 and 7: wgmma + TMA, sm_90a) on compute capability 9.0, with the expert MLP's SwiGLU
   * in the epilogues of its first product and its down product's dX ({@link
   * #scatter2scatterSwiglu}: variants 15 and 25, the tiles through shared memory and TMA in
   * double-buffered rounds; since session 49 the expert MLP saves SwiGLU's backward factors in h's
   * place, {@link #scatter2scatterSwigluFactors}: variant 56, kernel15's rounds storing the factors
   * and kernel25's over dy grouped with its gates, dH = (dA p, dA q)), the float32 weight gradients
   * added by TMA reductions from CTAs in clusters of two sharing one operand tile by TMA multicast
   * (variant 42), the other two products' bf16 tiles leaving through shared memory in full 128-byte
   * row pieces (variant 16) and group reading each token's row once (group_tokens_kernel); variant
   * 2 (mma.sync) elsewhere. A named family runs the unfused ops; V10, V11, V15 and V16 keep earlier
   * epilogues and V14 the dW kernel before variant 42, so one process can time them all.
   */
  enum Kernel {
    AUTO,
    /** Variant 2 (moe_mma.cu) for every product. */
    V2,
    /** Variant 3 with 128 x 256 tiles for every product (compute capability 9.0 only). */
    N256,
    /** Variant 3 with 128 x 128 tiles for every product (compute capability 9.0 only). */
    N128,
    /**
     * Variant 5 (warp-specialised: TMA weights, mbarrier stages, setmaxnreg) with 128 x 256 tiles
     * for every product (compute capability 9.0 only).
     */
    WS256,
    /** Variant 5 with 128 x 128 tiles (6 stages) for every product (compute capability 9.0). */
    WS128,
    /**
     * WS256 with the weight gradients by variant 7 (variant 5's dW kernel whose float32 epilogue
     * adds by red.global instead of a load, add and store; compute capability 9.0).
     */
    WS256R,
    /**
     * AUTO with the SwiGLU epilogues of variant 10 as first landed (kernel10: direct stores, h read
     * from DRAM), so one process can time it against AUTO's variant 11 (like every family before
     * {@link #generation} 16, with variant 5's plain epilogue and group by output row).
     */
    V10,
    /**
     * AUTO with variant 11's SwiGLU epilogues (kernel11: rounds through one buffer) instead of
     * variants 15 and 13 (the same double-buffered) and variant 7's float32 dW epilogue (red.global
     * from the threads) instead of variant 14's (TMA reductions), so one process can time them
     * (variant 5's plain epilogue and group by output row, as V15).
     */
    V11,
    /**
     * AUTO as of variant 15 (session 25): the plain products' tiles stored from the threads
     * (variant 5's epilogue) instead of variant 16's, and group by output row (group_kernel, which
     * reads each token's row k times) instead of by token, so one process can time both.
     */
    V15,
    /**
     * AUTO as of variant 16 (session 26): the down product's dX by variant 13 (each pair of an
     * epilogue round loaded, computed and stored in turn) instead of variant 25 (the round's loads,
     * math and stores batched), the same values, so one process can time both.
     */
    V16,
    /**
     * AUTO as of session 38: the float32 weight gradients by variant 14 (one CTA a tile) instead of
     * variant 42 (clusters of two CTAs over adjacent o tiles sharing the x tile by TMA multicast),
     * the same values, so one process can time both.
     */
    V14,
    /**
     * AUTO with the first product's epilogue by variant 39 (variant 15's six store rounds issued by
     * the producer warpgroup's TMA thread, so the consumer warps take no named barrier), the same
     * values, so one process can time both.
     */
    V54,
    /**
     * AUTO saving h as before variant 56 (kernel15's h, kernel25's dX2 gathering dy and taking the
     * gates' gradient from dA), so one process can time both paths: AUTO saves SwiGLU's backward
     * factors in h's place (variant 56, family v56 in session 49: the first product by kernel56,
     * which stores p and q where kernel15 stores the gate and the up half; the down product's dX by
     * kernel56 over dy's rows grouped with their gates, dH = (dA p, dA q); the gates' gradient from
     * the forward's ungated rows). MoeMlp asks {@link CudaScatterMoe#savesFactors}.
     */
    H;

    /**
     * AUTO, V10, V11, V15, V16 or V14: the family picked per product, falling back where TMA cannot
     * run.
     */
    boolean picked() {
      return generation() > 0;
    }

    /**
     * The newest epilogue variant a picked family runs, 0 for a named one: from 11 the SwiGLU tiles
     * go through shared memory (variant 11), from 15 in double-buffered rounds with the float32 dW
     * added by TMA reductions (variants 15, 13, 14), from 16 the plain products' tiles leave in
     * 16-byte row pieces (variant 16) and group reads each token's row once, from 25 the down
     * product's dX epilogue batches each round's loads, math and stores (variant 25).
     */
    int generation() {
      return switch (this) {
        case V10 -> 10;
        case V11 -> 11;
        case V15 -> 15;
        case V16 -> 16;
        case AUTO, V14, V54, H -> 25;
        default -> 0;
      };
    }

    boolean warpSpecialised() {
      return this == WS256 || this == WS128 || this == WS256R;
    }

    int tileN() {
      return this == N256 || this == WS256 || this == WS256R ? 256 : 128;
    }

    /** The dW kernel of a warp-specialised family. */
    String groupXtYKernel() {
      return this == WS256R ? "group_xty_ws256_red_kernel7" : "group_xty_ws" + tileN() + "_kernel5";
    }

    static Kernel fromEnv(String value) {
      if (value == null || value.isBlank()) {
        return AUTO;
      }
      return switch (value.strip().toLowerCase(java.util.Locale.ROOT)) {
        case "auto" -> AUTO;
        case "v2" -> V2;
        case "n256" -> N256;
        case "n128" -> N128;
        case "ws256" -> WS256;
        case "ws128" -> WS128;
        case "ws256r" -> WS256R;
        case "v10" -> V10;
        case "v11" -> V11;
        case "v15" -> V15;
        case "v16" -> V16;
        case "v14" -> V14;
        case "v54" -> V54;
        case "h" -> H;
        default ->
            throw new IllegalArgumentException(
                "MOETUNE_MOE_KERNEL="
                    + value
                    + " is not a MoE kernel family: use auto (the default), v2 (mma.sync), n256,"
                    + " n128, ws256, ws128, ws256r, v10, v11, v15, v16, v14, v54 or h"
                    + " (wgmma, Hopper only)");
      };
    }
  }

  /** The bf16 product kinds, each with its own measured choice. */
  enum Product {
    /** x W^T (the forward products). */
    FORWARD,
    /** x W (the dX products). */
    DX,
    /** dy^T x grouped over rows (the weight gradients). */
    DW
  }

  /**
   * Variant 59 (a lab setting, off by default): the warp-specialised products through TMA (the
   * plain ones, the SwiGLU forward's kernels 11, 15, 39 and 56, kernel56's dX2, the float32 dW by
   * TMA reductions) start their persistent blocks in {@code phases} groups, group g of them g x
   * {@code mainLoops} / phases of one tile's main loop late (a main loop counted as {@link
   * #CYCLES_PER_K_STEP} cycles a 64-wide k step), so that their epilogues, which move the tile's
   * bytes to and from DRAM, do not all fall at once. MOETUNE_MOE_STAGGER=PHASES:MAINLOOPS (for
   * example 2:1), off or unset: none. The values are the same bit for bit.
   */
  record Stagger(int phases, double mainLoops) {
    /**
     * One 128 x 256 x 64 k step: 1,024 cycles at the tensor cores' 2,048 FMA a clock, the plain
     * products running at 88-92% of that (kernels/lab/moe, session 32).
     */
    static final int CYCLES_PER_K_STEP = 1100;

    static final Stagger NONE = new Stagger(1, 0);

    Stagger {
      if (phases < 1 || phases > 64 || !(mainLoops >= 0 && mainLoops <= 16)) {
        throw new IllegalArgumentException(
            "MOETUNE_MOE_STAGGER="
                + phases
                + ":"
                + mainLoops
                + ": PHASES must be 1 to 64 and MAINLOOPS 0 to 16 (for example 2:1)");
      }
    }

    static Stagger fromEnv(String value) {
      if (unset(value)) {
        return NONE;
      }
      String[] f = value.strip().split(":");
      try {
        if (f.length == 2) {
          return new Stagger(Integer.parseInt(f[0].strip()), Double.parseDouble(f[1].strip()));
        }
      } catch (NumberFormatException notANumber) {
        // the message below
      }
      throw new IllegalArgumentException(
          "MOETUNE_MOE_STAGGER=" + value + " is not PHASES:MAINLOOPS (for example 2:1, or off)");
    }

    /**
     * The delay between two groups in clock cycles for a product whose reduction runs over k
     * elements (inDim for scatter2scatter, an expert's rows for groupXtY).
     */
    int cycles(long k) {
      if (phases <= 1) {
        return 0;
      }
      long kSteps = (k + 63) / 64;
      return (int)
          Math.min(Integer.MAX_VALUE, Math.round(mainLoops * kSteps * CYCLES_PER_K_STEP / phases));
    }

    @Override
    public String toString() {
      return phases <= 1 ? "off" : phases + ":" + mainLoops;
    }
  }

  /**
   * Variant 61 (a lab setting, off by default): an expert product's weight gradient (groupXtY) on a
   * second stream with persistent grids sized for some of the multiprocessors, beside its dX on the
   * others, so that the epilogues that move their tiles' bytes to and from DRAM (dX2's SwiGLU
   * backward, dW's float32 reductions) run under the other kernel's tensor work. {@code swigluSms}:
   * dW2's share beside the down product's dX2 (kernel56, {@link
   * moetune.engine.backend.Backend#swigluFactorsBackwardBesideDw}); {@code plainSms}: a plain
   * product's dW beside its dX (kernel16; the up product's dW1 and dX1, {@link
   * moetune.engine.backend.Backend#scatter2scatterBesideDw}); 0: that pair in turn. v14: the dW by
   * variant 14 (one CTA a tile) instead of variant 42's clusters of two, whose pairs of SMs may not
   * find room beside the dX's blocks. MOETUNE_MOE_BESIDE=SMS (both pairs), SWIGLU/PLAIN (for
   * example 52/66), either with :v14; off or unset: none. The values are the same bit for bit.
   */
  record Beside(int swigluSms, int plainSms, boolean v14) {
    static final Beside OFF = new Beside(0, 0, false);

    Beside {
      if (swigluSms < 0 || swigluSms > 1024 || plainSms < 0 || plainSms > 1024) {
        throw new IllegalArgumentException(
            "MOETUNE_MOE_BESIDE="
                + swigluSms
                + "/"
                + plainSms
                + ": each SMS must be 0 to the device's multiprocessors");
      }
    }

    static Beside fromEnv(String value) {
      if (unset(value)) {
        return OFF;
      }
      String[] f = value.strip().split(":");
      try {
        if (f.length <= 2 && (f.length == 1 || f[1].strip().equalsIgnoreCase("v14"))) {
          String[] n = f[0].split("/");
          if (n.length <= 2) {
            int swiglu = Integer.parseInt(n[0].strip());
            int plain = n.length == 2 ? Integer.parseInt(n[1].strip()) : swiglu;
            if (swiglu >= 0 && plain >= 0 && swiglu + plain > 0) {
              return new Beside(swiglu, plain, f.length == 2);
            }
          }
        }
      } catch (NumberFormatException notANumber) {
        // the message below
      }
      throw new IllegalArgumentException(
          "MOETUNE_MOE_BESIDE="
              + value
              + " is not SMS or SWIGLU_SMS/PLAIN_SMS, either with :v14 (the multiprocessors for the"
              + " weight gradients beside their dX, for example 52/66, or off)");
    }

    /** The dW's multiprocessors beside the SwiGLU dX (swiglu) or a plain dX; 0: in turn. */
    int sms(boolean swiglu) {
      return swiglu ? swigluSms : plainSms;
    }

    @Override
    public String toString() {
      if (swigluSms == 0 && plainSms == 0) {
        return "off";
      }
      return (swigluSms == plainSms ? "" + swigluSms : swigluSms + "/" + plainSms)
          + (v14 ? ":v14" : "");
    }
  }

  /**
   * Variants 62-66 (lab settings, off by default until a GPU run measures them): variant 56's two
   * SwiGLU products on ping-pong consumer warpgroups, each owning its tiles, so that one tile's
   * epilogue runs under the other warpgroup's main loop (moe_wgmma_ws.cu ws_s2s_pp_fac). {@code
   * dx2}: the down product's dX2 with SwiGLU's backward from the factors (kernel56's) by variant 62
   * (64 x 256 tiles a warpgroup, four stages, a staging slot a warpgroup), 63 (five stages, one
   * slot the epilogues take in turn) or 65 (128 x 128 tiles a warpgroup, six stages), 0: kernel56.
   * {@code fwd1}: the first product storing the factors (kernel56's) by variant 64 (64 x 128 output
   * tiles a warpgroup, four stages) or 66 (128 x 64, six stages), 0: kernel56.
   * MOETUNE_MOE_PINGPONG=v62, v63, v65, v64, v66, or a dX2 variant and a first product's joined by
   * / (v63/v64); off or unset: neither. The values are the same bit for bit.
   */
  record PingPong(int dx2, int fwd1) {
    static final PingPong OFF = new PingPong(0, 0);

    PingPong {
      if ((dx2 != 0 && dx2 != 62 && dx2 != 63 && dx2 != 65)
          || (fwd1 != 0 && fwd1 != 64 && fwd1 != 66)) {
        throw new IllegalArgumentException(
            "MOETUNE_MOE_PINGPONG: variants "
                + dx2
                + " and "
                + fwd1
                + ": the dX2 variant is 62, 63 or 65 (or none), the first product's 64 or 66 (or"
                + " none)");
      }
    }

    static PingPong fromEnv(String value) {
      if (unset(value)) {
        return OFF;
      }
      int dx2 = 0, fwd1 = 0;
      for (String v : value.strip().toLowerCase(java.util.Locale.ROOT).split("/", -1)) {
        switch (v.strip()) {
          case "v62", "v63", "v65" -> {
            if (dx2 != 0) {
              throw bad(value);
            }
            dx2 = Integer.parseInt(v.strip().substring(1));
          }
          case "v64", "v66" -> {
            if (fwd1 != 0) {
              throw bad(value);
            }
            fwd1 = Integer.parseInt(v.strip().substring(1));
          }
          default -> throw bad(value);
        }
      }
      return new PingPong(dx2, fwd1);
    }

    private static IllegalArgumentException bad(String value) {
      return new IllegalArgumentException(
          "MOETUNE_MOE_PINGPONG="
              + value
              + " is not v62, v63, v65, v64, v66, or a dX2 variant and a first product's joined by"
              + " / (for example v63/v64), or off (the SwiGLU products on ping-pong warpgroups:"
              + " v62, v63 and v65 the down product's dX, v64 and v66 the first product)");
    }

    /**
     * moe_wgmma_ws.cu ws_pp_smem_bytes plus the experts' tile table: the alignment slack, the
     * stages (wm rows and 256 columns, or 128 rows and 128 columns, of 64 k each), the staging
     * slots of 16 KiB and their barriers, the stages' barriers.
     */
    static int smem(int stages, int wm, boolean sharedStaging, long experts) {
      return 1024
          + stages * (wm + (wm == 64 ? 256 : 128)) * 64 * 2
          + (sharedStaging ? 1 : 2) * (WS_GLU_OUT_BYTES / 2)
          + 32
          + 16 * stages
          + (int) (2 * experts + 1) * 4;
    }

    /**
     * The dX2 kernel's shared memory (variant 62: four stages, two slots; 63: five, one; 65: six
     * stages of 128 x 128 tiles, two slots).
     */
    int dx2Smem(long experts) {
      return switch (dx2) {
        case 63 -> smem(5, 64, true, experts);
        case 65 -> smem(6, 128, false, experts);
        default -> smem(4, 64, false, experts);
      };
    }

    /** The rows of a dX2 tile: kernel56's and variant 65's 128, variants 62 and 63's 64. */
    int dx2Rows() {
      return dx2 == 62 || dx2 == 63 ? 64 : 128;
    }

    /**
     * The first product's kernel's shared memory (variant 64: four stages, two slots; 66: six
     * stages of 128-row tiles, two slots).
     */
    int fwd1Smem(long experts) {
      return fwd1 == 66 ? smem(6, 128, false, experts) : smem(4, 64, false, experts);
    }

    @Override
    public String toString() {
      if (dx2 == 0 && fwd1 == 0) {
        return "off";
      }
      return (dx2 != 0 ? "v" + dx2 : "")
          + (dx2 != 0 && fwd1 != 0 ? "/" : "")
          + (fwd1 != 0 ? "v" + fwd1 : "");
    }
  }

  /** A lab setting's variable unset, blank or off: the setting is off. */
  static boolean unset(String value) {
    return value == null || value.isBlank() || value.strip().equalsIgnoreCase("off");
  }

  /**
   * The lab settings of one backend, each off by default and each giving the same values bit for
   * bit: variant 59's start groups, variant 60's gates' gradient in the group's pass, variant 61's
   * weight gradients beside their dX, variants 62-66's SwiGLU products on ping-pong warpgroups.
   * From MOETUNE_MOE_STAGGER, MOETUNE_MOE_GROUP_GATES, MOETUNE_MOE_BESIDE and MOETUNE_MOE_PINGPONG;
   * tests and MoeLayerBench switch them with {@link #with}.
   */
  record Lab(Stagger stagger, boolean groupGatesFused, Beside beside, PingPong pingPong) {
    static Lab fromEnv() {
      return new Lab(
          Stagger.fromEnv(System.getenv("MOETUNE_MOE_STAGGER")),
          groupGatesFromEnv(System.getenv("MOETUNE_MOE_GROUP_GATES")),
          Beside.fromEnv(System.getenv("MOETUNE_MOE_BESIDE")),
          PingPong.fromEnv(System.getenv("MOETUNE_MOE_PINGPONG")));
    }

    /**
     * These settings with spec's: base (none), or +-joined entries stagger=, groupgates=, beside=,
     * pingpong= taking their variables' values (for example stagger=2:1+pingpong=v65).
     */
    Lab with(String spec) {
      Lab l = this;
      if (spec.strip().equals("base")) {
        return l;
      }
      for (String kv : spec.split("\\+")) {
        String[] f = kv.strip().split("=", 2);
        String v = f.length == 2 ? f[1] : "";
        l =
            switch (f[0].strip()) {
              case "stagger" ->
                  new Lab(Stagger.fromEnv(v), l.groupGatesFused, l.beside, l.pingPong);
              case "groupgates" -> new Lab(l.stagger, groupGatesFromEnv(v), l.beside, l.pingPong);
              case "beside" -> new Lab(l.stagger, l.groupGatesFused, Beside.fromEnv(v), l.pingPong);
              case "pingpong" ->
                  new Lab(l.stagger, l.groupGatesFused, l.beside, PingPong.fromEnv(v));
              default ->
                  throw new IllegalArgumentException(
                      "lab setting "
                          + kv
                          + " is not stagger=, groupgates=, beside= or pingpong= (entries: base, or"
                          + " those joined by +)");
            };
      }
      return l;
    }

    @Override
    public String toString() {
      return "MOETUNE_MOE_STAGGER="
          + stagger
          + " MOETUNE_MOE_GROUP_GATES="
          + (groupGatesFused ? "fused" : "split")
          + " MOETUNE_MOE_BESIDE="
          + beside
          + " MOETUNE_MOE_PINGPONG="
          + pingPong;
    }
  }

  private final CudaContext b;
  private Kernel kernel;
  private Lab lab;

  CudaScatterMoe(CudaContext b) {
    this.b = b;
    this.kernel = Kernel.fromEnv(System.getenv("MOETUNE_MOE_KERNEL"));
    lab(Lab.fromEnv());
  }

  Lab lab() {
    return lab;
  }

  /** Tests and benchmarks switch the lab settings on one backend. */
  void lab(Lab l) {
    if (Math.max(l.beside().swigluSms(), l.beside().plainSms()) >= b.multiprocessors()) {
      throw new IllegalArgumentException(
          "MOETUNE_MOE_BESIDE="
              + l.beside()
              + ": "
              + b.name()
              + " has "
              + b.multiprocessors()
              + " multiprocessors; give the weight gradients fewer, so that their dX has the"
              + " others");
    }
    this.lab = l;
  }

  /**
   * Whether variant 61 is set for either pair, on Hopper (kernel56, kernel16 and the TMA dW;
   * elsewhere the two products run in turn): the expert products then ask for dW and dX in one
   * call.
   */
  boolean besideOn() {
    return (lab.beside().swigluSms() > 0 || lab.beside().plainSms() > 0) && hopper();
  }

  /**
   * Variant 61: dw (a weight gradient: groupXtY) on the second stream with the setting's
   * multiprocessors for the pair (swiglu: beside the SwiGLU dX), beside dx on the backend's stream
   * with the others ({@link CudaContext#beside}); dw in variant 14 where the setting says so and
   * the family is AUTO. With the pair's share 0, or off Hopper, dw then dx in turn.
   */
  void beside(boolean swiglu, Runnable dw, Runnable dx) {
    int sms = lab.beside().sms(swiglu);
    if (sms == 0 || !hopper()) {
      dw.run();
      dx.run();
      return;
    }
    b.beside(
        sms,
        () -> {
          Kernel family = kernel;
          if (lab.beside().v14() && kernel == Kernel.AUTO) {
            kernel = Kernel.V14;
          }
          try {
            dw.run();
          } finally {
            kernel = family;
          }
        },
        dx);
  }

  /**
   * Variant 60 (a lab setting, off by default until a GPU run measures it):
   * MOETUNE_MOE_GROUP_GATES=fused runs {@link #groupGatesBackward} as one pass over dY; split or
   * unset: combineGatesBackward, then group.
   */
  static boolean groupGatesFromEnv(String value) {
    if (value == null || value.isBlank()) {
      return false;
    }
    return switch (value.strip().toLowerCase(java.util.Locale.ROOT)) {
      case "fused" -> true;
      case "split" -> false;
      default ->
          throw new IllegalArgumentException(
              "MOETUNE_MOE_GROUP_GATES="
                  + value
                  + " is not fused or split (split, the default, runs combineGatesBackward, then"
                  + " group)");
    };
  }

  Kernel kernel() {
    return kernel;
  }

  /** Tests and benchmarks switch kernel families on one backend. */
  void kernel(Kernel k) {
    this.kernel = k;
  }

  /** Whether this device runs the sm_90a kernels (variant 3). */
  boolean hopper() {
    return b.computeCapability() == 90;
  }

  /**
   * The Hopper kernels (variant 3, 5 or 7) for a product that variant 2 can take, or null for
   * variant 2: MOETUNE_MOE_KERNEL's family, or for AUTO the warp-specialised variant 5 with 128 x
   * 256 tiles and variant 7's dW (falling back to {@link #variant3} where TMA cannot describe an
   * operand).
   */
  private Kernel wgmma(Product p, long experts, boolean scatteredOut, long inDim) {
    if (!hopper() || experts > MM_MAX_EXPERTS) {
      if (!kernel.picked() && kernel != Kernel.V2) {
        require(
            hopper(),
            "MOETUNE_MOE_KERNEL="
                + kernel.name().toLowerCase(java.util.Locale.ROOT)
                + " needs compute capability 9.0; "
                + b.name()
                + " has "
                + b.computeCapability()
                + ": use auto or v2");
      }
      return null;
    }
    return switch (kernel) {
      case V2 -> null;
      case N256, N128, WS256, WS128, WS256R -> kernel;
      // variant 5 with 128 x 256 tiles for every product, the weight gradients by variant 7 (the
      // red.global epilogue): on the H200 (2026-12-02 19:17 UTC, kernels/lab/moe/README.md) the
      // six products at 1.11 / 1.13 / 1.22x dense on the Mixtral / fine-grained / 1.5B shapes
      // against variant 5's 1.26 / 1.26 / 1.43x, and MoeLayerBench's Mixtral layer fwd+bwd at
      // 1.17x against 1.30x in the same run (docs/performance.md)
      case AUTO, V10, V11, V15, V16, V14, V54, H -> Kernel.WS256R;
    };
  }

  /**
   * Variant 3's per-product choice (the lab's measurement of 2026-12-02, kernels/lab/moe): 128 x
   * 256 tiles where the output rows are grouped, and for scattered output rows only over a long k
   * (inDim >= 16384); 128 x 128 tiles for the other scattered-output products and the weight
   * gradients. AUTO falls back to it where a tensor map cannot describe an operand.
   */
  static Kernel variant3(Product p, boolean scatteredOut, long inDim) {
    return switch (p) {
      case FORWARD, DX -> !scatteredOut || inDim >= 16384 ? Kernel.N256 : Kernel.N128;
      case DW -> Kernel.N128;
    };
  }

  void scatter2scatter(
      Tensor x,
      Tensor w,
      Tensor bias,
      boolean transW,
      int fanOut,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      boolean groupedIn,
      boolean groupedOut,
      Tensor y) {
    String op = "scatter2scatter";
    CudaTensor xt = b.ct(x, op, "x"), wt = b.ct(w, op, "W"), yt = b.ct(y, op, "y");
    CudaTensor se = b.ct(sortedExpertIdxs, op, "sortedExpertIdxs"),
        ss = b.ct(sortedScatteredIdxs, op, "sortedScatteredIdxs");
    CudaTensor bt = bias == null ? null : b.ct(bias, op, "bias");
    int[] shape = OpShapes.scatter2scatter(xt, wt, bt, transW, fanOut, se, ss, groupedIn, yt);
    long e = shape[0], in = shape[1], out = shape[2], m = shape[3];
    String shapes = "x " + xt.describe() + " W " + wt.describe() + " k=" + fanOut;
    if (xt.dtype() == DType.BF16 && wt.dtype() == DType.BF16) {
      boolean v2 =
          mmaRows(in, transW ? 8 : out)
              && xt.address() % 16 == 0
              && wt.address() % 16 == 0
              && yt.address() % 4 == 0
              && e <= MM_MAX_EXPERTS;
      // variant 2 is persistent: about two blocks per SM walk the (expert row tile, column tile)
      // space that each block builds from the sorted expert indices; variant 1 (rows not a
      // multiple of 8 elements, unaligned bases) assigns row tiles per expert on the device, so
      // its grid is an upper bound
      Product product = transW ? Product.FORWARD : Product.DX;
      Kernel wg = v2 ? wgmma(product, e, !groupedOut, in) : null;
      int[] tmW = null, tmA = null;
      if (wg != null && wg.warpSpecialised() && m > 0) {
        int bn = wg.tileN();
        // weight: (E, out, in) read as (n, k) boxes for x W^T, (E, in, out) as 64 x 64 slabs of
        // (k, n) for x W; rows of x by TMA when grouped, else gathered by cp.async (tmA unused)
        try {
          tmW =
              transW
                  ? TensorMaps.bf16(
                      wt.address(), new long[] {in, out, e}, new int[] {64, bn, 1}, op + " W")
                  : TensorMaps.bf16(
                      wt.address(), new long[] {out, in, e}, new int[] {64, 64, 1}, op + " W");
          tmA =
              groupedIn
                  ? TensorMaps.bf16(
                      xt.address(), new long[] {in, m}, new int[] {64, 128}, op + " x")
                  : tmW;
        } catch (IllegalArgumentException notTma) {
          if (!kernel.picked()) {
            throw notTma; // asked for by name: say why it cannot run
          }
          wg = variant3(product, !groupedOut, in); // a view TMA cannot describe
        }
      }
      if (wg != null && wg.warpSpecialised()) {
        if (m == 0) {
          return; // no routed rows (a tensor map needs extents of at least 1)
        }
        int bn = wg.tileN();
        long wsTiles = ((m + MM_TILE - 1) / MM_TILE + e) * ((out + bn - 1) / bn);
        // variant 16 (AUTO): bf16 y without bias leaves through shared memory in 16-byte row
        // pieces, so its rows must start 16-byte aligned (out a multiple of 8; a LoRA rank of 4
        // is not: the first build stored there misaligned, H200 2026-12-03 call 2)
        boolean st =
            kernel.generation() >= 16
                && bn == 256
                && bias == null
                && yt.dtype() == DType.BF16
                && yt.address() % 16 == 0
                && out % 8 == 0
                && stSmem(e) <= MAX_SMEM;
        b.kernel(scatter2scatterWsKernel(bn, transW, groupedIn, st))
            .shapes(shapes)
            .grid(Math.min(wsTiles, b.multiprocessors()))
            .block(WS_THREADS)
            .smem(st ? stSmem(e) : (bn == 256 ? WS_256_SMEM : WS_128_SMEM) + (int) (2 * e + 1) * 4)
            .struct("tmW", tmW)
            .struct("tmA", tmA)
            .ptr("x", xt.address())
            .ptr("bias", b.ptr(bias, op, "bias"))
            .i32("bdt", dt(bias, op, "bias"))
            .ptr("y", yt.address())
            .i32("ydt", dt(yt, op, "y"))
            .ptr("sortedExpert", se.address())
            .ptr("sortedScattered", ss.address())
            .i32("M", (int) m)
            .i32("E", (int) e)
            .i32("inDim", (int) in)
            .i32("outDim", (int) out)
            .i32("fanOut", fanOut)
            .i32("groupedOut", groupedOut ? 1 : 0)
            .i32("staggerCycles", lab.stagger().cycles(in))
            .i32("staggerPhases", lab.stagger().phases())
            .launch();
        return;
      }
      KernelLaunch l;
      if (wg != null) {
        int bn = wg == Kernel.N256 ? 256 : 128;
        long wgTiles = ((m + MM_TILE - 1) / MM_TILE + e) * ((out + bn - 1) / bn);
        l =
            b.kernel(
                    wg == Kernel.N256
                        ? "scatter2scatter_wgmma_n256_kernel3"
                        : "scatter2scatter_wgmma_n128_kernel3")
                .grid(Math.min(wgTiles, (wg == Kernel.N256 ? 1L : 2L) * b.multiprocessors()))
                .smem((wg == Kernel.N256 ? WG_N256_SMEM : WG_N128_SMEM) + (int) (2 * e + 1) * 4);
      } else {
        long tiles = ((m + MM_TILE - 1) / MM_TILE + e) * ((out + MM_TILE - 1) / MM_TILE);
        l =
            b.kernel(v2 ? "scatter2scatter_bf16_kernel2" : "scatter2scatter_bf16_kernel")
                .grid(
                    v2 ? Math.min(tiles, 2L * b.multiprocessors()) : (out + TC_TILE - 1) / TC_TILE,
                    v2 ? 1 : (m + TC_TILE - 1) / TC_TILE + e)
                .smem(v2 ? MM_SMEM_BYTES + (int) (2 * e + 1) * 4 : (int) (e * 4));
      }
      // variants 1, 2 and 3 take the same arguments; variant 3 adds its descriptors' lboB
      l.shapes(shapes)
          .block(256)
          .ptr("x", xt.address())
          .ptr("w", wt.address())
          .ptr("bias", b.ptr(bias, op, "bias"))
          .i32("bdt", dt(bias, op, "bias"))
          .ptr("y", yt.address())
          .i32("ydt", dt(yt, op, "y"))
          .ptr("sortedExpert", se.address())
          .ptr("sortedScattered", ss.address())
          .i32("M", (int) m)
          .i32("E", (int) e)
          .i32("inDim", (int) in)
          .i32("outDim", (int) out)
          .i32("transW", transW ? 1 : 0)
          .i32("fanOut", fanOut)
          .i32("groupedIn", groupedIn ? 1 : 0)
          .i32("groupedOut", groupedOut ? 1 : 0);
      if (wg != null) {
        l.i32("lboB", WG_SLAB);
      }
      l.launch();
      return;
    }
    long rowTiles = (m + TILE - 1) / TILE + e;
    b.kernel("scatter2scatter_kernel")
        .shapes("x " + xt.describe() + " W " + wt.describe() + " k=" + fanOut)
        .grid((out + TILE - 1) / TILE, rowTiles)
        .block(256)
        .smem((int) (e * 4))
        .ptr("x", xt.address())
        .i32("xdt", dt(xt, op, "x"))
        .ptr("w", wt.address())
        .i32("wdt", dt(wt, op, "W"))
        .ptr("bias", b.ptr(bias, op, "bias"))
        .i32("bdt", dt(bias, op, "bias"))
        .ptr("y", yt.address())
        .i32("ydt", dt(yt, op, "y"))
        .ptr("sortedExpert", se.address())
        .ptr("sortedScattered", ss.address())
        .i32("M", (int) m)
        .i32("E", (int) e)
        .i32("inDim", (int) in)
        .i32("outDim", (int) out)
        .i32("transW", transW ? 1 : 0)
        .i32("fanOut", fanOut)
        .i32("groupedIn", groupedIn ? 1 : 0)
        .i32("groupedOut", groupedOut ? 1 : 0)
        .launch();
  }

  /**
   * Whether the SwiGLU epilogues (variants 10, 11, 13, 15 of moe_wgmma_ws.cu) run for a product
   * with these sizes and operands: on Hopper with a {@link Kernel#picked} family (a named one, such
   * as ws256r, runs the unfused ops, so one process can time both), at least one routed row, F and
   * D as variant 2's copies need them ({@link #mmaRows}), every operand bf16 with a 16-byte aligned
   * base.
   */
  private boolean swigluFused(long experts, long rows, long f, long d, CudaTensor... operands) {
    if (!kernel.picked() || !hopper() || experts > MM_MAX_EXPERTS || rows == 0 || !mmaRows(f, d)) {
      return false;
    }
    for (CudaTensor t : operands) {
      if (t.dtype() != DType.BF16 || t.address() % 16 != 0) {
        return false;
      }
    }
    return true;
  }

  /**
   * The dynamic shared memory of the SwiGLU kernels for this many experts: the stages, the experts'
   * tile table and {@code staging} bytes after them (variant 11's staging; 0 for variant 10).
   */
  static int gluSmem(long experts, int staging) {
    return WS_256_SMEM + (int) (2 * experts + 1) * 4 + staging;
  }

  /**
   * Whether variant 11 runs a SwiGLU product (else variant 10): a family from generation 11 (V10
   * keeps variant 10), and the staging fits beside the experts' tile table.
   */
  private boolean v11(long experts, int staging) {
    return kernel.generation() >= 11 && gluSmem(experts, staging) <= MAX_SMEM;
  }

  /**
   * Whether the down product's dX runs variant 13 (variant 11's epilogue in double-buffered rounds)
   * rather than variant 11: a family from generation 15, and its staging fits.
   */
  private boolean v13(long experts) {
    return kernel.generation() >= 15 && gluSmem(experts, WS_GLU_BWD13_OUT_BYTES) <= MAX_SMEM;
  }

  /**
   * Backend#scatter2scatterSwiglu by variant 11 or 10 (h and a = silu(gate) * up written by the
   * first product's epilogue; variant 11 stores full tiles by TMA from shared memory) when it
   * applies: gathered bf16 rows, F and D multiples of 8, 16-byte aligned tensors a tensor map can
   * describe. Returns false, having queued nothing, otherwise (the caller runs the two ops).
   */
  boolean scatter2scatterSwiglu(
      Tensor x,
      Tensor w,
      int fanOut,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      boolean groupedIn,
      Tensor h,
      Tensor a) {
    return swigluForward(
        "scatter2scatterSwiglu",
        false,
        x,
        w,
        fanOut,
        sortedExpertIdxs,
        sortedScatteredIdxs,
        groupedIn,
        h,
        a);
  }

  /**
   * Whether the expert MLP saves SwiGLU's backward factors (variant 56): AUTO (H saves h; the named
   * earlier families too, whose SwiGLU products run as before).
   */
  boolean savesFactors() {
    return kernel == Kernel.AUTO;
  }

  /**
   * Backend#scatter2scatterSwigluFactors by variant 56 (kernel15's rounds storing the factors p and
   * q in place of h) where variant 15 would run; false, having queued nothing, otherwise.
   */
  boolean scatter2scatterSwigluFactors(
      Tensor x,
      Tensor w,
      int fanOut,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      boolean groupedIn,
      Tensor p,
      Tensor a) {
    return swigluForward(
        "scatter2scatterSwigluFactors",
        true,
        x,
        w,
        fanOut,
        sortedExpertIdxs,
        sortedScatteredIdxs,
        groupedIn,
        p,
        a);
  }

  private boolean swigluForward(
      String op,
      boolean factors,
      Tensor x,
      Tensor w,
      int fanOut,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      boolean groupedIn,
      Tensor h,
      Tensor a) {
    CudaTensor xt = b.ct(x, op, "x"), wt = b.ct(w, op, "W"), ht = b.ct(h, op, "h");
    CudaTensor at = b.ct(a, op, "a");
    CudaTensor se = b.ct(sortedExpertIdxs, op, "sortedExpertIdxs"),
        ss = b.ct(sortedScatteredIdxs, op, "sortedScatteredIdxs");
    int[] shape = OpShapes.scatter2scatter(xt, wt, null, true, fanOut, se, ss, groupedIn, ht);
    long e = shape[0], d = shape[1], f2 = shape[2], m = shape[3], f = f2 / 2;
    OpShapes.check(f2 % 2 == 0, op + ": W " + wt.describe() + " must be (E, 2F, D)");
    OpShapes.swigluForward(ht, at);
    if (groupedIn || !swigluFused(e, m, f, d, xt, wt, ht, at)) {
      return false;
    }
    // variant 11: full tiles leave by TMA store from a staging buffer after the stages; variant 15
    // (AUTO, V15): the same in six double-buffered rounds
    // variant 39 (V54): 64 bytes of barriers after the staging
    int staging = kernel == Kernel.V54 ? WS_GLU_OUT_BYTES + 64 : WS_GLU_OUT_BYTES;
    boolean v11 = v11(e, staging), v15 = v11 && kernel.generation() >= 15;
    if (factors && !v15) {
      return false; // the factors come from variant 15's rounds only
    }
    // variants 64 and 66: the factors' product on ping-pong warpgroups, where it fits (64 x 128
    // output tiles a warpgroup, or 128 x 64)
    int pp =
        factors && lab.pingPong().fwd1() != 0 && lab.pingPong().fwd1Smem(e) <= MAX_SMEM
            ? lab.pingPong().fwd1()
            : 0;
    int rowTile = pp == 64 ? 64 : MM_TILE, tileN = pp == 66 ? 64 : 128;
    int[] tmW, tmH = null, tmAct = null;
    try { // the gate and the up half of a tile: 64 x 128 boxes of W (E, 2F, D), 64 x 64 for variant
      // 66's 64-column tiles; h and a stored by TMA in 64 x 64 boxes
      tmW =
          TensorMaps.bf16(wt.address(), new long[] {d, f2, e}, new int[] {64, tileN, 1}, op + " W");
      if (v11) {
        tmH = TensorMaps.bf16(ht.address(), new long[] {f2, m}, new int[] {64, 64}, op + " h");
        tmAct = TensorMaps.bf16(at.address(), new long[] {f, m}, new int[] {64, 64}, op + " a");
      }
    } catch (IllegalArgumentException notTma) {
      return false;
    }
    long tiles = ((m + rowTile - 1) / rowTile + e) * ((f + tileN - 1) / tileN);
    KernelLaunch l =
        v11
            ? b.kernel(
                    !v15
                        ? "scatter2scatter_ws256_tg_glu_kernel11"
                        : factors
                            ? pp == 64
                                ? "scatter2scatter_ws256_tg_glu_fac_pp_kernel64"
                                : pp == 66
                                    ? "scatter2scatter_ws128_tg_glu_fac_pp_kernel66"
                                    : "scatter2scatter_ws256_tg_glu_fac_kernel56"
                            : kernel == Kernel.V54
                                ? "scatter2scatter_ws256_tg_glu_kernel39"
                                : "scatter2scatter_ws256_tg_glu_kernel15")
                .smem(pp != 0 ? lab.pingPong().fwd1Smem(e) : gluSmem(e, staging))
                .struct("tmW", tmW)
                .struct("tmH", tmH)
                .struct("tmAct", tmAct)
            : b.kernel("scatter2scatter_ws256_tg_glu_kernel10")
                .smem(gluSmem(e, 0))
                .struct("tmW", tmW);
    l.shapes("x " + xt.describe() + " W " + wt.describe() + " k=" + fanOut)
        .grid(Math.min(tiles, b.multiprocessors()))
        .block(WS_THREADS)
        .ptr("x", xt.address())
        .ptr("h", ht.address())
        .ptr("a", at.address())
        .ptr("sortedExpert", se.address())
        .ptr("sortedScattered", ss.address())
        .i32("M", (int) m)
        .i32("E", (int) e)
        .i32("inDim", (int) d)
        .i32("F", (int) f)
        .i32("fanOut", fanOut);
    if (v11) { // variant 59's start groups (kernels 11, 15, 39, 56)
      l.i32("staggerCycles", lab.stagger().cycles(d)).i32("staggerPhases", lab.stagger().phases());
    }
    l.launch();
    return true;
  }

  /**
   * Backend#scatter2scatterSwigluFactorsBackward by variant 56 (kernel25's rounds over dY's rows
   * grouped with their gates, loaded by TMA, with dH = [dA p | dA q] in the epilogue) when its
   * staging fits and TMA can describe the tensors; false, having queued nothing, otherwise.
   */
  boolean scatter2scatterSwigluFactorsBackward(
      Tensor dYGrouped,
      Tensor w,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      Tensor p,
      Tensor dH) {
    String op = "scatter2scatterSwigluFactorsBackward";
    CudaTensor dyt = b.ct(dYGrouped, op, "dYGrouped"), wt = b.ct(w, op, "W"), pt = b.ct(p, op, "p");
    CudaTensor dht = b.ct(dH, op, "dH");
    CudaTensor se = b.ct(sortedExpertIdxs, op, "sortedExpertIdxs"),
        ss = b.ct(sortedScatteredIdxs, op, "sortedScatteredIdxs");
    long f2 = pt.cols(), m = pt.rows();
    long e = wt.dim(0), d = wt.dim(1), f = wt.dim(2);
    OpShapes.check(
        f * 2 == f2
            && dyt.rows() == m
            && dyt.cols() == d
            && dht.numel() == m * f2
            && se.numel() == m
            && ss.numel() == m,
        op
            + ": dYGrouped "
            + dyt.describe()
            + ", W "
            + wt.describe()
            + ", p "
            + pt.describe()
            + ", dH "
            + dht.describe()
            + " and the sorted indices must be (M, D), (E, D, F), (M,"
            + " 2F), (M, 2F) and (M)");
    if (!swigluFused(e, m, f, d, dyt, wt, pt, dht) || !v13(e)) {
      return false;
    }
    // variants 62 and 63: 64-row tiles, dY's rows in 64 x 64 boxes, where their stages fit
    // variants 62, 63 and 65 where their stages fit: 64 x 256 or 128 x 128 tiles
    PingPong pp =
        lab.pingPong().dx2() != 0 && lab.pingPong().dx2Smem(e) <= MAX_SMEM
            ? lab.pingPong()
            : PingPong.OFF;
    int rowTile = pp.dx2Rows(), tileN = pp.dx2() == 65 ? 128 : 256;
    int[] tmW, tmX, tmH, tmDh;
    try { // W (E, D, F) as 64 x 64 slabs of (k, n); dY's grouped rows in 64 x 128 boxes; p and dH
      // as {F, 2, M} in {32, 1, 64} boxes (the 64-byte swizzle), as variant 13
      tmW = TensorMaps.bf16(wt.address(), new long[] {f, d, e}, new int[] {64, 64, 1}, op + " W");
      tmX = TensorMaps.bf16(dyt.address(), new long[] {d, m}, new int[] {64, rowTile}, op + " dY");
      long[] halves = {f, 2, m};
      int[] box = {32, 1, 64};
      tmH = TensorMaps.bf16(pt.address(), halves, box, op + " p");
      tmDh = TensorMaps.bf16(dht.address(), halves, box, op + " dH");
    } catch (IllegalArgumentException notTma) {
      return false;
    }
    long tiles = ((m + rowTile - 1) / rowTile + e) * ((f + tileN - 1) / tileN);
    b.kernel(gluFactorsBackwardKernel(pp.dx2()))
        .smem(pp.dx2() == 0 ? gluSmem(e, WS_GLU_BWD13_OUT_BYTES) : pp.dx2Smem(e))
        .struct("tmW", tmW)
        .struct("tmX", tmX)
        .struct("tmH", tmH)
        .struct("tmDh", tmDh)
        .shapes("dY " + dyt.describe() + " W " + wt.describe())
        .grid(Math.min(tiles, b.multiprocessors()))
        .block(WS_THREADS)
        .ptr("dy", dyt.address())
        .ptr("pq", pt.address())
        .ptr("dh", dht.address())
        .ptr("sortedExpert", se.address())
        .ptr("sortedScattered", ss.address())
        .i32("M", (int) m)
        .i32("E", (int) e)
        .i32("inDim", (int) d)
        .i32("F", (int) f)
        .i32("staggerCycles", lab.stagger().cycles(d))
        .i32("staggerPhases", lab.stagger().phases())
        .launch();
    return true;
  }

  /**
   * Backend#scatter2scatterSwigluBackward by variant 25, 13, 11 or 10 (the down product's dX
   * gathers dY's rows from token order, its epilogue gates them, runs SwiGLU's backward into dH and
   * leaves each tile's part of the gate gradient, which gate_partials_reduce_kernel sums in tile
   * order; variant 11 loads h by TMA into shared memory and stores dH from there by TMA, 13 (V16,
   * V15) and 25 (AUTO: each round's loads, math and stores batched) in double-buffered rounds) when
   * it applies, as {@link #scatter2scatterSwiglu}; false, having queued nothing, otherwise.
   */
  boolean scatter2scatterSwigluBackward(
      Tensor dY,
      Tensor w,
      int fanOut,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      boolean groupedIn,
      Tensor h,
      Tensor a,
      Tensor gates,
      Tensor dGates,
      Tensor dH) {
    String op = "scatter2scatterSwigluBackward";
    CudaTensor dyt = b.ct(dY, op, "dY"), wt = b.ct(w, op, "W"), ht = b.ct(h, op, "h");
    CudaTensor at = b.ct(a, op, "a"), dht = b.ct(dH, op, "dH");
    CudaTensor gt = b.ct(gates, op, "gates"), dgt = b.ct(dGates, op, "dGates");
    CudaTensor se = b.ct(sortedExpertIdxs, op, "sortedExpertIdxs"),
        ss = b.ct(sortedScatteredIdxs, op, "sortedScatteredIdxs");
    // dA = dY W[e] has a's shape (M, F); h and dH are (M, 2F)
    int[] shape = OpShapes.scatter2scatter(dyt, wt, null, false, fanOut, se, ss, groupedIn, at);
    long e = shape[0], d = shape[1], f = shape[2], m = shape[3];
    OpShapes.swigluBackward(at, ht, dht);
    OpShapes.dtype(op, "gates", gt, DType.F32);
    OpShapes.dtype(op, "dGates", dgt, DType.F32);
    OpShapes.numel(op, "gates", gt, m);
    OpShapes.numel(op, "dGates", dgt, m);
    if (groupedIn || !swigluFused(e, m, f, d, dyt, wt, ht, dht)) {
      return false;
    }
    // variant 11: h comes by TMA into a staging buffer after the stages (and two barriers), dH
    // leaves from it by TMA store; variant 13: the same in rounds of 32 columns, two buffers
    boolean v13 = v13(e), v11 = v13 || v11(e, WS_GLU_BWD_OUT_BYTES);
    int[] tmW, tmH = null, tmDh = null;
    try { // W (E, D, F) as 64 x 64 slabs of (k, n); dY's rows gathered by cp.async; h and dH as
      // {F, 2, M} (the gate and the up half) in {64, 1, 64} boxes (variant 13: {32, 1, 64} in the
      // 64-byte swizzle)
      tmW = TensorMaps.bf16(wt.address(), new long[] {f, d, e}, new int[] {64, 64, 1}, op + " W");
      if (v11) {
        long[] halves = {f, 2, m};
        int[] box = {v13 ? 32 : 64, 1, 64};
        tmH = TensorMaps.bf16(ht.address(), halves, box, op + " h");
        tmDh = TensorMaps.bf16(dht.address(), halves, box, op + " dH");
      }
    } catch (IllegalArgumentException notTma) {
      return false;
    }
    long nTiles = (f + 255) / 256;
    long tiles = ((m + MM_TILE - 1) / MM_TILE + e) * nTiles;
    try (Tensor partial = b.empty(DType.F32, m, nTiles)) {
      KernelLaunch l =
          v11
              ? b.kernel(gluBackwardKernel(v13, kernel.generation()))
                  .smem(gluSmem(e, v13 ? WS_GLU_BWD13_OUT_BYTES : WS_GLU_BWD_OUT_BYTES))
                  .struct("tmW", tmW)
                  .struct("tmH", tmH)
                  .struct("tmDh", tmDh)
              : b.kernel("scatter2scatter_ws256_ng_glubwd_kernel10")
                  .smem(gluSmem(e, 0))
                  .struct("tmW", tmW);
      l.shapes("dY " + dyt.describe() + " W " + wt.describe() + " k=" + fanOut)
          .grid(Math.min(tiles, b.multiprocessors()))
          .block(WS_THREADS)
          .ptr("dy", dyt.address())
          .ptr("h", ht.address())
          .ptr("dh", dht.address())
          .ptr("gates", gt.address())
          .ptr("partial", b.ptr(partial, op, "partial"))
          .ptr("sortedExpert", se.address())
          .ptr("sortedScattered", ss.address())
          .i32("M", (int) m)
          .i32("E", (int) e)
          .i32("inDim", (int) d)
          .i32("F", (int) f)
          .i32("fanOut", fanOut);
      l.launch();
      b.kernel("gate_partials_reduce_kernel")
          .shapes("partial (" + m + ", " + nTiles + ")")
          .grid((m + 255) / 256)
          .block(256)
          .ptr("partial", b.ptr(partial, op, "partial"))
          .i32("nTiles", (int) nTiles)
          .ptr("sortedScattered", ss.address())
          .ptr("dGates", dgt.address())
          .i32("M", (int) m)
          .launch();
    }
    return true;
  }

  /**
   * Variant 5's scatter2scatter kernel (moe_wgmma_ws.cu): its tile width, x W^T (t) or x W (n),
   * grouped (c, contiguous) or gathered (g) input rows; with {@code st} variant 16's (128 x 256
   * tiles only: the epilogue through shared memory).
   */
  static String scatter2scatterWsKernel(int tileN, boolean transW, boolean groupedIn, boolean st) {
    return "scatter2scatter_ws"
        + tileN
        + "_"
        + (transW ? "t" : "n")
        + (groupedIn ? "c" : "g")
        + (st ? "_st_kernel16" : "_kernel5");
  }

  /**
   * The down product's dX with SwiGLU's backward from the factors: kernel56 (dx2 0), or variant 62,
   * 63 or 65 (ping-pong).
   */
  static String gluFactorsBackwardKernel(int dx2) {
    return dx2 == 0
        ? "scatter2scatter_ws256_nc_glubwd_fac_kernel56"
        : dx2 == 62
            ? "scatter2scatter_ws256_nc_glubwd_fac_pp_kernel62"
            : dx2 == 63
                ? "scatter2scatter_ws256_nc_glubwd_fac_pp_kernel63"
                : "scatter2scatter_ws128_nc_glubwd_fac_pp_kernel65";
  }

  static List<String> gluFactorsBackwardKernelNames() {
    return java.util.stream.IntStream.of(0, 62, 63, 65)
        .mapToObj(CudaScatterMoe::gluFactorsBackwardKernel)
        .toList();
  }

  /**
   * The down product's SwiGLU backward kernel from variant 11 on (the same arguments): where v13
   * the double-buffered rounds, batched (variant 25) from generation 25 on, one pair at a time
   * (variant 13) before 25; else variant 11's.
   */
  static String gluBackwardKernel(boolean v13, int generation) {
    return !v13
        ? "scatter2scatter_ws256_ng_glubwd_kernel11"
        : generation >= 25
            ? "scatter2scatter_ws256_ng_glubwd_kernel25"
            : "scatter2scatter_ws256_ng_glubwd_kernel13";
  }

  /** Every name {@link #gluBackwardKernel} gives. */
  static List<String> gluBackwardKernelNames() {
    return List.of(
        gluBackwardKernel(false, Kernel.AUTO.generation()),
        gluBackwardKernel(true, Kernel.V16.generation()),
        gluBackwardKernel(true, Kernel.AUTO.generation()));
  }

  /** Variant 16's dynamic shared memory for this many experts (stages, staging, tile table). */
  static int stSmem(long experts) {
    return WS_256_SMEM + WS_ST_OUT_BYTES + (int) (2 * experts + 1) * 4;
  }

  /**
   * Every name {@link #scatter2scatterWsKernel} gives for the warp-specialised families, so that
   * KernelLaunchTest checks the launch against each kernel's signature on the CPU.
   */
  static List<String> scatter2scatterWsKernelNames() {
    List<String> names = new ArrayList<>();
    for (Kernel k : Kernel.values()) {
      if (!k.warpSpecialised()) continue;
      for (boolean transW : new boolean[] {true, false}) {
        for (boolean groupedIn : new boolean[] {true, false}) {
          names.add(scatter2scatterWsKernel(k.tileN(), transW, groupedIn, false));
          if (k.tileN() == 256) names.add(scatter2scatterWsKernel(256, transW, groupedIn, true));
        }
      }
    }
    return names;
  }

  /**
   * The warp-specialised groupXtY kernel (moe_wgmma_ws.cu) of a family: variant 7's (dW added by
   * red.global) for WS256R, variant 5's at the family's tile width otherwise.
   */
  static String groupXtYWsKernel(Kernel family) {
    return family.groupXtYKernel();
  }

  /**
   * The float32 weight-gradient kernel with the TMA reduction epilogue: variant 42 (clusters of two
   * CTAs over adjacent o tiles sharing the x tile by TMA multicast; session 39, same process: on
   * the H100 Mixtral's dW2 / dW1 1.07 / 1.06x their dense twins against variant 14's 1.12 / 1.11,
   * on the H200 within 1% of variant 14 (L2 not its limit there, ncu) and the layer 0.3-1.4%
   * faster; docs/performance.md), variant 14 for the v14 family.
   */
  static String groupXtYTmaKernel(Kernel family) {
    return family == Kernel.V14
        ? "group_xty_ws256_tmar_kernel14"
        : "group_xty_ws256_tmar_mc_kernel42";
  }

  /** Every name {@link #groupXtYTmaKernel} gives. */
  static List<String> groupXtYTmaKernelNames() {
    return List.of(groupXtYTmaKernel(Kernel.AUTO), groupXtYTmaKernel(Kernel.V14));
  }

  /** Every name {@link #groupXtYWsKernel} gives for the warp-specialised families. */
  static List<String> groupXtYWsKernelNames() {
    List<String> names = new ArrayList<>();
    for (Kernel k : Kernel.values()) {
      if (k.warpSpecialised()) names.add(groupXtYWsKernel(k));
    }
    return names;
  }

  /**
   * Whether variant 2 (moe_mma.cu) applies: its 16-byte cp.async copies need the contiguous
   * dimension of each operand to be a multiple of 8 bf16 elements (row starts 16-byte aligned).
   */
  private static boolean mmaRows(long a, long b) {
    return a % 8 == 0 && b % 8 == 0;
  }

  void group(Tensor x, Tensor sortedScatteredIdxs, int fanOut, Tensor gates, Tensor out) {
    String op = "group";
    CudaTensor xt = b.ct(x, op, "x"),
        ss = b.ct(sortedScatteredIdxs, op, "sortedScatteredIdxs"),
        o = b.ct(out, op, "out");
    CudaTensor gt = gates == null ? null : b.ct(gates, op, "gates");
    int[] md = OpShapes.group(xt, ss, fanOut, gt, o);
    long m = md[0], d = md[1];
    if (m == 0) {
      return;
    }
    // a picked family before generation 16: by output row (x's rows read fanOut times); else by
    // token: each slot's output row first (the inverse of sortedScattered), then one block per
    // token reads its row once and writes its fanOut rows
    boolean byRow = kernel.picked() && kernel.generation() < 16;
    try (Tensor inv = byRow ? null : inverseRows(ss, m, op)) {
      long invAddress = byRow ? 0 : b.ct(inv, op, "inverse rows").address();
      KernelLaunch g =
          byRow
              ? b.kernel("group_kernel")
                  .grid(m)
                  .ptr("x", xt.address())
                  .i32("xdt", dt(xt, op, "x"))
                  .ptr("sortedScattered", ss.address())
              : b.kernel("group_tokens_kernel")
                  .grid(m / fanOut)
                  .ptr("x", xt.address())
                  .i32("xdt", dt(xt, op, "x"))
                  .ptr("inv", invAddress);
      g.shapes(xt.describe() + " k=" + fanOut)
          .block(rowBlock(d))
          .i32("fanOut", fanOut)
          .ptr("gates", b.ptr(gates, op, "gates"))
          .ptr("out", o.address())
          .i32("odt", dt(o, op, "out"))
          .i32("D", (int) d);
      g.launch();
    }
  }

  /**
   * The inverse of sortedScattered (M rows): each token slot's row in expert order, a new I32 (M)
   * tensor the caller closes.
   */
  private Tensor inverseRows(CudaTensor sortedScattered, long m, String op) {
    Tensor inv = b.empty(DType.I32, m);
    try {
      b.kernel("invert_rows_kernel")
          .shapes("M=" + m)
          .grid((m + 255) / 256)
          .block(256)
          .ptr("sortedScattered", sortedScattered.address())
          .ptr("inv", b.ct(inv, op, "inverse rows").address())
          .i32("M", (int) m)
          .launch();
      return inv;
    } catch (RuntimeException e) {
      inv.close();
      throw e;
    }
  }

  /**
   * Backend#groupXtY; accumulate false writes dW and db instead of adding: variant 42 / 14 store
   * their tiles (variant 48: a TMA store where the reduction was, every tile of dW written), every
   * other path zeroes dW first and adds.
   */
  void groupXtY(
      Tensor x, Tensor dy, Tensor expertOffsets, Tensor dW, Tensor db, boolean accumulate) {
    String op = "groupXtY";
    CudaTensor xt = b.ct(x, op, "x"),
        g = b.ct(dy, op, "dy"),
        off = b.ct(expertOffsets, op, "expertOffsets"),
        w = b.ct(dW, op, "dW");
    CudaTensor bt = db == null ? null : b.ct(db, op, "db");
    int[] shape = OpShapes.groupXtY(xt, g, off, w, bt);
    long e = shape[0], o = shape[1], i = shape[2], m = shape[3];
    require(
        e <= 65535 && (o + TILE - 1) / TILE <= 65535,
        op + ": too many experts or output rows for the grid: " + w.describe());
    if (xt.dtype() == DType.BF16 && g.dtype() == DType.BF16) {
      boolean v2 = mmaRows(i, o) && xt.address() % 16 == 0 && g.address() % 16 == 0;
      Kernel wg = v2 && w.address() % 8 == 0 ? wgmma(Product.DW, e, false, m) : null;
      int[] tmDy = new int[32], tmX = new int[32];
      if (wg != null && wg.warpSpecialised() && m > 0) {
        try {
          tmDy = TensorMaps.bf16(g.address(), new long[] {o, m}, new int[] {64, 64}, op + " dy");
          tmX = TensorMaps.bf16(xt.address(), new long[] {i, m}, new int[] {64, 64}, op + " x");
        } catch (IllegalArgumentException notTma) {
          if (!kernel.picked()) {
            throw notTma; // asked for by name: say why it cannot run
          }
          wg = variant3(Product.DW, false, m); // a view TMA cannot describe
        }
      }
      // variant 14 (generation 15 on; float32 dW): the tile added (or, variant 48, stored) by
      // TMA, dW as {I, O, E}; no rows (m == 0): a tensor map needs extents of at least 1
      int[] tmDw = null;
      if (kernel.generation() >= 15 && wg == Kernel.WS256R && w.dtype() == DType.F32 && m > 0) {
        try {
          tmDw =
              TensorMaps.f32(w.address(), new long[] {i, o, e}, new int[] {32, 64, 1}, op + " dW");
        } catch (IllegalArgumentException notTma) {
          // a view TMA cannot describe: variant 7's epilogue adds from the threads
        }
      }
      if (tmDw == null && !accumulate) { // every kernel but variants 42 / 14 adds into dW
        b.fill(dW, 0f);
      }
      if (wg != null && wg.warpSpecialised()) {
        int bn = wg.tileN();
        long wsTiles = m == 0 ? 0 : e * ((o + MM_TILE - 1) / MM_TILE) * ((i + bn - 1) / bn);
        // variant 42: variant 14 in clusters of two CTAs over units of two o tiles, the grid
        // whole clusters, no more than can run at once (the kernel is persistent)
        String tmar = groupXtYTmaKernel(kernel);
        int tmarSmem = WS_256_SMEM + WS_XTY_OUT_BYTES;
        long grid = Math.min(wsTiles, b.multiprocessors());
        if (tmDw != null && kernel != Kernel.V14) {
          long units = e * ((o + 2 * MM_TILE - 1) / (2 * MM_TILE)) * ((i + bn - 1) / bn);
          grid = 2 * Math.min(units, b.activeClusters(tmar, 2, WS_THREADS, tmarSmem));
        }
        KernelLaunch ws =
            tmDw != null
                ? b.kernel(groupXtYTmaKernel(kernel))
                    .smem(tmarSmem)
                    .struct("tmDy", tmDy)
                    .struct("tmX", tmX)
                    .struct("tmDw", tmDw)
                : b.kernel(groupXtYWsKernel(wg))
                    .smem(bn == 256 ? WS_256_SMEM : WS_128_SMEM)
                    .struct("tmDy", tmDy)
                    .struct("tmX", tmX);
        ws.grid(grid)
            .block(WS_THREADS)
            .shapes("x " + xt.describe() + " dy " + g.describe())
            .ptr("x", xt.address())
            .ptr("dy", g.address())
            .ptr("offsets", off.address())
            .ptr("dw", w.address())
            .i32("wdt", dt(w, op, "dW"))
            .i32("E", (int) e)
            .i32("I", (int) i)
            .i32("O", (int) o);
        if (tmDw != null) { // variant 59's start groups over an expert's mean rows
          ws.i32("acc", accumulate ? 1 : 0)
              .i32("staggerCycles", lab.stagger().cycles(e == 0 ? 0 : m / e))
              .i32("staggerPhases", lab.stagger().phases());
        }
        ws.launch();
      } else {
        KernelLaunch l;
        if (wg != null) {
          int bn = wg == Kernel.N256 ? 256 : 128;
          l =
              b.kernel(
                      wg == Kernel.N256
                          ? "group_xty_wgmma_n256_kernel3"
                          : "group_xty_wgmma_n128_kernel3")
                  .grid((i + bn - 1) / bn, (o + MM_TILE - 1) / MM_TILE, e)
                  .smem(wg == Kernel.N256 ? WG_N256_SMEM : WG_N128_SMEM);
        } else {
          int tile = v2 ? MM_TILE : TC_TILE;
          l =
              b.kernel(v2 ? "group_xty_bf16_kernel2" : "group_xty_bf16_kernel")
                  .grid((i + tile - 1) / tile, (o + tile - 1) / tile, e)
                  .smem(v2 ? MM_SMEM_BYTES : 0);
        }
        // variants 1, 2 and 3 take the same arguments; variant 3 adds its descriptors' lboB
        l.shapes("x " + xt.describe() + " dy " + g.describe())
            .block(256)
            .ptr("x", xt.address())
            .ptr("dy", g.address())
            .ptr("offsets", off.address())
            .ptr("dw", w.address())
            .i32("wdt", dt(w, op, "dW"))
            .i32("I", (int) i)
            .i32("O", (int) o);
        if (wg != null) {
          l.i32("lboB", WG_SLAB);
        }
        l.launch();
      }
    } else {
      if (!accumulate) {
        b.fill(dW, 0f);
      }
      b.kernel("group_xty_kernel")
          .shapes("x " + xt.describe() + " dy " + g.describe())
          .grid((i + TILE - 1) / TILE, (o + TILE - 1) / TILE, e)
          .block(256)
          .ptr("x", xt.address())
          .i32("xdt", dt(xt, op, "x"))
          .ptr("dy", g.address())
          .i32("gdt", dt(g, op, "dy"))
          .ptr("offsets", off.address())
          .ptr("dw", w.address())
          .i32("wdt", dt(w, op, "dW"))
          .i32("I", (int) i)
          .i32("O", (int) o)
          .launch();
    }
    if (bt != null) {
      if (!accumulate) {
        b.fill(db, 0f);
      }
      b.kernel("group_db_kernel")
          .shapes("dy " + g.describe())
          .grid((o + 255) / 256, e)
          .block(256)
          .ptr("dy", g.address())
          .i32("gdt", dt(g, op, "dy"))
          .ptr("offsets", off.address())
          .ptr("db", bt.address())
          .i32("bdt", dt(bt, op, "db"))
          .i32("O", (int) o)
          .launch();
    }
  }

  /**
   * Threads per row for group_kernel and combine_kernel: with D % 8 == 0 they move 8 columns per
   * thread (16-byte accesses), so D / 8 threads; else blockFor(D) (4 columns per thread).
   */
  private static int rowBlock(long d) {
    return d % 8 == 0 ? blockFor(d / 2) : blockFor(d);
  }

  void combine(Tensor expanded, Tensor gates, int k, Tensor y) {
    String op = "combine";
    CudaTensor ex = b.ct(expanded, op, "expanded"), yt = b.ct(y, op, "y");
    CudaTensor gt = gates == null ? null : b.ct(gates, op, "gates");
    int[] nd = OpShapes.combine(ex, gt, k, yt);
    long n = nd[0], d = nd[1];
    b.kernel("combine_kernel")
        .shapes(ex.describe() + " k=" + k)
        .grid(n)
        .block(rowBlock(d))
        .ptr("expanded", ex.address())
        .i32("edt", dt(ex, op, "expanded"))
        .ptr("gates", b.ptr(gates, op, "gates"))
        .i32("K", k)
        .ptr("y", yt.address())
        .i32("ydt", dt(yt, op, "y"))
        .i32("D", (int) d)
        .launch();
  }

  /**
   * Backend#groupGatesBackward by variant 60 (CudaBackend asks {@link Lab#groupGatesFused}; else
   * the two ops): one pass over dY for both gradients (group_gates_backward_kernel, after the
   * inverse of sortedScattered), equal to combineGatesBackward and group bit for bit.
   */
  void groupGatesBackward(
      Tensor dY,
      Tensor sortedScatteredIdxs,
      int k,
      Tensor gates,
      Tensor expanded,
      Tensor dGates,
      Tensor out) {
    String op = "groupGatesBackward";
    CudaTensor g = b.ct(dY, op, "dY"),
        ss = b.ct(sortedScatteredIdxs, op, "sortedScatteredIdxs"),
        ex = b.ct(expanded, op, "expanded"),
        dg = b.ct(dGates, op, "dGates"),
        o = b.ct(out, op, "out");
    CudaTensor gt = gates == null ? null : b.ct(gates, op, "gates");
    int[] nd = OpShapes.combineGatesBackward(g, ex, k, dg);
    int[] md = OpShapes.group(g, ss, k, gt, o);
    long n = nd[0], d = nd[1], m = md[0];
    if (m == 0) {
      return;
    }
    try (Tensor inv = inverseRows(ss, m, op)) {
      long invAddress = b.ct(inv, op, "inverse rows").address();
      b.kernel("group_gates_backward_kernel")
          .shapes(ex.describe() + " k=" + k)
          .grid((n * k * 32 + 255) / 256)
          .block(256)
          .ptr("dy", g.address())
          .i32("gdt", dt(g, op, "dY"))
          .ptr("expanded", ex.address())
          .i32("edt", dt(ex, op, "expanded"))
          .ptr("inv", invAddress)
          .i32("K", k)
          .ptr("gates", b.ptr(gates, op, "gates"))
          .ptr("dgates", dg.address())
          .ptr("out", o.address())
          .i32("odt", dt(o, op, "out"))
          .i64("NK", n * k)
          .i32("D", (int) d)
          .launch();
    }
  }

  void combineGatesBackward(Tensor dY, Tensor expanded, int k, Tensor dGates) {
    String op = "combineGatesBackward";
    CudaTensor g = b.ct(dY, op, "dY"),
        ex = b.ct(expanded, op, "expanded"),
        dg = b.ct(dGates, op, "dGates");
    int[] nd = OpShapes.combineGatesBackward(g, ex, k, dg);
    long n = nd[0], d = nd[1];
    b.kernel("combine_gates_backward_kernel")
        .shapes(ex.describe() + " k=" + k)
        .grid((n * k * 32 + 255) / 256)
        .block(256)
        .ptr("dy", g.address())
        .i32("gdt", dt(g, op, "dY"))
        .ptr("expanded", ex.address())
        .i32("edt", dt(ex, op, "expanded"))
        .i32("K", k)
        .ptr("dgates", dg.address())
        .i64("NK", n * k)
        .i32("D", (int) d)
        .launch();
  }
}
