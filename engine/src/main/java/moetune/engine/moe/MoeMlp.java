package moetune.engine.moe;

import moetune.engine.backend.Backend;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * The SwiGLU expert MLP of Mixtral as ScatterMoE's {@code MLP}: two ParallelLinears sharing one
 * routing, the intermediate kept in expert order.
 *
 * <pre>
 *   h = ParallelLinear(x, gateUp, k=K, groupedOut)          // (M, 2F) grouped
 *   a = silu(h[:, :F]) * h[:, F:]                            // (M, F) grouped
 *   y = ParallelLinear(a, down, k=1, groupedIn, gates=topW)  // (N, D)
 * </pre>
 *
 * Shape letters: N tokens, D hidden, F expert intermediate, E experts, K experts per token, M =
 * N*K. Where the backend prefers it ({@link Backend#swigluSavesFactors}, variant 56) the forward
 * saves SwiGLU's backward factors [d a / d gate | d a / d up] in h's place and keeps the down
 * product's ungated rows: the backward then takes dy's rows grouped with their gates, dH = [dA p |
 * dA q] with no sigmoid, and the gates' gradient from those rows (a recomputation makes them too,
 * though not the output). Weights in HF layout: gateUp (E, 2F, D) with rows [0, F) = w1 (gate_proj)
 * and [F, 2F) = w3 (up_proj); down (E, D, F) = w2. Gradients are F32 and accumulate (+=).
 *
 * <p>Use on its own, as ScatterMoE's {@code MLP(x, expert_p, expert_idxs)}:
 *
 * <pre>{@code
 * MoeMlp mlp = MoeMlp.allocate(backend, DType.F32, hidden, intermediate, experts);
 * backend.copyFromHost(gateUpHost, mlp.gateUp());
 * backend.copyFromHost(downHost, mlp.down());
 * try (MoeMlp.Forward f = mlp.forward(x, topKWeights, topKIndices);
 *     MoeMlp.Grads g = mlp.backward(f, dY)) {
 *   // f.output() (N, D); g.dX() (N, D); g.dTopKWeights() F32 (N, K); mlp.gateUpGrad() += ...
 * }
 * }</pre>
 */
public final class MoeMlp implements AutoCloseable {
  private final Tensor gateUp; // (E, 2F, D)
  private final Tensor down; // (E, D, F)
  private final Tensor gateUpGrad; // F32 (E, 2F, D) +=, or null when frozen
  private final Tensor downGrad; // F32 (E, D, F) +=, or null when frozen
  private final ParallelLinear.Lora gateUpLora; // or null
  private final ParallelLinear.Lora downLora; // or null
  private final boolean owned; // allocate() made the tensors, close() frees them
  private boolean overwriteGrads; // the next backward writes gateUpGrad and downGrad (=)

  /** An MLP over existing weight and gradient tensors (views into a model's buffers). */
  public MoeMlp(Tensor gateUp, Tensor down, Tensor gateUpGrad, Tensor downGrad) {
    this(gateUp, down, gateUpGrad, downGrad, null, null, false);
  }

  /**
   * As above with LoRA adapters on gate_up_proj (A (E, r, D), B (E, 2F, r)) and down_proj (A (E, r,
   * F), B (E, D, r)), either null; gradients of frozen weights null.
   */
  public MoeMlp(
      Tensor gateUp,
      Tensor down,
      Tensor gateUpGrad,
      Tensor downGrad,
      ParallelLinear.Lora gateUpLora,
      ParallelLinear.Lora downLora) {
    this(gateUp, down, gateUpGrad, downGrad, gateUpLora, downLora, false);
  }

  private MoeMlp(
      Tensor gateUp,
      Tensor down,
      Tensor gateUpGrad,
      Tensor downGrad,
      ParallelLinear.Lora gateUpLora,
      ParallelLinear.Lora downLora,
      boolean owned) {
    if (gateUp.rank() != 3
        || down.rank() != 3
        || gateUp.dim(0) != down.dim(0)
        || gateUp.dim(1) != 2 * down.dim(2)
        || gateUp.dim(2) != down.dim(1)) {
      throw new IllegalArgumentException(
          "MoeMlp: gateUp "
              + gateUp.describe()
              + " and down "
              + down.describe()
              + " are not (E, 2F, D) and (E, D, F)");
    }
    this.gateUp = gateUp;
    this.down = down;
    this.gateUpGrad = gateUpGrad;
    this.downGrad = downGrad;
    this.gateUpLora = gateUpLora;
    this.downLora = downLora;
    this.owned = owned;
  }

  /** A standalone MLP with zeroed weights of the given dtype and zeroed F32 gradients. */
  public static MoeMlp allocate(
      Backend backend, DType dtype, int hidden, int intermediate, int experts) {
    return new MoeMlp(
        backend.zeros(dtype, experts, 2L * intermediate, hidden),
        backend.zeros(dtype, experts, hidden, intermediate),
        backend.zeros(DType.F32, experts, 2L * intermediate, hidden),
        backend.zeros(DType.F32, experts, hidden, intermediate),
        null,
        null,
        true);
  }

  public Tensor gateUp() {
    return gateUp;
  }

  public Tensor down() {
    return down;
  }

  public Tensor gateUpGrad() {
    return gateUpGrad;
  }

  public Tensor downGrad() {
    return downGrad;
  }

  public int numExperts() {
    return (int) gateUp.dim(0);
  }

  /** The forward's output (N, D), owned by the caller until close, and what the backward needs. */
  public static final class Forward implements AutoCloseable {
    private final Routing routing;
    private final boolean ownRouting;
    private final ParallelLinear.Context up; // h (M, 2F) grouped, or with factors [p | q]
    private final Tensor act; // a (M, F) grouped
    private final ParallelLinear.Context out; // y (N, D), or no output (a recomputation)
    private final boolean factors; // up holds SwiGLU's backward factors (variant 56), not h

    private Forward(
        Routing routing,
        boolean ownRouting,
        ParallelLinear.Context up,
        Tensor act,
        ParallelLinear.Context out,
        boolean factors) {
      this.factors = factors;
      this.routing = routing;
      this.ownRouting = ownRouting;
      this.up = up;
      this.act = act;
      this.out = out;
    }

    /** y (N, D), in x's dtype; null when the forward was asked for no output. */
    public Tensor output() {
      return out.output();
    }

    public Routing routing() {
      return routing;
    }

    /** Frees the output and every saved activation. */
    @Override
    public void close() {
      if (out.output() != null) {
        out.output().close();
      }
      out.close();
      act.close();
      up.output().close();
      up.close();
      if (ownRouting) {
        routing.close();
      }
    }
  }

  /** dX (N, D) and dTopKWeights F32 (N, K), owned by the caller. */
  public record Grads(Tensor dX, Tensor dTopKWeights) implements AutoCloseable {
    @Override
    public void close() {
      dX.close();
      dTopKWeights.close();
    }
  }

  /**
   * y = MLP(x) with topKWeights F32 (N, K) (already normalised) and topKIndices I32 (N, K).
   * Computes the routing once and keeps it in the result.
   */
  public Forward forward(Tensor x, Tensor topKWeights, Tensor topKIndices) {
    return forward(x, topKWeights, topKIndices, true);
  }

  /**
   * As {@link #forward(Tensor, Tensor, Tensor)}; with outputNeeded false (recomputing what the
   * backward needs) the down product and its combine are skipped: the backward takes the gates'
   * gradient from dY and a, not from the expert outputs, and {@link Forward#output()} is null.
   */
  public Forward forward(Tensor x, Tensor topKWeights, Tensor topKIndices, boolean outputNeeded) {
    Routing routing = Routing.compute(x.backend(), topKIndices, numExperts());
    return forward(x, topKWeights, routing, true, outputNeeded);
  }

  /** As {@link #forward(Tensor, Tensor, Tensor)} with a routing the caller computed and owns. */
  public Forward forward(Tensor x, Tensor topKWeights, Routing routing) {
    return forward(x, topKWeights, routing, false, true);
  }

  private Forward forward(
      Tensor x, Tensor topKWeights, Routing routing, boolean ownRouting, boolean outputNeeded) {
    Backend be = x.backend();
    if (topKWeights.numel() != routing.rows() || x.rows() != routing.tokens()) {
      throw new IllegalArgumentException(
          "MoeMlp.forward: x "
              + x.describe()
              + ", topKWeights "
              + topKWeights.describe()
              + " do not match a routing of "
              + routing.tokens()
              + " tokens x k="
              + routing.k());
    }
    int k = routing.k();
    Tensor act = be.empty(x.dtype(), routing.rows(), down.dim(2)); // (M, F)
    // SwiGLU's backward factors instead of h where the backend prefers them (variant 56): their
    // backward takes the gates' gradient from the down product's ungated rows, which a
    // recomputation then makes too (not its combine)
    boolean factors = be.swigluSavesFactors();
    ParallelLinear.Context up;
    if (gateUpLora == null) { // h and a from one call (the GPU fuses SwiGLU into the product)
      up =
          factors
              ? ParallelLinear.forwardSwigluFactors(x, gateUp, k, routing, act)
              : ParallelLinear.forwardSwiglu(x, gateUp, k, routing, act);
    } else { // the adapter's rows join h before its SwiGLU
      up = ParallelLinear.forward(x, gateUp, null, k, routing, null, false, true, gateUpLora);
      if (factors) {
        be.swigluFactors(up.output(), act);
      } else {
        be.swigluForward(up.output(), act);
      }
    }
    ParallelLinear.Context out =
        ParallelLinear.forward(
            act,
            down,
            null,
            1,
            routing,
            topKWeights.reshape(routing.tokens(), k),
            true,
            false,
            downLora,
            outputNeeded,
            factors);
    return new Forward(routing, ownRouting, up, act, out, factors);
  }

  /**
   * The next {@link #backward} writes the expert weights' gradients (=) instead of adding to them
   * (+=): for gradients that were just set to zero (a step's first micro-batch), the same values
   * without reading the old ones (the weight-gradient kernel stores its tiles instead of adding
   * them). Backwards after that one accumulate again.
   */
  public void overwriteGradsOnce() {
    overwriteGrads = true;
  }

  /** Whether the next {@link #backward} writes the weight gradients (none has since the call). */
  public boolean overwritePending() {
    return overwriteGrads;
  }

  /**
   * Backward of {@link #forward}: accumulates the weight gradients (+=), or writes them after
   * {@link #overwriteGradsOnce}, and returns dX (N, D) and dTopKWeights F32 (N, K). The forward
   * result stays valid until the caller closes it.
   */
  public Grads backward(Forward f, Tensor dY) {
    Backend be = dY.backend();
    boolean accumulate = !overwriteGrads;
    overwriteGrads = false;
    ParallelLinear.Grads g2;
    Tensor dH; // (M, 2F) grouped
    if (downLora == null) { // dA, the gates' gradient and SwiGLU's backward from one call
      g2 = ParallelLinear.backward(f.out, dY, downGrad, null, true, f.up.output(), accumulate);
      dH = g2.dX();
    } else { // the adapter's part of dA joins it before the gates and SwiGLU
      g2 = ParallelLinear.backward(f.out, dY, downGrad, null, true, null, accumulate);
      Tensor dAct = g2.dX(); // (M, F) grouped
      dH = be.empty(dY.dtype(), f.routing.rows(), gateUp.dim(1));
      if (f.factors) { // dAct has the gates already (the factors' path groups dY with them)
        be.swigluBackwardFactors(dAct, f.up.output(), dH);
      } else {
        be.swigluBackward(dAct, f.up.output(), dH);
      }
      dAct.close();
    }
    ParallelLinear.Grads g1 =
        ParallelLinear.backward(f.up, dH, gateUpGrad, null, true, null, accumulate);
    dH.close();
    return new Grads(g1.dX(), g2.dGates());
  }

  @Override
  public void close() {
    if (owned) {
      gateUp.close();
      down.close();
      gateUpGrad.close();
      downGrad.close();
    }
  }
}
