package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.CudaContext.dt;
import static moetune.engine.backend.cuda.CudaContext.require;

import java.util.ArrayList;
import java.util.List;
import moetune.engine.backend.AttnSpec;
import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * attentionForward and attentionBackward on the GPU: the tensor-core FlashAttention-2 kernels
 * (attention_fa2.cu), the scalar ones (attention.cu) and cuDNN's fused attention (CudnnAttention),
 * chosen per call by {@link AttentionPath}. The CPU twin is {@code CpuAttention}.
 */
final class CudaAttention {
  private static final int MAX_HEAD_DIM = 256; // attention.cu: 32 lanes x MAX_R registers
  private static final int FA2_FWD_BM = 128; // attention_fa2.cu's forward query tile

  /**
   * Which attention kernels run (MOETUNE_ATTENTION=cudnn|own|scalar; cudnn is the default, and runs
   * the own kernels where cuDNN is missing or does not take a call).
   */
  enum AttentionPath {
    /**
     * cuDNN's fused flash attention (CudnnAttention) where it applies: bf16, equal query and key
     * lengths, head dim a multiple of 8 up to 128 (packed documents: a multiple of 16, each
     * document one contiguous run per row); the own kernels otherwise, and everywhere when cuDNN
     * 9.19+ cannot be loaded (said once).
     */
    CUDNN,
    /**
     * The tensor-core FlashAttention-2 kernels (attention_fa2.cu) where they apply: bf16 q/k/v and
     * outputs, head dim 64 or 128, 16-byte aligned tensors; the scalar kernels otherwise.
     */
    OWN,
    /** The scalar kernels (attention.cu) for every case: one warp per query (or key) row. */
    SCALAR;

    /** The path when MOETUNE_ATTENTION is not set. */
    static final AttentionPath DEFAULT = CUDNN;

    static AttentionPath fromEnv(String value) {
      if (value == null || value.isBlank()) {
        return DEFAULT;
      }
      return switch (value.strip().toLowerCase(java.util.Locale.ROOT)) {
        case "own", "fa2" -> OWN;
        case "scalar" -> SCALAR;
        case "cudnn" -> CUDNN;
        default ->
            throw new IllegalArgumentException(
                "MOETUNE_ATTENTION="
                    + value
                    + " is not an attention path: use cudnn (cuDNN's fused attention, the"
                    + " default), own (moetune's tensor-core kernels) or scalar (the simple"
                    + " kernels)");
      };
    }

    /** Which kernels a model's layers run on with these activations and head dim, and why. */
    String plan(DType activations, int headDim) {
      if (this == SCALAR) {
        return "attention: scalar kernels in every layer (MOETUNE_ATTENTION=scalar)";
      }
      if (activations != DType.BF16) {
        return "attention: scalar kernels in every layer: "
            + activations
            + " activations (the tensor-core kernels take bf16)";
      }
      if (this == CUDNN) {
        if (headDim % 8 != 0 || headDim > 128) {
          return "attention: "
              + OWN.plan(activations, headDim).substring("attention: ".length())
              + ": head dim "
              + headDim
              + " (cuDNN takes multiples of 8 up to 128)";
        }
        return "attention: cuDNN fused flash attention in every layer"
            + (headDim % 16 == 0
                ? " (packed documents as ragged sequences)"
                : " (packed documents on the own kernels: cuDNN's ragged layout needs head dim"
                    + " a multiple of 16)")
            + ", own tensor-core kernels where it does not apply";
      }
      if (headDim != 64 && headDim != 128) {
        return "attention: scalar kernels in every layer: head dim "
            + headDim
            + " (the tensor-core kernels take 64 or 128)";
      }
      return "attention: own tensor-core kernels (FlashAttention-2, bf16, head dim "
          + headDim
          + ") in every layer";
    }

    String describe() {
      if (this == CUDNN) {
        return "attention: cuDNN fused flash attention where it applies, own kernels otherwise";
      }
      return this == OWN
          ? "attention: own tensor-core kernels (FlashAttention-2, mma.sync) for bf16 with head dim"
              + " 64 or 128, scalar kernels otherwise"
          : "attention: scalar kernels (MOETUNE_ATTENTION=scalar)";
    }
  }

  private final CudaContext b;
  private AttentionPath attention;
  private CudnnAttention cudnn; // loaded on the first call that takes the cuDNN path
  private String cudnnMissing; // why cuDNN could not be loaded (said once)
  private final java.util.Set<String> attentionNotes = new java.util.HashSet<>();

  /** How the path was chosen, for the run's log. */
  private String attentionChoice;

  CudaAttention(CudaContext b) {
    this.b = b;
    String env = System.getenv("MOETUNE_ATTENTION");
    this.attention = AttentionPath.fromEnv(env);
    this.attentionChoice =
        env == null || env.isBlank()
            ? "the default; MOETUNE_ATTENTION=own forces the own kernels"
            : "MOETUNE_ATTENTION=" + env.strip();
  }

  /**
   * One line for the run's log: the kernels every layer of a model with these activations and head
   * dim runs on, why, and for cuDNN the library loaded (or why none could be, and so the own
   * kernels).
   */
  String attentionPlan(DType activations, int headDim) {
    String line = attention.plan(activations, headDim);
    if (attention == AttentionPath.CUDNN && line.contains("cuDNN fused")) {
      CudnnAttention cd = loadCudnn();
      if (cd == null) {
        String own = AttentionPath.OWN.plan(activations, headDim);
        return own + ": cuDNN unavailable (" + cudnnMissing + ") [" + attentionChoice + "]";
      }
      return line
          + " [cuDNN "
          + cd.cudnn().version()
          + " from "
          + cd.cudnn().library()
          + "; "
          + attentionChoice
          + "]";
    }
    return line + " [" + attentionChoice + "]";
  }

  /**
   * One line for the run's log: the device memory cuDNN's attention plans hold for B rows of T
   * tokens (workspaces, the backward's softmax sums and dQ accumulator), or null when this run's
   * attention is not on cuDNN.
   */
  String attentionScratch(int batch, int seqLen, int hq, int hk, int hd, DType activations) {
    if (attention != AttentionPath.CUDNN || activations != DType.BF16) {
      return null;
    }
    AttnSpec spec = AttnSpec.causal(batch, seqLen, 0);
    if (CudnnAttention.unsupported(spec, hd) != null) {
      return null;
    }
    CudnnAttention cd = loadCudnn();
    if (cd == null) {
      return null;
    }
    try {
      long bytes = cd.scratchBytes(b, spec, hq, hk, hd);
      return String.format(
          java.util.Locale.ROOT,
          "attention scratch: cuDNN plans for %d x %d tokens hold %.1f MiB for the run"
              + " (workspaces, the backward's softmax sums and float dQ accumulator)",
          batch,
          seqLen,
          bytes / (1024.0 * 1024.0));
    } catch (CudaException e) {
      noteOnce(
          "attention: cuDNN has no plan for this shape, own kernels instead: " + e.getMessage());
      return null;
    }
  }

  AttentionPath attentionPath() {
    return attention;
  }

  private long ownCalls, cudnnCalls;

  /** Attention calls (forward and backward) that ran on the tensor-core kernels so far. */
  long ownAttentionCalls() {
    return ownCalls;
  }

  /** Attention calls (forward and backward) that ran on cuDNN so far. */
  long cudnnAttentionCalls() {
    return cudnnCalls;
  }

  /** Tests and benchmarks switch paths on one backend. */
  void attentionPath(AttentionPath path) {
    this.attention = path;
    this.attentionChoice = "chosen by the caller";
  }

  /** Says a fallback's reason on stderr the first time it happens. */
  private void noteOnce(String note) {
    if (attentionNotes.add(note)) {
      System.err.println("moetune: " + note);
    }
  }

  /** cuDNN's attention, loaded on first use; null (said once) when it cannot be. */
  private CudnnAttention loadCudnn() {
    if (cudnn == null && cudnnMissing == null) {
      try {
        cudnn = new CudnnAttention(new Cudnn(b.streamAddress()));
      } catch (CudaException | IllegalArgumentException | UnsatisfiedLinkError e) {
        cudnnMissing = e.getMessage();
        noteOnce("attention: cuDNN unavailable, own kernels instead: " + cudnnMissing);
      }
    }
    return cudnn;
  }

  /** cuDNN's attention when the path is cuDNN and it takes this call, else null. */
  private CudnnAttention cudnnFor(AttnSpec spec, int hd, CudaTensor... ts) {
    if (attention != AttentionPath.CUDNN) {
      return null;
    }
    if (loadCudnn() == null) {
      return null;
    }
    String why = CudnnAttention.unsupported(spec, hd, ts);
    if (why == null) {
      why = cudnn.unsupportedDocuments(b, spec, hd);
    }
    if (why != null) {
      noteOnce("attention: own kernels where cuDNN does not apply: " + why);
      return null;
    }
    return cudnn;
  }

  /** The cuDNN library in use, or why none is (for the backend's description). */
  String cudnnStatus() {
    if (cudnn != null) {
      return "cuDNN " + cudnn.cudnn().version() + " (" + cudnn.cudnn().library() + ")";
    }
    return cudnnMissing == null ? "cuDNN not loaded yet" : "cuDNN unavailable: " + cudnnMissing;
  }

  void close() {
    if (cudnn != null) {
      cudnn.close();
      cudnn = null;
    }
  }

  /** The head dims attention_fa2.cu's kernels are built for. */
  static final List<Integer> FA2_HEAD_DIMS = List.of(64, 128);

  /** Whether the tensor-core kernels take this call (else the scalar ones). */
  private boolean fa2(int hd, CudaTensor... ts) {
    if (attention == AttentionPath.SCALAR || !FA2_HEAD_DIMS.contains(hd)) {
      return false;
    }
    for (CudaTensor t : ts) {
      if (t.dtype() != DType.BF16 || (t.address() & 15) != 0) {
        return false;
      }
    }
    return true;
  }

  // MOETUNE_FA2_FWD=v1: the forward's first variant (8 warps of 16 rows) for comparison; the
  // default is v2 (4 warps of 32 rows, Q tile in shared memory for hd 128). kernels/lab/attention.
  private static final boolean FA2_FWD_V1 = "v1".equals(System.getenv("MOETUNE_FA2_FWD"));

  /** The tensor-core forward kernel at head dim hd: the default or v1 (MOETUNE_FA2_FWD=v1). */
  static String fa2ForwardKernel(boolean v1, int hd) {
    return (v1 ? "attention_fa2_forward_v1_hd" : "attention_fa2_forward_hd") + hd;
  }

  /**
   * Every name {@link #fa2ForwardKernel} gives at the head dims {@link #fa2} takes, so that
   * KernelLaunchTest checks the launch against each kernel's signature on the CPU.
   */
  static List<String> fa2ForwardKernelNames() {
    List<String> names = new ArrayList<>();
    for (int hd : FA2_HEAD_DIMS) {
      for (boolean v1 : new boolean[] {false, true}) names.add(fa2ForwardKernel(v1, hd));
    }
    return names;
  }

  /** The tensor-core backward kernel of a variant ({@link #fa2BwdVariant}) at head dim hd. */
  static String fa2BackwardKernel(String variant, int hd) {
    return "attention_fa2_backward_" + (variant.equals("v1") ? "" : variant + "_") + "hd" + hd;
  }

  /**
   * Every name {@link #fa2BackwardKernel} gives: each head dim with each variant {@link
   * #fa2BwdVariant} picks for it (unset, or any MOETUNE_FA2_BWD word).
   */
  static List<String> fa2BackwardKernelNames() {
    List<String> names = new ArrayList<>();
    for (int hd : FA2_HEAD_DIMS) {
      for (String env : FA2_BWD_WORDS) {
        String name = fa2BackwardKernel(fa2BwdVariant(env, hd), hd);
        if (!names.contains(name)) names.add(name);
      }
    }
    return names;
  }

  /** MOETUNE_FA2_BWD's words, unset ("") first. */
  private static final List<String> FA2_BWD_WORDS = List.of("", "v1", "v2", "v3", "v4", "v8");

  /** attention_fa2.cu fwd_smem for the variant in use. */
  private static int fa2FwdSmem(int hd) {
    boolean qInRegisters = FA2_FWD_V1 || hd == 64;
    return (qInRegisters ? 0 : FA2_FWD_BM * hd * 2) + 2 * 2 * 64 * hd * 2 + 2 * 64 * 4 + 128 * 4;
  }

  /**
   * The backward's variants (attention_fa2.cu FA2_BWD; kernels/lab/attention): v1, 8 warps over 128
   * keys, one block per SM; v2, 4 warps over 64 keys, two blocks per SM; v3 (head dim 64), v2 at
   * three blocks per SM; v4 (head dim 64), 4 warps of 32 keys over 32-query tiles, two blocks per
   * SM; v8 (head dim 128), v1 with each query tile's dQ product one tile late (one barrier per
   * tile, two dS^T buffers). MOETUNE_FA2_BWD=v1, v2, v3, v4 or v8 forces one for comparison (one
   * that does not exist at the call's head dim runs that head dim's default). The warp-pair
   * variants v5-v7, slower than v1 at head dim 128, live in kernels/lab/attention only.
   */
  static String fa2BwdVariant(String env, int hd) {
    String dflt = FA2_BWD_DEFAULT[hd == 64 ? 0 : 1];
    if (env == null || env.isBlank()) {
      return dflt;
    }
    String v = env.strip().toLowerCase(java.util.Locale.ROOT);
    return switch (v) {
      case "v1", "v2" -> v;
      case "v3", "v4" -> hd == 64 ? v : dflt;
      case "v8" -> hd == 128 ? v : dflt;
      default ->
          throw new IllegalArgumentException(
              "MOETUNE_FA2_BWD="
                  + env
                  + " is not a shipped backward variant: use v1, v2, v3, v4 or v8, or unset it"
                  + " (v5-v7 live in kernels/lab/attention)");
    };
  }

  /**
   * The default backward variant at head dim 64 and 128, from the lab's timing table of 2026-12-02
   * (kernels/lab/attention/README.md): at hd 64, v4 is 1.23-1.28x v1 at T = 2k-8k; at hd 128, v8
   * (17:17 UTC run) is 1.10 / 1.09 / 1.06x v1 at 2k / 4k / 8k, while v2 and the warp-pair v5-v7
   * (lab only now) are slower than v1.
   */
  private static final String[] FA2_BWD_DEFAULT = {"v4", "v8"};

  private static final String FA2_BWD_ENV = System.getenv("MOETUNE_FA2_BWD");

  /** Keys per backward block: 64 for v2 and v3, 128 for the others. */
  static int fa2BwdKeys(String variant) {
    return switch (variant) {
      case "v2", "v3" -> 64;
      default -> 128;
    };
  }

  /** Threads per backward block: 32 per warp, 8 warps for v1 and v8, 4 for the others. */
  static int fa2BwdThreads(String variant) {
    return switch (variant) {
      case "v1", "v8" -> 256;
      default -> 128;
    };
  }

  /**
   * attention_fa2.cu bwd_smem<HD, BN, BM> for the variant (query tile 32 for v4, else 64), plus
   * v8's second dS^T buffer (one more keys x queries bf16 tile).
   */
  static int fa2BwdSmem(int hd, String variant) {
    int keys = fa2BwdKeys(variant);
    int rows = variant.equals("v4") ? 32 : 64;
    int extra = variant.equals("v8") ? keys * rows * 2 : 0;
    return (2 * keys * hd + 4 * rows * hd + keys * rows) * 2 + 3 * 2 * rows * 4 + extra;
  }

  /** OpShapes' {H, Hkv, hd}, with this backend's limit on the head dim. */
  private static int[] headDim(String op, int[] d) {
    require(d[2] <= MAX_HEAD_DIM, op + ": head dim " + d[2] + " exceeds " + MAX_HEAD_DIM);
    return d;
  }

  private static int[] attnStruct(AttnSpec s, int[] d) {
    float scale = (float) (1.0 / Math.sqrt(d[2]));
    return new int[] {
      s.batch(),
      s.queryLen(),
      s.keyLen(),
      d[0],
      d[1],
      d[2],
      s.window(),
      Float.floatToRawIntBits(scale)
    };
  }

  void attentionForward(Tensor q, Tensor k, Tensor v, AttnSpec spec, Tensor out, Tensor lse) {
    String op = "attentionForward";
    CudaTensor qt = b.ct(q, op, "q"),
        kt = b.ct(k, op, "k"),
        vt = b.ct(v, op, "v"),
        o = b.ct(out, op, "out"),
        l = b.ct(lse, op, "lse");
    int[] d = headDim(op, OpShapes.attentionForward(qt, kt, vt, spec, o, l));
    long rows = (long) spec.batch() * spec.queryLen() * d[0];
    CudnnAttention cd = cudnnFor(spec, d[2], qt, kt, vt, o);
    if (cd != null) {
      try {
        cd.forward(b, qt, kt, vt, o, l, spec, d[0], d[1], d[2]);
        cudnnCalls++;
        return;
      } catch (CudaException e) {
        noteOnce("attention: cuDNN forward failed, own kernels instead: " + e.getMessage());
      }
    }
    if (fa2(d[2], qt, kt, vt, o)) {
      ownCalls++;
      fa2Launch(
              fa2ForwardKernel(FA2_FWD_V1, d[2]),
              qt.describe() + " " + kt.describe(),
              (long) spec.batch() * d[0],
              spec.queryLen(),
              FA2_FWD_BM,
              FA2_FWD_V1 ? 256 : 128,
              fa2FwdSmem(d[2]))
          .ptr("q", qt.address())
          .ptr("k", kt.address())
          .ptr("v", vt.address())
          .ptr("out", o.address())
          .ptr("lse", l.address())
          .ptr("doc", b.ptr(spec.docIds(), op, "docIds"))
          .struct("a", attnStruct(spec, d))
          .launch();
      return;
    }
    b.kernel("attention_forward_kernel")
        .shapes(qt.describe() + " " + kt.describe())
        .grid((rows * 32 + 255) / 256)
        .block(256)
        .ptr("q", qt.address())
        .i32("qdt", dt(qt, op, "q"))
        .ptr("k", kt.address())
        .i32("kdt", dt(kt, op, "k"))
        .ptr("v", vt.address())
        .i32("vdt", dt(vt, op, "v"))
        .ptr("out", o.address())
        .i32("odt", dt(o, op, "out"))
        .ptr("lse", l.address())
        .ptr("doc", b.ptr(spec.docIds(), op, "docIds"))
        .struct("a", attnStruct(spec, d))
        .launch();
  }

  void attentionBackward(
      Tensor dOut,
      Tensor q,
      Tensor k,
      Tensor v,
      Tensor out,
      Tensor lse,
      AttnSpec spec,
      Tensor dq,
      Tensor dk,
      Tensor dv) {
    String op = "attentionBackward";
    CudaTensor g = b.ct(dOut, op, "dOut"),
        qt = b.ct(q, op, "q"),
        kt = b.ct(k, op, "k"),
        vt = b.ct(v, op, "v");
    CudaTensor o = b.ct(out, op, "out"), l = b.ct(lse, op, "lse");
    CudaTensor dqt = b.ct(dq, op, "dq"), dkt = b.ct(dk, op, "dk"), dvt = b.ct(dv, op, "dv");
    int[] d = headDim(op, OpShapes.attentionBackward(g, qt, kt, vt, o, l, spec, dqt, dkt, dvt));
    long rows = (long) spec.batch() * spec.queryLen() * d[0];
    long keyRows = (long) spec.batch() * spec.keyLen() * d[1];
    long doc = b.ptr(spec.docIds(), op, "docIds");
    int[] st = attnStruct(spec, d);
    String shapes = qt.describe() + " " + kt.describe();
    CudnnAttention cd = cudnnFor(spec, d[2], g, o, qt, kt, vt, dqt, dkt, dvt);
    if (cd != null) {
      try {
        cd.backward(b, g, qt, kt, vt, o, l, spec, dqt, dkt, dvt, d[0], d[1], d[2]);
        cudnnCalls++;
        return;
      } catch (CudaException e) {
        noteOnce("attention: cuDNN backward failed, own kernels instead: " + e.getMessage());
      }
    }
    try (Tensor delta = b.empty(DType.F32, rows)) {
      long dAddr = b.ptr(delta, op, "delta");
      if (fa2(d[2], g, o, qt, kt, vt, dqt, dkt, dvt)) {
        ownCalls++;
        fa2Backward(spec, d, st, shapes, g, o, qt, kt, vt, l, dAddr, doc, dqt, dkt, dvt, rows);
        return;
      }
      b.kernel("attention_delta_kernel")
          .shapes(shapes)
          .grid((rows * 32 + 255) / 256)
          .block(256)
          .ptr("dout", g.address())
          .i32("gdt", dt(g, op, "dOut"))
          .ptr("out", o.address())
          .i32("odt", dt(o, op, "out"))
          .ptr("delta", dAddr)
          .i64("rows", rows)
          .i32("hd", d[2])
          .launch();
      b.kernel("attention_dq_kernel")
          .shapes(shapes)
          .grid((rows * 32 + 255) / 256)
          .block(256)
          .ptr("dout", g.address())
          .i32("gdt", dt(g, op, "dOut"))
          .ptr("q", qt.address())
          .i32("qdt", dt(qt, op, "q"))
          .ptr("k", kt.address())
          .i32("kdt", dt(kt, op, "k"))
          .ptr("v", vt.address())
          .i32("vdt", dt(vt, op, "v"))
          .ptr("lse", l.address())
          .ptr("delta", dAddr)
          .ptr("doc", doc)
          .ptr("dq", dqt.address())
          .i32("dqdt", dt(dqt, op, "dq"))
          .struct("a", st)
          .launch();
      b.kernel("attention_dkdv_kernel")
          .shapes(shapes)
          .grid((keyRows * 32 + 255) / 256)
          .block(256)
          .ptr("dout", g.address())
          .i32("gdt", dt(g, op, "dOut"))
          .ptr("q", qt.address())
          .i32("qdt", dt(qt, op, "q"))
          .ptr("k", kt.address())
          .i32("kdt", dt(kt, op, "k"))
          .ptr("v", vt.address())
          .i32("vdt", dt(vt, op, "v"))
          .ptr("lse", l.address())
          .ptr("delta", dAddr)
          .ptr("doc", doc)
          .ptr("dk", dkt.address())
          .i32("dkdt", dt(dkt, op, "dk"))
          .ptr("dv", dvt.address())
          .i32("dvdt", dt(dvt, op, "dv"))
          .struct("a", st)
          .launch();
    }
  }

  /**
   * The head the tensor-core forward and backward launches share: one block per (batch row, head)
   * pair of {@code rowHeads} and per tile of {@code tile} positions of {@code len} (query rows in
   * the forward, keys in the backward), the variant's threads and shared memory. KernelLaunchTest
   * reads a {@code fa2Launch(name, ...)} chain as a {@code kernel(name)} one.
   */
  private KernelLaunch fa2Launch(
      String kernel, String shapes, long rowHeads, int len, int tile, int threads, int smem) {
    return b.kernel(kernel)
        .shapes(shapes)
        .grid(rowHeads, (len + tile - 1) / tile)
        .block(threads)
        .smem(smem);
  }

  /** The tensor-core backward: delta and a zeroed dq accumulator, dK/dV (+ dQ atomics), dq. */
  private void fa2Backward(
      AttnSpec spec,
      int[] d,
      int[] st,
      String shapes,
      CudaTensor g,
      CudaTensor o,
      CudaTensor qt,
      CudaTensor kt,
      CudaTensor vt,
      CudaTensor l,
      long dAddr,
      long doc,
      CudaTensor dqt,
      CudaTensor dkt,
      CudaTensor dvt,
      long rows) {
    String op = "attentionBackward";
    try (Tensor dqAcc = b.empty(DType.F32, rows * d[2])) {
      long acc = b.ptr(dqAcc, op, "dqAcc");
      b.kernel("attention_fa2_delta_kernel")
          .shapes(shapes)
          .grid((rows * (d[2] / 8) + 255) / 256)
          .block(256)
          .ptr("dout", g.address())
          .ptr("out", o.address())
          .ptr("delta", dAddr)
          .ptr("dqacc", acc)
          .i64("rows", rows)
          .i32("hd", d[2])
          .launch();
      String variant = fa2BwdVariant(FA2_BWD_ENV, d[2]);
      fa2Launch(
              fa2BackwardKernel(variant, d[2]),
              shapes,
              (long) spec.batch() * d[1],
              spec.keyLen(),
              fa2BwdKeys(variant),
              fa2BwdThreads(variant),
              fa2BwdSmem(d[2], variant))
          .ptr("dout", g.address())
          .ptr("q", qt.address())
          .ptr("k", kt.address())
          .ptr("v", vt.address())
          .ptr("lse", l.address())
          .ptr("delta", dAddr)
          .ptr("doc", doc)
          .ptr("dqacc", acc)
          .ptr("dk", dkt.address())
          .ptr("dv", dvt.address())
          .struct("a", st)
          .launch();
      b.kernel("attention_fa2_dq_convert_kernel")
          .shapes(shapes)
          .grid(b.gridFor(rows * d[2] / 4))
          .block(256)
          .ptr("dqacc", acc)
          .ptr("dq", dqt.address())
          .i64("n", rows * d[2])
          .f32("scale", Float.intBitsToFloat(st[7]))
          .launch();
    }
  }
}
