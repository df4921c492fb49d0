package moetune.engine.model;

import moetune.engine.backend.Backend;
import moetune.engine.backend.Communicator;
import moetune.engine.dist.ExpertDispatch;
import moetune.engine.moe.MoeMlp;
import moetune.engine.moe.Routing;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * The SwiGLU experts of one MoE layer split over the ranks of a communicator (expert parallel):
 * rank r computes experts [r*E/N, (r+1)*E/N) for the rows every rank routes to them.
 *
 * <pre>
 *   routing = sort of topIdx by expert (ScatterMoE's flatten_sort_count)   // counts per expert
 *   xs      = group(x)                          (M, D) this rank's rows in expert order
 *   grouped = dispatch(xs)                      (R, D) rows of this rank's experts, expert major
 *   y       = local MoeMlp(grouped)             (R, D) (k = 1, gates 1: the rows stay in place)
 *   ys      = combine(y)                        (M, D) back on the rows' rank, expert order
 *   out     = combine_K(unsort(ys), topW)       (N, D) the gate-weighted sum of each token's K
 * </pre>
 *
 * The backward mirrors it: dGates from the unsorted expert outputs, dY into expert order with the
 * gates ({@code group}), dispatch, the local experts' backward (weight gradients += on this rank's
 * experts only), combine, and the scatter-add of the K rows of each token into dX. Shape letters: N
 * tokens, D hidden, K experts per token, M = N*K, R rows this rank's experts receive.
 *
 * <p>The weights are either whole on every rank (only the owner's experts are read and get
 * gradients; the others' gradients stay 0, so the data-parallel sum of gradients is the full
 * gradient) or split ({@link ExpertShard}: each rank stores, trains and steps its own experts only,
 * the memory saving of expert parallelism; the same bits). One host round trip per layer (the
 * forward's rows per expert of every rank, which NCCL's send/receive need on the host), none in the
 * backward (it reuses the forward's plan); the unsort and the scatter of dX stay on the device.
 */
final class ExpertParallelMoe {
  private final Backend be;
  private final Communicator comm;
  private final int experts; // E
  private final int topK; // K
  private final MoeMlp local; // the views of this rank's experts

  /**
   * gateUp (E, 2F, D) and down (E, D, F) with their gradients: every expert (this rank reads its
   * block) or, with the experts split ({@link ExpertShard}), this rank's E/N experts only.
   */
  ExpertParallelMoe(
      Communicator comm,
      int e,
      Tensor gateUp,
      Tensor down,
      Tensor gateUpGrad,
      Tensor downGrad,
      int topK) {
    int n = comm.size();
    if (e % n != 0) {
      throw new IllegalArgumentException(
          "--expert-parallel "
              + n
              + " must divide the model's "
              + e
              + " experts; give a divisor of "
              + e);
    }
    this.be = gateUp.backend();
    this.comm = comm;
    this.experts = e;
    this.topK = topK;
    int el = e / n;
    long e0 = gateUp.dim(0) == e ? (long) comm.rank() * el : 0; // whole, or this rank's block
    this.local =
        new MoeMlp(
            expertBlock(gateUp, e0, el),
            expertBlock(down, e0, el),
            gateUpGrad == null ? null : expertBlock(gateUpGrad, e0, el),
            downGrad == null ? null : expertBlock(downGrad, e0, el));
  }

  /** Experts [e0, e0 + count) of an (E, O, I) tensor, a view. */
  private static Tensor expertBlock(Tensor w, long e0, int count) {
    long per = w.dim(1) * w.dim(2);
    return w.view(e0 * per, count, w.dim(1), w.dim(2));
  }

  /** What the backward needs; output() (N, D) is freed by close. */
  static final class Forward implements AutoCloseable {
    final Routing routing;
    final ExpertDispatch plan;
    final Tensor topW; // F32 (N, K), the caller's
    final Tensor grouped; // (R, D) the local experts' input (the local forward reads it)
    final Routing localRouting; // or null when R = 0
    final Tensor ones; // F32 (R, 1) or null
    final MoeMlp.Forward localForward; // or null when R = 0
    final Tensor expanded; // (M, D) expert outputs in scattered order
    final Tensor out; // (N, D)

    Forward(
        Routing routing,
        ExpertDispatch plan,
        Tensor topW,
        Tensor grouped,
        Routing localRouting,
        Tensor ones,
        MoeMlp.Forward localForward,
        Tensor expanded,
        Tensor out) {
      this.routing = routing;
      this.plan = plan;
      this.topW = topW;
      this.grouped = grouped;
      this.localRouting = localRouting;
      this.ones = ones;
      this.localForward = localForward;
      this.expanded = expanded;
      this.out = out;
    }

    Tensor output() {
      return out;
    }

    @Override
    public void close() {
      out.close();
      expanded.close();
      if (localForward != null) {
        localForward.close();
        localRouting.close();
        ones.close();
      }
      grouped.close();
      plan.close();
      routing.close();
    }
  }

  /** x (N, D), topW F32 (N, K) normalised gates, topIdx I32 (N, K). A collective. */
  Forward forward(Tensor x, Tensor topW, Tensor topIdx) {
    long n = x.rows();
    long d = x.cols();
    long m = n * topK;
    DType dt = x.dtype();
    Routing routing = Routing.compute(be, topIdx, experts);
    ExpertDispatch plan = ExpertDispatch.of(comm, groupCounts(topIdx));
    Tensor xs = be.empty(dt, m, d);
    be.group(x, routing.sortedScatteredIdxs(), topK, null, xs);
    long r = plan.receivedRows();
    Tensor grouped = be.empty(dt, r, d);
    Tensor y = be.empty(dt, r, d);
    Routing localRouting = null;
    Tensor ones = null;
    MoeMlp.Forward lf = null;
    try (Tensor scratch = be.empty(dt, r, d)) {
      plan.dispatch(xs, scratch, grouped);
      if (r > 0) {
        localRouting = localRouting(plan.localExpertCounts());
        float[] one = new float[(int) r];
        java.util.Arrays.fill(one, 1f);
        ones = be.upload(HostTensor.ofFloats(one, r, 1));
        lf = local.forward(grouped, ones, localRouting);
        be.copy(lf.output(), y);
      }
      plan.combine(y, scratch, xs); // xs now holds the expert outputs, expert order
    }
    y.close();
    Tensor expanded = unsort(routing, xs);
    xs.close();
    Tensor out = be.empty(dt, n, d);
    be.combine(expanded, topW, topK, out);
    return new Forward(routing, plan, topW, grouped, localRouting, ones, lf, expanded, out);
  }

  /**
   * Every rank's rows per expert, (N, E): the one host round trip of a layer (NCCL's send and
   * receive take host counts). Counted on the device ({@link Backend#expertLoadStats} with no
   * probabilities: the counts of topIdx, exact in float32 below 2^24 rows), summed into this rank's
   * row of a zero (N, E+2) block by a device all-reduce, downloaded once.
   */
  private long[][] groupCounts(Tensor topIdx) {
    int ranks = comm.size();
    long[][] counts = new long[ranks][experts];
    try (Tensor block = be.zeros(DType.F32, ranks, experts + 2);
        Tensor noProbs = be.zeros(DType.F32, topIdx.rows(), experts)) {
      be.expertLoadStats(
          noProbs, topIdx, null, block.view((long) comm.rank() * (experts + 2), 1, experts + 2));
      comm.allReduceSum(block);
      float[] all = be.download(block).toFloatArray();
      for (int j = 0; j < ranks; j++) {
        for (int e = 0; e < experts; e++) counts[j][e] = (long) all[j * (experts + 2) + e];
      }
    }
    return counts;
  }

  /**
   * Rows in expert order (M, D) back to the scattered order (token-major, K per token), a new
   * tensor: out[s_p] = sorted[p] for s_p = the sort's sortedScatteredIdxs, a permutation, as a
   * scatter-add into zeros ({@link Backend#embeddingBackward}: each row receives exactly one row,
   * so 0 + x is x in any dtype) on the device, without the sort's download.
   */
  private Tensor unsort(Routing routing, Tensor sorted) {
    Tensor out = be.zeros(sorted.dtype(), sorted.rows(), sorted.cols());
    be.embeddingBackward(routing.sortedScatteredIdxs(), sorted, out);
    return out;
  }

  /** The rows of the local experts, in place: expert of row p, identity order, offsets. */
  private Routing localRouting(long[] localCounts) {
    int el = localCounts.length;
    long r = 0;
    for (long c : localCounts) r += c;
    int[] sei = new int[(int) r];
    int[] ssi = new int[(int) r];
    int[] off = new int[el];
    int at = 0;
    for (int l = 0; l < el; l++) {
      for (long i = 0; i < localCounts[l]; i++) {
        sei[at] = l;
        ssi[at] = at;
        at++;
      }
      off[l] = at;
    }
    return new Routing(
        be.upload(HostTensor.ofInts(sei, r)),
        be.upload(HostTensor.ofInts(ssi, r)),
        be.upload(HostTensor.ofInts(off, el)),
        el,
        1);
  }

  /**
   * This rank's experts' gradients were just set to zero: the next local backward writes them (a
   * backward that receives no rows leaves them zero and the flag for the next).
   */
  void gradsZeroed() {
    local.overwriteGradsOnce();
  }

  /**
   * Backward of {@link #forward}: dY (N, D) -> dX (N, D) and dTopKWeights F32 (N, K), new tensors;
   * this rank's experts' weight gradients += (= for the first backward after {@link #gradsZeroed}).
   * A collective.
   */
  MoeMlp.Grads backward(Forward f, Tensor dY) {
    long n = dY.rows();
    long d = dY.cols();
    long m = n * topK;
    DType dt = dY.dtype();
    Tensor dGates = be.empty(DType.F32, n, topK);
    Tensor dYs = be.empty(dt, m, d); // the gated dY of each row, expert order
    be.groupGatesBackward(
        dY, f.routing.sortedScatteredIdxs(), topK, f.topW.reshape(m), f.expanded, dGates, dYs);
    long r = f.plan.receivedRows();
    try (Tensor scratch = be.empty(dt, r, d);
        Tensor dYg = be.empty(dt, r, d);
        Tensor dXg = be.zeros(dt, r, d)) {
      f.plan.dispatch(dYs, scratch, dYg);
      if (r > 0) {
        try (MoeMlp.Grads g = local.backward(f.localForward, dYg)) {
          be.copy(g.dX(), dXg);
        }
      }
      f.plan.combine(dXg, scratch, dYs); // dYs now holds dX of each row, expert order
    }
    Tensor dExpanded = unsort(f.routing, dYs); // dX of each (token, slot), scattered order
    dYs.close();
    Tensor dX = be.empty(dt, n, d);
    be.combine(dExpanded, null, topK, dX); // the sum of each token's K rows
    dExpanded.close();
    return new MoeMlp.Grads(dX, dGates);
  }
}
