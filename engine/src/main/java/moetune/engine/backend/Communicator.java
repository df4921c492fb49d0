package moetune.engine.backend;

import moetune.engine.tensor.Tensor;

/**
 * The collectives that data and expert parallel training need, with NCCL's semantics: every rank of
 * the group calls the same collectives in the same order with tensors of the same sizes. Tensors
 * are flat views on the rank's own backend (F32, or BF16 where the implementation says so); counts
 * are in elements.
 *
 * <p>It sits in {@code backend}, below the packages that implement it, so that the CUDA backend's
 * NCCL implementation and the model's expert-parallel code name it without a two-way arrow. The
 * implementations: {@code dist.LocalCommunicator} (threads of one process as ranks, any backend,
 * through host copies: the CPU twin that CI tests data and expert parallel logic with), {@code
 * dist.TcpCommunicator} (processes over TCP) and {@code backend.cuda.NcclCommunicator} (one GPU per
 * rank, libnccl through FFM).
 *
 * <p>Reduction order: {@code LocalCommunicator} sums in rank order 0, 1, ..., N-1 (deterministic);
 * NCCL's ring and tree orders depend on the topology, so results agree to float32 rounding only.
 */
public interface Communicator extends AutoCloseable {

  /** This rank, 0 <= rank < size. */
  int rank();

  /** Number of ranks in the group. */
  int size();

  /** x (n) on every rank := the sum over ranks of x (in place). */
  void allReduceSum(Tensor x);

  /** values on every rank := the sum over ranks of values (host scalars: losses, token counts). */
  void allReduceSum(double[] values);

  /**
   * in (size * n), out (n): out on rank r := the sum over ranks of in[r*n, (r+1)*n). out may be the
   * rank's own chunk of in.
   */
  void reduceScatterSum(Tensor in, Tensor out);

  /**
   * in (n), out (size * n): out[r*n, (r+1)*n) := in of rank r, on every rank. in may be the rank's
   * own chunk of out (in place).
   */
  void allGather(Tensor in, Tensor out);

  /**
   * {@link #reduceScatterSum} that may still be running when it returns: with NCCL it is queued on
   * the communicator's own stream behind the compute stream's work so far, and the compute stream
   * goes on beside it. {@code out} holds the sum, and {@code in} may be written again, only after
   * {@link #awaitCollectives}; both must stay allocated until then. The communicators without a
   * second stream (in-process, TCP) finish it before returning, which those rules allow.
   */
  default void reduceScatterSumAsync(Tensor in, Tensor out) {
    reduceScatterSum(in, out);
  }

  /** {@link #allGather} under {@link #reduceScatterSumAsync}'s rules. */
  default void allGatherAsync(Tensor in, Tensor out) {
    allGather(in, out);
  }

  /**
   * The compute stream's work queued after this call waits for every collective called so far (the
   * synchronous ones already do): after it, the outputs of the async ones may be read and their
   * inputs written. Collectives of both kinds run in the order they are called, the same order on
   * every rank.
   */
  default void awaitCollectives() {}

  /**
   * All-to-all with per-rank counts (NCCL's grouped send/recv): send holds sendCounts[0] elements
   * for rank 0, then sendCounts[1] for rank 1, ...; recv receives recvCounts[j] elements from rank
   * j in rank order. recvCounts[j] on this rank must equal sendCounts[rank] on rank j. send and
   * recv must not overlap.
   */
  void allToAll(Tensor send, long[] sendCounts, Tensor recv, long[] recvCounts);

  /**
   * The argument checks every {@link #allToAll} makes: one count per rank on each side, and counts
   * that fit the buffers. Returns the elements sent and received in all.
   */
  static long[] checkAllToAll(
      int size, Tensor send, long[] sendCounts, Tensor recv, long[] recvCounts) {
    if (sendCounts.length != size || recvCounts.length != size) {
      throw new IllegalArgumentException(
          "allToAll: need "
              + size
              + " send and receive counts, got "
              + sendCounts.length
              + " and "
              + recvCounts.length);
    }
    long sendTotal = 0, recvTotal = 0;
    for (int j = 0; j < size; j++) {
      sendTotal += sendCounts[j];
      recvTotal += recvCounts[j];
    }
    if (sendTotal > send.numel() || recvTotal > recv.numel()) {
      throw new IllegalArgumentException(
          "allToAll: counts add to "
              + sendTotal
              + " sent and "
              + recvTotal
              + " received but the buffers hold "
              + send.numel()
              + " and "
              + recv.numel());
    }
    return new long[] {sendTotal, recvTotal};
  }

  /** Waits until every rank has arrived. */
  void barrier();

  @Override
  void close();
}
