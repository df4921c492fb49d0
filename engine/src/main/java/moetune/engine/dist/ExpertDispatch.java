package moetune.engine.dist;

import moetune.engine.backend.Backend;
import moetune.engine.backend.Communicator;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * Expert parallelism's token exchange: E experts split over the N ranks of a communicator in
 * contiguous blocks (rank r owns experts [r*E/N, (r+1)*E/N)). Each rank's routed rows are already
 * in expert order (ScatterMoE's sort: {@code expertCounts[e]} rows of expert e, e ascending), so
 * the rows bound for rank j are one contiguous run and the send counts are sums of the counts.
 *
 * <p>{@link #dispatch}: one all-to-all of the sorted rows, then the received rows (source-rank
 * major) are regrouped by local expert (expert major, source rank minor), the layout the grouped
 * expert products take with {@link #localExpertCounts}. {@link #combine}: the exact reverse (one
 * regroup, one all-to-all), so expert outputs return to the rows' places on their own rank. In the
 * backward the roles swap: the gradient of the expert outputs goes through dispatch, the gradient
 * of the expert inputs through combine (each is the other's transpose: pure permutations and
 * exchanges).
 *
 * <p>The regrouping is one {@link Backend#group} (a row gather) by a permutation computed on the
 * host from the counts and uploaded once per plan, not a copy per (rank, expert) block; the plan
 * holds it until {@link #close}. Every rank's counts are known to every rank before a plan is made
 * ({@link #of}: the caller exchanged them, once per layer; the constructor: an all-reduce of them).
 */
public final class ExpertDispatch implements AutoCloseable {
  private final Communicator comm;
  private final int local; // experts per rank
  private final long[][] counts; // (N, E) rows of expert e on rank j, every rank's
  private final long[] sendRows; // (N) rows this rank sends to rank j
  private final long[] recvRows; // (N) rows this rank receives from rank j
  private final long[] localCounts; // (E/N) rows of each local expert after dispatch
  private Tensor order; // I32 (2R): source-major row of each expert-major row, then the reverse

  /**
   * Plans the exchange (a collective: every rank's counts become known to all, through a host
   * all-reduce).
   *
   * @param expertCounts (E) this rank's rows per expert, in its sorted order
   */
  public ExpertDispatch(Communicator comm, long[] expertCounts) {
    this(comm, exchange(comm, expertCounts));
  }

  /**
   * Plans the exchange from every rank's counts, already known here (no collective).
   *
   * @param allCounts (N, E) rows of expert e routed on rank j, the same on every rank
   */
  public static ExpertDispatch of(Communicator comm, long[][] allCounts) {
    return new ExpertDispatch(comm, allCounts);
  }

  private static long[][] exchange(Communicator comm, long[] expertCounts) {
    int n = comm.size();
    int e = expertCounts.length;
    checkDivides(n, e);
    double[] all = new double[n * e];
    for (int x = 0; x < e; x++) {
      all[comm.rank() * e + x] = expertCounts[x];
    }
    comm.allReduceSum(all); // every rank's row; the others are zero
    long[][] counts = new long[n][e];
    for (int j = 0; j < n; j++) {
      for (int x = 0; x < e; x++) counts[j][x] = (long) all[j * e + x];
    }
    return counts;
  }

  private static void checkDivides(int n, int e) {
    if (e % n != 0) {
      throw new IllegalArgumentException(
          "--expert-parallel "
              + n
              + " must divide the model's "
              + e
              + " experts; give a divisor of "
              + e);
    }
  }

  private ExpertDispatch(Communicator comm, long[][] allCounts) {
    int n = comm.size();
    if (allCounts.length != n) {
      throw new IllegalArgumentException(
          "ExpertDispatch: counts of " + allCounts.length + " ranks for a group of " + n);
    }
    int e = allCounts[0].length;
    checkDivides(n, e);
    this.comm = comm;
    this.local = e / n;
    this.counts = allCounts;
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
    regroup(scratch, grouped, true);
  }

  /** The reverse of {@link #dispatch}: grouped (receivedRows, D) -> sorted (R, D). */
  public void combine(Tensor grouped, Tensor scratch, Tensor sorted) {
    long d = grouped.dim(1);
    regroup(grouped, scratch, false);
    comm.allToAll(scratch, scale(recvRows, d), sorted, scale(sendRows, d));
  }

  /** One row gather between source-major and expert-major order. */
  private void regroup(Tensor from, Tensor to, boolean toExpertMajor) {
    long r = receivedRows();
    if (r == 0) {
      return;
    }
    Backend be = from.backend();
    if (order == null) {
      order = be.upload(HostTensor.ofInts(permutations(), 2 * r));
    }
    be.group(from, order.view(toExpertMajor ? 0 : r, r), 1, null, to);
  }

  /**
   * [0, R): the source-major row of each expert-major row (block (l, j) of rank j's rows of local
   * expert l); [R, 2R): the inverse, the expert-major row of each source-major row.
   */
  private int[] permutations() {
    int me = comm.rank();
    int n = comm.size();
    int r = (int) receivedRows();
    long[][] srcMajor = new long[n][local]; // row offset of block (j, l) in source-major order
    long at = 0;
    for (int j = 0; j < n; j++) {
      for (int l = 0; l < local; l++) {
        srcMajor[j][l] = at;
        at += counts[j][me * local + l];
      }
    }
    int[] p = new int[2 * r];
    int ex = 0;
    for (int l = 0; l < local; l++) {
      for (int j = 0; j < n; j++) {
        long rows = counts[j][me * local + l];
        for (long i = 0; i < rows; i++, ex++) {
          int src = (int) (srcMajor[j][l] + i);
          p[ex] = src;
          p[r + src] = ex;
        }
      }
    }
    return p;
  }

  private static long[] scale(long[] rows, long d) {
    long[] out = new long[rows.length];
    for (int i = 0; i < rows.length; i++) out[i] = rows[i] * d;
    return out;
  }

  /** Frees the uploaded permutation. */
  @Override
  public void close() {
    if (order != null) {
      order.close();
      order = null;
    }
  }
}
