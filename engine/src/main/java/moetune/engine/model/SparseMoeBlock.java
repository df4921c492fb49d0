package moetune.engine.model;

import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import moetune.engine.backend.Backend;
import moetune.engine.backend.Communicator;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.moe.MoeMlp;
import moetune.engine.moe.ParallelLinear;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * Mixtral's sparse MoE block: the router (a linear layer to E logits, float32 softmax over all
 * experts, top-K, renormalised) and the SwiGLU experts through {@link MoeMlp}.
 *
 * <p>Shape letters: N tokens, D hidden, E experts, K experts per token. Router weight wg (E, D).
 * The router's float32 logits, probabilities and choices are written into views of model-wide
 * buffers (all layers stacked) because the load-balancing loss and the router z-loss read every
 * layer at once.
 *
 * <p>Router jitter (training only, router_jitter_noise > 0) multiplies the block's input by uniform
 * noise in [1 - j, 1 + j], as transformers does, for both the router and the experts. The noise is
 * drawn on the host: jitter is a rarely used regulariser and this keeps the Backend free of a
 * random-number op.
 */
final class SparseMoeBlock {
  private final Backend be;
  private final LoraLinear router; // wg (E, D), with its LoRA adapter when targeted
  private final MoeMlp mlp;
  private final int topK;
  private final float jitter;
  private final boolean expertLora;
  private ExpertParallelMoe ep; // null: every expert on this rank
  private final int experts; // E, the model's (this rank may hold a block of them)
  private final List<Parameters.Slice> expertGrads; // the trainable expert weights' slices

  SparseMoeBlock(Parameters p, int layer, MixtralConfig c) {
    this.be = p.masterFlat().backend();
    this.router = new LoraLinear(p, MixtralNames.fusedRouterModule(layer));
    String gu = MixtralNames.fusedGateUp(layer);
    String dn = MixtralNames.fusedDown(layer);
    this.mlp =
        new MoeMlp(
            p.weight(gu),
            p.weight(dn),
            p.grad(gu),
            p.grad(dn),
            expertLora(p, gu),
            expertLora(p, dn));
    this.topK = c.numExpertsPerTok;
    this.experts = c.numLocalExperts;
    this.jitter = (float) c.routerJitterNoise;
    this.expertLora = expertLora(p, gu) != null || expertLora(p, dn) != null;
    this.expertGrads = Stream.of(gu, dn).map(p::slice).filter(s -> !s.frozen()).toList();
  }

  /**
   * Splits the experts over the ranks of comm (expert parallel; null: back to all experts here).
   * Every rank of comm must run the same forwards and backwards in the same order.
   */
  void expertParallel(Communicator comm) {
    if (comm != null && expertLora) {
      throw new IllegalArgumentException(
          "--expert-parallel with LoRA on the experts is not supported; drop the experts from"
              + " lora-target-modules or train without --expert-parallel");
    }
    this.ep =
        comm == null || comm.size() == 1
            ? null
            : new ExpertParallelMoe(
                comm, experts, mlp.gateUp(), mlp.down(), mlp.gateUpGrad(), mlp.downGrad(), topK);
  }

  /**
   * The gradients are being set to zero: the next backward of the experts that run now (this
   * rank's, under expert parallel) writes their weights' gradients instead of adding to them.
   * Without expert parallel, the slices of those gradients go to {@code later}: their zeroing can
   * wait for {@link Parameters#zeroGradDeferring} (under expert parallel the rank's experts are a
   * block of the slice when it is not split, so the whole slice is zeroed now).
   */
  void gradsZeroed(List<Parameters.DeferredZero> later) {
    if (ep != null) {
      ep.gradsZeroed();
    } else {
      mlp.overwriteGradsOnce();
      for (Parameters.Slice s : expertGrads) {
        later.add(new Parameters.DeferredZero(s, mlp::overwritePending));
      }
    }
  }

  /** The adapter of a fused expert weight, or null when it has none. */
  private static ParallelLinear.Lora expertLora(Parameters p, String name) {
    if (!p.has(MixtralNames.fusedLora(name, "A"))) {
      return null;
    }
    return new ParallelLinear.Lora(
        p.weight(MixtralNames.fusedLora(name, "A")),
        p.weight(MixtralNames.fusedLora(name, "B")),
        p.grad(MixtralNames.fusedLora(name, "A")),
        p.grad(MixtralNames.fusedLora(name, "B")),
        p.lora().scaling());
  }

  /** What the backward needs. */
  static final class Saved implements AutoCloseable {
    final Tensor xn; // (N, D) the block's input after jitter
    final boolean ownXn; // jitter made a copy
    final float[] noise; // (N*D) jitter factors, or null
    final Tensor probs; // F32 (N, E) view of the model-wide buffer
    final Tensor topIdx; // I32 (N, K) view of the model-wide buffer
    final Tensor topW; // F32 (N, K)
    final MoeMlp.Forward experts; // or null with expert parallel
    final ExpertParallelMoe.Forward epExperts; // or null
    final LoraLinear.Saved routerLora; // or null

    Saved(
        Tensor xn,
        boolean ownXn,
        float[] noise,
        Tensor probs,
        Tensor topIdx,
        Tensor topW,
        MoeMlp.Forward experts,
        ExpertParallelMoe.Forward epExperts,
        LoraLinear.Saved routerLora) {
      this.routerLora = routerLora;
      this.epExperts = epExperts;
      this.xn = xn;
      this.ownXn = ownXn;
      this.noise = noise;
      this.probs = probs;
      this.topIdx = topIdx;
      this.topW = topW;
      this.experts = experts;
    }

    /** The block's output (N, D), freed by close; null when the forward made none. */
    Tensor output() {
      return epExperts != null ? epExperts.output() : experts.output();
    }

    @Override
    public void close() {
      if (epExperts != null) {
        epExperts.close();
      } else {
        experts.close();
      }
      topW.close();
      if (routerLora != null) {
        routerLora.close();
      }
      if (ownXn) {
        xn.close();
      }
    }
  }

  /**
   * Forward of xn (N, D). logits F32 (N, E), probs F32 (N, E) and topIdx I32 (N, K) are overwritten
   * (views of the model-wide router buffers); rng is non-null in training, where jitter applies.
   */
  Saved forward(Tensor xn, Tensor logits, Tensor probs, Tensor topIdx, SplittableRandom rng) {
    return forward(xn, logits, probs, topIdx, rng, true);
  }

  /**
   * As above; with outputNeeded false (a recomputation for the backward) the local experts skip
   * their down product ({@link MoeMlp#forward(Tensor, Tensor, Tensor, boolean)}) and {@link
   * Saved#output()} is null. Expert parallel always computes its output.
   */
  Saved forward(
      Tensor xn,
      Tensor logits,
      Tensor probs,
      Tensor topIdx,
      SplittableRandom rng,
      boolean outputNeeded) {
    long n = xn.rows();
    float[] noise = null;
    Tensor x = xn;
    if (rng != null && jitter > 0) {
      noise = new float[Math.toIntExact(xn.numel())];
      for (int i = 0; i < noise.length; i++) {
        noise[i] = (float) rng.nextDouble(1.0 - jitter, 1.0 + jitter);
      }
      x = multiplyOnHost(xn, noise);
    }
    // float32 router logits, as HF's softmax; the router's adapter has no dropout (see LoraConfig)
    LoraLinear.Saved routerLora = router.forward(x, logits, null);
    Tensor topW = be.empty(DType.F32, n, topK);
    be.routerTopK(logits, topK, probs, topW, topIdx);
    if (ep != null) {
      ExpertParallelMoe.Forward f = ep.forward(x, topW, topIdx);
      return new Saved(x, noise != null, noise, probs, topIdx, topW, null, f, routerLora);
    }
    if (mlp.gateUp().dim(0) != experts) {
      throw new IllegalStateException(
          "this model holds "
              + mlp.gateUp().dim(0)
              + " of "
              + experts
              + " experts (split for expert parallel); call setExpertParallel with its group");
    }
    MoeMlp.Forward experts = mlp.forward(x, topW, topIdx, outputNeeded);
    return new Saved(x, noise != null, noise, probs, topIdx, topW, experts, null, routerLora);
  }

  /**
   * Backward: dOut (N, D); dProbs F32 (N, E) the load-balancing loss's gradient on this layer's
   * probabilities, or null; dZLogits F32 (N, E) the router z-loss's gradient on this layer's
   * logits, or null. Returns dXn (N, D) (new tensor); parameter gradients +=.
   */
  Tensor backward(Saved s, Tensor dOut, Tensor dProbs, Tensor dZLogits) {
    MoeMlp.Grads g =
        s.epExperts != null ? ep.backward(s.epExperts, dOut) : mlp.backward(s.experts, dOut);
    Tensor dXn = g.dX();
    Tensor dLogits = be.empty(dOut.dtype(), s.probs.shape()); // (N, E) activation dtype
    be.routerBackward(g.dTopKWeights(), dProbs, s.probs, s.topIdx, dLogits); // overwrites
    g.dTopKWeights().close();
    if (dZLogits != null) {
      // The z-loss acts on the logits directly, after the softmax's backward; added here, not
      // by routerZLoss itself, because dLogits has the activation dtype (bf16 on the GPU) and
      // routerZLoss accumulates only into float32.
      be.add(dLogits, dZLogits, dLogits);
    }
    router.backward(s.routerLora, dLogits, s.xn, dXn, 1f);
    dLogits.close();
    if (s.noise != null) {
      Tensor unjittered = multiplyOnHost(dXn, s.noise);
      dXn.close();
      dXn = unjittered;
    }
    return dXn;
  }

  /** Inference forward (no jitter, nothing kept): out (N, D) is a new tensor. */
  Tensor forwardInference(Tensor xn) {
    long n = xn.rows();
    long e = router.weight().dim(0);
    try (Tensor logits = be.empty(DType.F32, n, e);
        Tensor probs = be.empty(DType.F32, n, e);
        Tensor topIdx = be.empty(DType.I32, n, topK);
        Saved s = forward(xn, logits, probs, topIdx, null)) {
      Tensor out = be.empty(xn.dtype(), n, xn.cols());
      be.copy(s.output(), out);
      return out;
    }
  }

  /** A new tensor x * factors, elementwise, computed on the host. */
  private Tensor multiplyOnHost(Tensor x, float[] factors) {
    float[] v = be.download(x).toFloatArray();
    for (int i = 0; i < v.length; i++) {
      v[i] *= factors[i];
    }
    return be.upload(HostTensor.ofFloats(v, x.shape()), x.dtype());
  }
}
