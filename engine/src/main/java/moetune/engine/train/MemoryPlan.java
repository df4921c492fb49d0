package moetune.engine.train;

import java.util.Locale;
import moetune.engine.backend.LmHeadChunks;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.model.LoraConfig;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.ModelOptions;
import moetune.engine.model.Parameters;
import moetune.engine.model.Recompute;
import moetune.engine.tensor.DType;

/**
 * The memory a model's parameters take on its device, as {@link Parameters} lays them out, printed
 * at the start of a run:
 *
 * <pre>
 *   trainable P:  4 (float32 master) + 4 (float32 gradient) + 8 (AdamW m, v)
 *                 + 2 (bf16 working copy, in a low-precision mode)         bytes each
 *   frozen Pf:    stored once in the working dtype (2 bytes in bf16, 4 in fp32), nothing else
 * </pre>
 *
 * Activations come on top (they depend on the batch); the backend reports the real peak.
 *
 * <p>On several ranks the plan is one rank's: with data parallel (ZeRO-1) each rank keeps the
 * moments of 1/N of the replicated trainable parameters; with the experts split (expert parallel)
 * each rank holds only its E/N experts (their master, gradient, moments; frozen ones likewise).
 *
 * @param trainable P, trainable elements this rank holds (LoRA adapters, or every unfrozen weight)
 * @param frozen Pf, frozen elements this rank holds
 * @param work the working dtype
 * @param replicated of the trainable ones, those every rank holds (the rest: this rank's experts)
 * @param ranks the data-parallel ranks sharing the replicated moments (1: one device)
 */
public record MemoryPlan(long trainable, long frozen, DType work, long replicated, int ranks) {

  /** One device: every trainable parameter replicated, nothing sharded. */
  public MemoryPlan(long trainable, long frozen, DType work) {
    this(trainable, frozen, work, trainable, 1);
  }

  /** The plan of a built model on one device. */
  public static MemoryPlan of(MixtralModel m) {
    return of(m, 1);
  }

  /** The plan of a built model as one of {@code ranks} data-parallel ranks (ZeRO-1). */
  public static MemoryPlan of(MixtralModel m, int ranks) {
    Parameters p = m.parameters();
    return new MemoryPlan(
        p.count(), p.frozenCount(), m.options().activations(), p.replicatedCount(), ranks);
  }

  /** Bytes per trainable element: master, gradient, two moments, and the working copy if any. */
  public long bytesPerTrainable() {
    return 16 + (work == DType.F32 ? 0 : work.bytes());
  }

  /** Bytes per trainable element without the moments: master, gradient, working copy. */
  long bytesPerWeight() {
    return bytesPerTrainable() - 8;
  }

  /** The elements whose moments this rank keeps: its ZeRO shard and its own experts. */
  public long momentElements() {
    return (replicated + ranks - 1) / ranks + (trainable - replicated);
  }

  public long trainableBytes() {
    return trainable * bytesPerWeight() + momentElements() * 8;
  }

  public long frozenBytes() {
    return frozen * work.bytes();
  }

  public long totalBytes() {
    return trainableBytes() + frozenBytes();
  }

  /** One line for the run's log. */
  public String describe() {
    if (ranks > 1 || replicated != trainable) {
      return String.format(
          Locale.ROOT,
          "memory plan per rank: %s trainable parameters held (%s of them this rank's experts)"
              + " x %d B = %s (fp32 master, grad%s); AdamW m+v of %s (1/%d of the replicated"
              + " ones, ZeRO-1%s) x 8 B = %s; %s frozen x %d B = %s (stored once, %s);"
              + " %s before activations",
          count(trainable),
          count(trainable - replicated),
          bytesPerWeight(),
          human(trainable * bytesPerWeight()),
          work == DType.F32 ? "" : ", " + work + " copy",
          count(momentElements()),
          ranks,
          trainable == replicated ? "" : ", and this rank's experts",
          human(momentElements() * 8),
          count(frozen),
          work.bytes(),
          human(frozenBytes()),
          work,
          human(totalBytes()));
    }
    return String.format(
        Locale.ROOT,
        "memory plan: %s trainable parameters x %d B = %s (fp32 master, grad, AdamW m+v%s);"
            + " %s frozen x %d B = %s (stored once, %s); %s before activations",
        count(trainable),
        bytesPerTrainable(),
        human(trainableBytes()),
        work == DType.F32 ? "" : ", " + work + " copy",
        count(frozen),
        work.bytes(),
        human(frozenBytes()),
        work,
        human(totalBytes()));
  }

  /**
   * Bytes of activations the training forward keeps for the backward of one micro-batch of tokens
   * N, counted from what the model's saved state holds (a = activation bytes, s = residual-stream
   * bytes; D hidden, H, Hkv heads of size hd, F expert width, E experts, K per token, V vocab, L
   * layers), per token:
   *
   * <pre>
   *   every mode   (L+1) D s residual stream, L (2E+K) 4 router buffers, D a final norm output
   *   attention    (2 H hd + 2 Hkv hd) a + 4 H (q, k, v, o, lse) + r a per adapted projection
   *   rest         2 D a + D s + 8 (norms' outputs, xMid, rstd), 4K (gates),
   *                K (2F + F) a + D a (expert h, act, output; the gated down product keeps
   *                no ungated rows), + D a with jitter
   * </pre>
   *
   * kept per layer: attention + rest ({@link Recompute#NONE}), rest ({@link Recompute#ATTENTION}),
   * nothing ({@link Recompute#LAYER}, which then holds one layer's attention + rest while it
   * recomputes). The logits are not kept: the LM head and the cross-entropy run fused in chunks
   * ({@link #headChunkBytes}, transient, in the forward's loss and again in the backward). An
   * estimate of what the forward keeps: the backward's transient buffers (one layer's gradients)
   * come on top.
   */
  public static long activationBytes(MixtralConfig c, ModelOptions o, long tokens) {
    long a = o.activations().bytes();
    long st = o.residual().bytes();
    long d = c.hiddenSize;
    long hd = c.headDim();
    long k = c.numExpertsPerTok;
    long f = c.intermediateSize;
    long layers = c.numHiddenLayers;
    long common = (layers + 1) * d * st + layers * (2L * c.numLocalExperts + k) * 4 + d * a + 4;
    LoraConfig lora = o.lora();
    long attention = (2L * c.numAttentionHeads * hd + 2L * c.numKeyValueHeads * hd) * a;
    attention += 4L * c.numAttentionHeads;
    // the experts keep h's factors (2F) and a (F) per routed row, and the down product's ungated
    // rows (D) for the gates' gradient (variant 56)
    long rest = 2 * d * a + d * st + 8 + 4 * k + k * 3 * f * a + k * d * a + d * a;
    if (lora != null) {
      for (String t : new String[] {"q_proj", "k_proj", "v_proj", "o_proj"}) {
        attention += lora.targets().contains(t) ? lora.r() * a : 0;
      }
      rest += lora.targets().contains("gate") ? lora.r() * a : 0;
      rest += lora.targets().contains("w1") || lora.targets().contains("w3") ? k * lora.r() * a : 0;
      rest += lora.targets().contains("w2") ? k * lora.r() * a : 0;
    }
    if (c.routerJitterNoise > 0) {
      rest += d * a;
    }
    long perToken =
        switch (o.recompute()) {
          case NONE -> common + layers * (attention + rest);
          case ATTENTION -> common + layers * rest + attention;
          case LAYER -> common + attention + rest;
        };
    return perToken * tokens;
  }

  /**
   * The LM head's transient logits buffer for N tokens: one chunk of {@link LmHeadChunks#rows} rows
   * of V logits in the activation dtype (the unfused head held all N x V from the forward to the
   * backward).
   */
  public static long headChunkBytes(MixtralConfig c, ModelOptions o, long tokens) {
    long rows = Math.min(tokens, LmHeadChunks.rows(c.vocabSize, o.activations()));
    return rows * c.vocabSize * o.activations().bytes();
  }

  /** One line for the run's log: the LM head's logits, chunked, against holding them whole. */
  public static String describeHead(MixtralConfig c, ModelOptions o, long tokens) {
    long whole = tokens * c.vocabSize * o.activations().bytes();
    return String.format(
        Locale.ROOT,
        "LM head + cross-entropy fused in chunks of %,d rows: %s of logits at a time instead of"
            + " %,d x %,d = %s held from the forward to the backward",
        Math.min(tokens, LmHeadChunks.rows(c.vocabSize, o.activations())),
        human(headChunkBytes(c, o, tokens)),
        tokens,
        c.vocabSize,
        human(whole));
  }

  /** One line for the run's log: the activations kept for N tokens per micro-batch. */
  public static String describeActivations(MixtralConfig c, ModelOptions o, long tokens) {
    StringBuilder sb =
        new StringBuilder(
            String.format(
                Locale.ROOT,
                "activations kept for %,d tokens per micro-batch: %s with recompute %s",
                tokens,
                human(activationBytes(c, o, tokens)),
                o.recompute().key()));
    sb.append(" (");
    String sep = "";
    for (Recompute r : Recompute.values()) {
      if (r != o.recompute()) {
        sb.append(sep)
            .append(r.key())
            .append(": ")
            .append(human(activationBytes(c, o.withRecompute(r), tokens)));
        sep = ", ";
      }
    }
    return sb.append(")").toString();
  }

  private static String count(long n) {
    if (n >= 1_000_000_000L) {
      return String.format(Locale.ROOT, "%.2fB", n / 1e9);
    }
    if (n >= 1_000_000L) {
      return String.format(Locale.ROOT, "%.2fM", n / 1e6);
    }
    return String.format(Locale.ROOT, "%,d", n);
  }

  /** Binary units, as nvidia-smi counts. */
  static String human(long bytes) {
    String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = bytes;
    int u = 0;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    return u == 0 ? bytes + " B" : String.format(Locale.ROOT, "%.2f %s", v, units[u]);
  }
}
