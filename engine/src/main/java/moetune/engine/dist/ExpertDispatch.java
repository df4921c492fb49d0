package moetune.engine.dist;

import moetune.engine.backend.Backend;
import moetune.engine.tensor.Tensor;

/**
 * Expert parallelism's token exchange: E experts split over the N ranks of a communicator in
 * contiguous blocks (rank r owns experts [r*E/N, (r+1)*E/N)). Each rank's routed rows are already
 * in expert order (ScatterMoE's sort: {@code expertCounts[e]} rows of expert e, e ascending), so
 * the rows bound for rank j are one contiguous run and the send counts are sums of the counts.
 *
 * <p>{@link #dispatch}: all-to-all of the sorted rows, then the received rows (source-rank major)
 * are regrouped by local expert (expert major, source rank minor), the layout the grouped expert
 * products take with {@link #localExpertCounts}. {@link #combine}: the exact reverse, so expert
 * outputs return to the rows' places on their own rank. In the backward the roles swap: the
 * gradient of the expert outputs goes through dispatch, the gradient of the expert inputs through
 * combine (each is the other's transpose: pure permutations and exchanges).
 *
 * <p>The regrouping copies blocks (one per (source rank, local expert) pair), no per-row index. Not
 * yet wired into the model's MoE layer (see docs/multi-gpu.md).
 */
public final class ExpertDispatch {
  private final Communicator comm;
  private final int local; // experts per rank
  private final long[][] counts; // (N, E) rows of expert e on rank j, every rank's
  private final long[] sendRows; // (N) rows this rank sends to rank j
  private final long[] recvRows; // (N) rows this rank receives from rank j
  private final long[] localCounts; // (E/N) rows of each local expert after dispatch

  /**
   * Plans the exchange (a collective: every rank's counts become known to all).
   *
   * @param expertCounts (E) this rank's rows per expert, in its sorted order
   */
  public ExpertDispatch(Communicator comm, long[] expertCounts) {
    int n = comm.size();
    int e = expertCounts.length;
    if (e % n != 0) {
      throw new IllegalArgumentException(
          "--expert-parallel "
              + n
              + " must divide the model's "
              + e
              + " experts; give a divisor of "
              + e);
    }
    this.comm = comm;
    this.local = e / n;
    double[] all = new double[n * e];
    for (int x = 0; x < e; x++) {
      all[comm.rank() * e + x] = expertCounts[x];
    }
    comm.allReduceSum(all); // every rank's row; the others are zero
    counts = new long[n][e];
    for (int j = 0; j < n; j++) {
      for (int x = 0; x < e; x++) counts[j][x] = (long) all[j * e + x];
    }
    sendRows = new long[n];
    recvRows = new long[n];
    localCounts = new long[local];
    int me = comm.rank();
    for (int j = 0; j < n; j++) {
      for (int l = 0; l < local; l++) {
        sendRows[j] += counts[me][j * local + l];
        recvRows[j] += counts[j][me * local + l];
        localCounts[l] += counts[j][me * local + l];
      }
    }
  }

  /** Rows of each of this rank's experts after {@link #dispatch} (E/N). */
  public long[] localExpertCounts() {
    return localCounts.clone();
  }

  /** Rows this rank holds after {@link #dispatch}. */
  public long receivedRows() {
    long s = 0;
    for (long r : recvRows) s += r;
    return s;
  }

  /**
   * sorted (R, D) this rank's rows in expert order -> grouped (receivedRows, D) this rank's
   * experts' rows, expert major. scratch (receivedRows, D) holds the source-major rows between.
   */
  public void dispatch(Tensor sorted, Tensor scratch, Tensor grouped) {
    long d = sorted.dim(1);
    comm.allToAll(sorted, scale(sendRows, d), scratch, scale(recvRows, d));
    regroup(scratch, grouped, d, true);
  }

  /** The reverse of {@link #dispatch}: grouped (receivedRows, D) -> sorted (R, D). */
  public void combine(Tensor grouped, Tensor scratch, Tensor sorted) {
    long d = grouped.dim(1);
    regroup(grouped, scratch, d, false);
    comm.allToAll(scratch, scale(recvRows, d), sorted, scale(sendRows, d));
  }

  /** Copies the (source j, local expert l) blocks between source-major and expert-major order. */
  private void regroup(Tensor from, Tensor to, long d, boolean toExpertMajor) {
    Backend be = from.backend();
    int me = comm.rank();
    int n = comm.size();
    long[][] srcMajor = new long[n][local]; // row offset of block (j, l) in source-major order
    long at = 0;
    for (int j = 0; j < n; j++) {
      for (int l = 0; l < local; l++) {
        srcMajor[j][l] = at;
        at += counts[j][me * local + l];
      }
    }
    long ex = 0;
    for (int l = 0; l < local; l++) {
      for (int j = 0; j < n; j++) {
        long rows = counts[j][me * local + l];
        if (rows > 0) {
          long s = toExpertMajor ? srcMajor[j][l] : ex;
          long t = toExpertMajor ? ex : srcMajor[j][l];
          be.copy(from.view(s * d, rows, d), to.view(t * d, rows, d));
        }
        ex += rows;
      }
    }
  }

  private static long[] scale(long[] rows, long d) {
    long[] out = new long[rows.length];
    for (int i = 0; i < rows.length; i++) out[i] = rows[i] * d;
    return out;
  }
}
