package moetune.engine.moe;

import moetune.engine.backend.Backend;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * ScatterMoE's ParallelLinear: one linear layer per expert applied to the rows routed to it,
 * without padding and without copying tokens into per-expert buffers. Rows are gathered and
 * scattered inside {@link Backend#scatter2scatter}.
 *
 * <p>Shape letters: N tokens, K fan-out, M = N*K routed rows, E experts, I in features, O out
 * features. The weight is W (E, O, I), HF's nn.Linear layout per expert: y_row = x_row @ W[e]^T (+
 * bias[e]).
 *
 * <p>Layouts, as in ScatterMoE:
 *
 * <ul>
 *   <li>{@code groupedIn}: x is (M, I) already in expert order; otherwise x is (M / k, I) in token
 *       order and row s of the routing reads x[s / k].
 *   <li>{@code groupedOut}: y is (M, O) left in expert order; otherwise y is scattered back to (M,
 *       O) token-slot order, and with gates (Ng, Kg), Ng * Kg = M, the Kg rows of each token are
 *       combined into y (Ng, O) weighted by the gates.
 * </ul>
 *
 * Gates with {@code groupedOut} are refused: a gated combine needs the rows in token order (as in
 * ScatterMoE, where the gated call is always the scattered-output one).
 *
 * <p>The gated backward without a bias takes the gates' gradient from the ungated input gradient (d
 * loss / d g_r = dot(dY_token W_e, x_r) = dot(dY_token, y_e), {@link Backend#gateRowsBackward}), so
 * the forward keeps no (M, O) expert outputs and a recomputation for the backward may skip the
 * product itself ({@code outputNeeded} false). With a bias the gate's gradient also needs dot(dY,
 * b_e): that forward keeps the ungated rows and the backward reads them, as ScatterMoE does.
 */
public final class ParallelLinear {
  private ParallelLinear() {}

  /**
   * A LoRA adapter beside the frozen (or trained) grouped product, per expert as PEFT's {@code
   * ParamWrapper} on a 3-D expert weight: y_row += scaling * (x_row A[e]^T) B[e]^T. It runs as two
   * more grouped products on the same routing with the rank r as their width (never a loop over
   * experts): xa = scatter2scatter(x, A) (M, r) kept grouped, then scatter2scatter(xa, B) into the
   * output's layout. a (E, r, I), b (E, O, r); gA, gB F32 of the same shapes, accumulated (+=).
   */
  public record Lora(Tensor a, Tensor b, Tensor gA, Tensor gB, float scaling) {
    public Lora {
      if (a.rank() != 3 || b.rank() != 3 || a.dim(0) != b.dim(0) || a.dim(1) != b.dim(2)) {
        throw new IllegalArgumentException(
            "ParallelLinear.Lora: A "
                + a.describe()
                + " and B "
                + b.describe()
                + " are not (E, r, I) and (E, O, r)");
      }
    }

    int rank() {
      return (int) a.dim(1);
    }
  }

  /**
   * The output of a forward and what its backward needs. The caller owns {@link #output()}; {@link
   * #close()} frees only what the context saved for the backward.
   */
  public static final class Context implements AutoCloseable {
    private final Tensor x; // (M, I) grouped or (M / k, I)
    private final Tensor w; // (E, O, I)
    private final boolean hasBias;
    private final int k;
    private final Routing routing;
    private final Tensor gates; // F32 (Ng, Kg) or null
    private final Tensor
        expanded; // (M, O) scattered, the ungated rows: kept with gates + bias, or (no bias) for
    // the SwiGLU factors' backward (variant 56)
    private final boolean groupedIn;
    private final boolean groupedOut;
    private final Tensor output; // (M, O) or, with gates, (Ng, O); null when not computed
    private final long outputNumel; // what output has (or would have)
    private Lora lora; // or null
    private Tensor xa; // (M, r) grouped: x A^T of every routed row, when lora is set

    private Context(
        Tensor x,
        Tensor w,
        boolean hasBias,
        int k,
        Routing routing,
        Tensor gates,
        Tensor expanded,
        boolean groupedIn,
        boolean groupedOut,
        Tensor output,
        long outputNumel) {
      this.x = x;
      this.w = w;
      this.hasBias = hasBias;
      this.k = k;
      this.routing = routing;
      this.gates = gates;
      this.expanded = expanded;
      this.groupedIn = groupedIn;
      this.groupedOut = groupedOut;
      this.output = output;
      this.outputNumel = outputNumel;
    }

    /** The output, owned by the caller; null when the forward was asked for none. */
    public Tensor output() {
      return output;
    }

    @Override
    public void close() {
      if (expanded != null) {
        expanded.close();
      }
      if (xa != null) {
        xa.close();
      }
    }
  }

  /**
   * Input and gate gradients of a backward. dX is (M, I) in expert order when the forward was
   * groupedIn, else (M / k, I); dGates F32 (Ng, Kg) or null without gates. The caller owns both.
   */
  public record Grads(Tensor dX, Tensor dGates) implements AutoCloseable {
    @Override
    public void close() {
      if (dX != null) {
        dX.close();
      }
      if (dGates != null) {
        dGates.close();
      }
    }
  }

  /**
   * y = ParallelLinear(x). x (M, I) if groupedIn else (M / k, I); w (E, O, I); bias (E, O) or null;
   * gates F32 (Ng, Kg) with Ng * Kg = M, or null. The output has x's dtype.
   */
  public static Context forward(
      Tensor x,
      Tensor w,
      Tensor bias,
      int k,
      Routing routing,
      Tensor gates,
      boolean groupedIn,
      boolean groupedOut) {
    return forward(x, w, bias, k, routing, gates, groupedIn, groupedOut, null);
  }

  /** As the forward above, with a LoRA adapter (or null) added to every routed row's product. */
  public static Context forward(
      Tensor x,
      Tensor w,
      Tensor bias,
      int k,
      Routing routing,
      Tensor gates,
      boolean groupedIn,
      boolean groupedOut,
      Lora lora) {
    return forward(x, w, bias, k, routing, gates, groupedIn, groupedOut, lora, true, false);
  }

  /**
   * As above; with outputNeeded false (a recomputation for the backward of a gated product without
   * bias) only what the backward reads is made: the adapter's xa, not the product or its combine,
   * and {@link Context#output()} is null. With swigluFactors (the expert MLP's down product when
   * its input a is SwiGLU that saved its backward's factors, {@link
   * Backend#scatter2scatterSwigluFactors}) the ungated rows are kept for the gates' gradient, and
   * {@link #backward} with those factors runs {@link Backend#scatter2scatterSwigluFactorsBackward}.
   * It needs gates and no bias; without outputNeeded the rows are still made, the combine is not,
   * so that the gradients are the same bit for bit whether the layer was recomputed or kept.
   */
  public static Context forward(
      Tensor x,
      Tensor w,
      Tensor bias,
      int k,
      Routing routing,
      Tensor gates,
      boolean groupedIn,
      boolean groupedOut,
      Lora lora,
      boolean outputNeeded,
      boolean swigluFactors) {
    Backend be = x.backend();
    if (swigluFactors && (gates == null || bias != null)) {
      throw new IllegalArgumentException(
          "ParallelLinear: the SwiGLU factors' backward takes the gates' gradient from the ungated"
              + " rows: it needs gates and no bias");
    }
    long m = routing.rows();
    long out = w.dim(1);
    checkShapes(x, w, bias, k, routing, gates, groupedIn, groupedOut);
    if (!outputNeeded && !swigluFactors) {
      if (gates == null || bias != null) {
        throw new IllegalArgumentException(
            "ParallelLinear: only a gated product without bias can skip its output (its backward"
                + " needs no y_e)");
      }
      long numel = m / gates.cols() * out;
      Context c = new Context(x, w, false, k, routing, gates, null, groupedIn, false, null, numel);
      if (lora != null) {
        c.xa = loraDown(c, lora);
      }
      return c;
    }
    if (gates == null) {
      Tensor y = be.empty(x.dtype(), m, out);
      be.scatter2scatter(
          x,
          w,
          bias,
          true,
          k,
          routing.sortedExpertIdxs(),
          routing.sortedScatteredIdxs(),
          groupedIn,
          groupedOut,
          y);
      Context c =
          new Context(
              x, w, bias != null, k, routing, null, null, groupedIn, groupedOut, y, y.numel());
      addLora(c, lora, y, groupedOut);
      return c;
    }
    int gateFan = (int) gates.cols();
    Tensor expanded = be.empty(x.dtype(), m, out); // (M, O) in token-slot order
    be.scatter2scatter(
        x,
        w,
        bias,
        true,
        k,
        routing.sortedExpertIdxs(),
        routing.sortedScatteredIdxs(),
        groupedIn,
        false,
        expanded);
    Tensor y = outputNeeded ? be.empty(x.dtype(), m / gateFan, out) : null;
    Context c =
        new Context(
            x,
            w,
            bias != null,
            k,
            routing,
            gates,
            bias != null || swigluFactors ? expanded : null,
            groupedIn,
            false,
            y,
            m / gateFan * out);
    addLora(c, lora, expanded, false); // before the combine: expanded has the ungated rows
    if (y != null) {
      be.combine(expanded, gates, gateFan, y);
    }
    if (bias == null && !swigluFactors) {
      expanded.close(); // the backward takes the gates' gradient from the ungated dX instead
    }
    return c;
  }

  /**
   * The expert MLP's first product with its SwiGLU in one backend call ({@link
   * Backend#scatter2scatterSwiglu}): h = ParallelLinear(x, w, k, groupedOut) (M, 2F), the context's
   * output, and act = silu(h[:, :F]) * h[:, F:] (M, F) grouped, overwrite. x (M / k, I) in token
   * order, w (E, 2F, I), no bias, no adapter (an adapter's rows are added to h before its SwiGLU:
   * {@link #forward} then {@link Backend#swigluForward}).
   */
  public static Context forwardSwiglu(Tensor x, Tensor w, int k, Routing routing, Tensor act) {
    Backend be = x.backend();
    long m = routing.rows();
    checkShapes(x, w, null, k, routing, null, false, true);
    Tensor h = be.empty(x.dtype(), m, w.dim(1));
    be.scatter2scatterSwiglu(
        x, w, k, routing.sortedExpertIdxs(), routing.sortedScatteredIdxs(), false, h, act);
    return new Context(x, w, false, k, routing, null, null, false, true, h, h.numel());
  }

  /**
   * As {@link #forwardSwiglu}, saving SwiGLU's backward factors ({@link
   * Backend#scatter2scatterSwigluFactors}): the context's output p (M, 2F) holds [d act / d gate |
   * d act / d up] instead of h; act as there.
   */
  public static Context forwardSwigluFactors(
      Tensor x, Tensor w, int k, Routing routing, Tensor act) {
    Backend be = x.backend();
    long m = routing.rows();
    checkShapes(x, w, null, k, routing, null, false, true);
    Tensor p = be.empty(x.dtype(), m, w.dim(1));
    be.scatter2scatterSwigluFactors(
        x, w, k, routing.sortedExpertIdxs(), routing.sortedScatteredIdxs(), false, p, act);
    return new Context(x, w, false, k, routing, null, null, false, true, p, p.numel());
  }

  /**
   * rows (M, O), grouped or in token-slot order, += scaling * (x A^T) B^T per routed row; keeps xa
   * (M, r) grouped in the context.
   */
  private static void addLora(Context c, Lora lora, Tensor rows, boolean rowsGrouped) {
    if (lora == null) {
      return;
    }
    Backend be = rows.backend();
    Routing r = c.routing;
    long m = r.rows();
    c.xa = loraDown(c, lora);
    try (Tensor yb = be.empty(rows.dtype(), m, c.w.dim(1))) {
      be.scatter2scatter(
          c.xa,
          lora.b(),
          null,
          true,
          1,
          r.sortedExpertIdxs(),
          r.sortedScatteredIdxs(),
          true,
          rowsGrouped,
          yb);
      be.axpy(lora.scaling(), yb, rows);
    }
  }

  /** xa = x A^T (M, r) grouped for every routed row; sets the context's adapter. */
  private static Tensor loraDown(Context c, Lora lora) {
    Backend be = c.x.backend();
    Routing r = c.routing;
    if (lora.a().dim(0) != r.numExperts()
        || lora.a().dim(2) != c.w.dim(2)
        || lora.b().dim(1) != c.w.dim(1)) {
      throw new IllegalArgumentException(
          "ParallelLinear: LoRA A "
              + lora.a().describe()
              + ", B "
              + lora.b().describe()
              + " do not fit W "
              + c.w.describe());
    }
    c.lora = lora;
    Tensor xa = be.empty(c.x.dtype(), r.rows(), lora.rank());
    be.scatter2scatter(
        c.x,
        lora.a(),
        null,
        true,
        c.k,
        r.sortedExpertIdxs(),
        r.sortedScatteredIdxs(),
        c.groupedIn,
        true,
        xa);
    return xa;
  }

  /**
   * ScatterMoE's hand-written backward. dY has the output's shape. dW (E, O, I) and dBias (E, O)
   * are accumulated into (+=); either may be null when that parameter is frozen (dBias must be null
   * when the forward had no bias). dX is computed only when needDx (a gated product without bias
   * computes its rows anyway: they carry the gates' gradient).
   */
  public static Grads backward(Context c, Tensor dY, Tensor dW, Tensor dBias, boolean needDx) {
    return backward(c, dY, dW, dBias, needDx, null);
  }

  /**
   * As above for the expert MLP's down product, whose input x was SwiGLU of swigluH (M, 2F)
   * (grouped): with swigluH, the returned dX is already dH (M, 2F), the gradient of swigluH, from
   * one backend call ({@link Backend#scatter2scatterSwigluBackward}: the ungated product, the
   * gates' gradient and SwiGLU's backward). It needs a gated product without bias or adapter on
   * grouped rows (k = 1); swigluH null is the plain backward. Where the forward was made with
   * swigluFactors, swigluH holds SwiGLU's backward factors instead of h, and dH comes from dY
   * grouped with its gates ({@link Backend#scatter2scatterSwigluFactorsBackward}), the gates'
   * gradient from the kept ungated rows.
   */
  public static Grads backward(
      Context c, Tensor dY, Tensor dW, Tensor dBias, boolean needDx, Tensor swigluH) {
    return backward(c, dY, dW, dBias, needDx, swigluH, true);
  }

  /**
   * As above; {@code accumulate} false writes dW and dBias (=) instead of adding to them (+=), as
   * the addition into zeroed gradients would (a step's first micro-batch: no read of the old
   * values, {@link Backend#groupXtY(Tensor, Tensor, Tensor, Tensor, Tensor, boolean)}). An
   * adapter's gradients always accumulate.
   */
  public static Grads backward(
      Context c,
      Tensor dY,
      Tensor dW,
      Tensor dBias,
      boolean needDx,
      Tensor swigluH,
      boolean accumulate) {
    Backend be = dY.backend();
    // the factors' path: the forward kept the ungated rows of a product without bias
    boolean factors = swigluH != null && c.expanded != null;
    if (swigluH != null
        && (c.gates == null
            || c.hasBias
            || c.lora != null
            || !c.groupedIn
            || c.k != 1
            || swigluH.numel() != 2 * c.x.numel())) {
      throw new IllegalArgumentException(
          "ParallelLinear.backward: the SwiGLU backward needs a gated product without bias or"
              + " adapter on grouped rows whose input is SwiGLU of h (M, 2F); got x "
              + c.x.describe()
              + ", h "
              + swigluH.describe());
    }
    if (dY.numel() != c.outputNumel) {
      throw new IllegalArgumentException(
          "ParallelLinear.backward: dY "
              + dY.describe()
              + " does not match the output's "
              + c.outputNumel
              + " elements");
    }
    if (dBias != null && !c.hasBias) {
      throw new IllegalArgumentException(
          "ParallelLinear.backward: dBias given but the forward had no bias");
    }
    Routing r = c.routing;
    long m = r.rows();
    long in = c.w.dim(2);
    long out = c.w.dim(1);
    Tensor dGates = null;
    // gatesFlat: F32 (M) by token slot when the gates' gradient comes from the ungated dX rows;
    // then dYGrouped lacks the gate factors and every gradient that needs them applies them.
    Tensor gatesFlat = null;
    int gateFan = 1;
    Tensor dYGrouped; // (M, O) in expert order, the gradient of every routed row's product
    boolean ownDyGrouped = true;
    if (c.gates != null) {
      gateFan = (int) c.gates.cols();
      dGates = be.empty(DType.F32, c.gates.shape());
      if (swigluH != null && !factors) { // the fused call gathers dY's rows itself
        gatesFlat = c.gates.reshape(m);
        dYGrouped = null;
      } else if (c.expanded == null) {
        gatesFlat = c.gates.reshape(m);
        dYGrouped = be.empty(dY.dtype(), m, out);
        be.group(dY, r.sortedScatteredIdxs(), gateFan, null, dYGrouped);
      } else {
        dYGrouped = be.empty(dY.dtype(), m, out);
        be.groupGatesBackward(
            dY,
            r.sortedScatteredIdxs(),
            gateFan,
            c.gates.reshape(m),
            c.expanded,
            dGates,
            dYGrouped);
      }
    } else if (c.groupedOut) {
      dYGrouped = dY;
      ownDyGrouped = false;
    } else {
      dYGrouped = be.empty(dY.dtype(), m, out);
      be.group(dY, r.sortedScatteredIdxs(), 1, null, dYGrouped);
    }
    // a weight gradient alone (no bias, no adapter, no gates to apply) beside the factors' dH or a
    // plain dX: one call, where the backend runs the two products at once (variant 61)
    boolean dwBeside =
        be.dwBesideDx()
            && dW != null
            && dBias == null
            && c.lora == null
            && gatesFlat == null
            && (factors || (swigluH == null && needDx));
    Tensor dxa = null; // (M, r) grouped: d loss / d xa (ungated with gatesFlat), with an adapter
    Tensor xGrouped = c.x; // (M, I) in expert order, for dW and the adapter
    if (!c.groupedIn && (dW != null || dBias != null || c.lora != null)) {
      xGrouped = be.empty(c.x.dtype(), m, in);
      be.group(c.x, r.sortedScatteredIdxs(), c.k, null, xGrouped);
    }
    if (!dwBeside && (dW != null || dBias != null || c.lora != null)) {
      if (dW != null || dBias != null) {
        Tensor dWTarget = dW;
        if (dWTarget == null) {
          // groupXtY always writes dW; a frozen weight with a trained bias takes a scratch buffer.
          dWTarget = be.zeros(DType.F32, c.w.shape());
        }
        Tensor dYGated = dYGrouped;
        if (gatesFlat != null) { // the weight's gradient takes the gated rows
          dYGated = be.empty(dY.dtype(), m, out);
          be.group(dY, r.sortedScatteredIdxs(), gateFan, gatesFlat, dYGated);
        }
        be.groupXtY(xGrouped, dYGated, r.expertOffsets(), dWTarget, dBias, accumulate);
        if (dYGated != dYGrouped) {
          dYGated.close();
        }
        if (dW == null) {
          dWTarget.close();
        }
      }
      if (c.lora != null) {
        dxa = loraBackward(c, dYGrouped, xGrouped, gatesFlat);
      }
    }
    if (!dwBeside && xGrouped != c.x) { // freed before dX's rows are made (beside: after)
      xGrouped.close();
    }
    Tensor dX = null;
    if (factors) { // dH from the gated rows and the forward's factors
      dX = be.empty(dY.dtype(), m, swigluH.cols());
      if (dwBeside) {
        be.swigluFactorsBackwardBesideDw(
            xGrouped,
            dYGrouped,
            r.expertOffsets(),
            dW,
            accumulate,
            c.w,
            r.sortedExpertIdxs(),
            r.sortedScatteredIdxs(),
            swigluH,
            dX);
      } else {
        be.scatter2scatterSwigluFactorsBackward(
            dYGrouped, c.w, r.sortedExpertIdxs(), r.sortedScatteredIdxs(), swigluH, dX);
      }
    } else if (swigluH != null) {
      dX = be.empty(dY.dtype(), m, swigluH.cols()); // dH
      be.scatter2scatterSwigluBackward(
          dY,
          c.w,
          gateFan,
          r.sortedExpertIdxs(),
          r.sortedScatteredIdxs(),
          false,
          swigluH,
          c.x,
          gatesFlat,
          dGates,
          dX);
    } else if (needDx || gatesFlat != null) {
      // dX rows in the forward input's layout: grouped, or scattered to (M, I) then summed over k.
      Tensor dXExpanded = be.empty(dY.dtype(), m, in);
      if (dwBeside) {
        be.scatter2scatterBesideDw(
            xGrouped,
            dYGrouped,
            r.expertOffsets(),
            dW,
            accumulate,
            c.w,
            r.sortedExpertIdxs(),
            r.sortedScatteredIdxs(),
            c.groupedIn,
            dXExpanded);
      } else {
        be.scatter2scatter(
            dYGrouped,
            c.w,
            null,
            false,
            1,
            r.sortedExpertIdxs(),
            r.sortedScatteredIdxs(),
            true,
            c.groupedIn,
            dXExpanded);
      }
      if (dxa != null) {
        try (Tensor fromA = be.empty(dY.dtype(), m, in)) {
          be.scatter2scatter(
              dxa,
              c.lora.a(),
              null,
              false,
              1,
              r.sortedExpertIdxs(),
              r.sortedScatteredIdxs(),
              true,
              c.groupedIn,
              fromA); // dxa A[e], in the forward input's layout
          be.add(dXExpanded, fromA, dXExpanded);
        }
      }
      if (gatesFlat != null) {
        // rows in expert order (groupedIn: row p is slot ssi[p], input x[p]) or in slot order
        // (row s is slot s, input x[s / k]); dGates = dot(ungated row, input), then row *= gate
        be.gateRowsBackward(
            dXExpanded,
            c.x,
            c.groupedIn ? 1 : c.k,
            c.groupedIn ? r.sortedScatteredIdxs() : null,
            gatesFlat,
            dGates);
      }
      if (!needDx) {
        dXExpanded.close();
      } else if (c.groupedIn || c.k == 1) {
        dX = dXExpanded;
      } else {
        dX = be.empty(dY.dtype(), m / c.k, in);
        be.combine(dXExpanded, null, c.k, dX);
        dXExpanded.close();
      }
    }
    if (dwBeside && xGrouped != c.x) {
      xGrouped.close();
    }
    if (ownDyGrouped && dYGrouped != null) {
      dYGrouped.close();
    }
    if (dxa != null) {
      dxa.close();
    }
    return new Grads(dX, dGates);
  }

  /**
   * The adapter's weight gradients from dYGrouped (M, O) and the grouped input (M, I): dB[e] +=
   * scaling * dy^T xa, dA[e] += dxa^T x with dxa = scaling * dy B[e]. With gatesFlat (F32 (M) by
   * token slot), dYGrouped is ungated: both weight gradients take each row's gate (on the (M, r)
   * side) and the returned dxa stays ungated, as dYGrouped. Returns dxa (M, r) grouped.
   */
  private static Tensor loraBackward(
      Context c, Tensor dYGrouped, Tensor xGrouped, Tensor gatesFlat) {
    Backend be = dYGrouped.backend();
    Routing r = c.routing;
    long m = r.rows();
    Lora lora = c.lora;
    try (Tensor xaScaled = be.empty(c.xa.dtype(), c.xa.shape())) {
      be.copy(c.xa, xaScaled); // scaling (and the gates) folded into the small (M, r) side
      be.scale(xaScaled, lora.scaling());
      gateSmallRows(xaScaled, r, gatesFlat);
      be.groupXtY(xaScaled, dYGrouped, r.expertOffsets(), lora.gB(), null);
    }
    Tensor dxa = be.empty(dYGrouped.dtype(), m, lora.rank());
    be.scatter2scatter(
        dYGrouped,
        lora.b(),
        null,
        false,
        1,
        r.sortedExpertIdxs(),
        r.sortedScatteredIdxs(),
        true,
        true,
        dxa);
    be.scale(dxa, lora.scaling());
    if (gatesFlat == null) {
      be.groupXtY(xGrouped, dxa, r.expertOffsets(), lora.gA(), null);
    } else {
      try (Tensor dxaGated = be.empty(dxa.dtype(), dxa.shape())) {
        be.copy(dxa, dxaGated);
        gateSmallRows(dxaGated, r, gatesFlat);
        be.groupXtY(xGrouped, dxaGated, r.expertOffsets(), lora.gA(), null);
      }
    }
    return dxa;
  }

  /** rows (M, r) grouped *= their gate, in place; nothing without gates. */
  private static void gateSmallRows(Tensor rows, Routing r, Tensor gatesFlat) {
    if (gatesFlat != null) {
      rows.backend().gateRowsBackward(rows, null, 1, r.sortedScatteredIdxs(), gatesFlat, null);
    }
  }

  private static void checkShapes(
      Tensor x,
      Tensor w,
      Tensor bias,
      int k,
      Routing routing,
      Tensor gates,
      boolean groupedIn,
      boolean groupedOut) {
    long m = routing.rows();
    if (w.rank() != 3 || w.dim(0) != routing.numExperts()) {
      throw new IllegalArgumentException(
          "ParallelLinear: W " + w.describe() + " is not (E=" + routing.numExperts() + ", O, I)");
    }
    if (k <= 0 || m % k != 0) {
      throw new IllegalArgumentException("ParallelLinear: k=" + k + " does not divide M=" + m);
    }
    long xRows = groupedIn ? m : m / k;
    if (x.cols() != w.dim(2) || x.rows() != xRows) {
      throw new IllegalArgumentException(
          "ParallelLinear: x "
              + x.describe()
              + " should be ("
              + xRows
              + ", "
              + w.dim(2)
              + ") for M="
              + m
              + ", k="
              + k
              + ", groupedIn="
              + groupedIn);
    }
    if (bias != null && bias.numel() != w.dim(0) * w.dim(1)) {
      throw new IllegalArgumentException(
          "ParallelLinear: bias "
              + bias.describe()
              + " should be ("
              + w.dim(0)
              + ", "
              + w.dim(1)
              + ")");
    }
    if (gates != null) {
      if (groupedOut) {
        throw new IllegalArgumentException(
            "ParallelLinear: gates need groupedOut=false (the gated combine reads rows in token order)");
      }
      if (gates.dtype() != DType.F32 || gates.numel() != m) {
        throw new IllegalArgumentException(
            "ParallelLinear: gates "
                + gates.describe()
                + " should be F32 with M="
                + m
                + " entries");
      }
    }
  }
}
