package moetune.engine.dist;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Phaser;
import moetune.engine.backend.Communicator;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * Ranks as threads of one process, exchanging host copies of their tensors: the CPU twin of {@code
 * NcclCommunicator} with the same call semantics, so data and expert parallel logic runs in CI. Any
 * backend works (tensors go through {@code download} / {@code copyFromHost}); it is meant for tests
 * and the CPU, not for speed.
 *
 * <p>Every collective is two barrier phases: each rank publishes its input in its slot, waits for
 * all, computes its own output from the slots, waits again (so no slot is overwritten while another
 * rank still reads it). Sums run in rank order 0..N-1 in float32 (double for host scalars), so the
 * result is deterministic and identical on every rank. If a rank fails inside a collective the
 * barrier is broken and every other rank's collective throws instead of waiting forever.
 */
public final class LocalCommunicator implements Communicator {

  /** The state the ranks of one group share. */
  public static final class Group {
    private final int size;
    private final Phaser barrier; // terminated for good when a rank fails
    private final Object[] slots;

    public Group(int size) {
      if (size < 1) {
        throw new IllegalArgumentException("LocalCommunicator: group size " + size + " < 1");
      }
      this.size = size;
      this.barrier = new Phaser(size);
      this.slots = new Object[size];
    }

    public int size() {
      return size;
    }

    /** The communicator of one rank of this group. */
    public LocalCommunicator rank(int rank) {
      if (rank < 0 || rank >= size) {
        throw new IllegalArgumentException(
            "LocalCommunicator: rank " + rank + " outside a group of " + size);
      }
      return new LocalCommunicator(this, rank);
    }
  }

  /** The work of one rank. */
  @FunctionalInterface
  public interface RankTask<T> {
    T run(LocalCommunicator comm) throws Exception;
  }

  /**
   * Runs task on n threads, one per rank of a fresh group, and returns their results by rank. The
   * first failure is rethrown (the others' collectives fail fast on the broken barrier).
   */
  public static <T> List<T> run(int n, RankTask<T> task) {
    Group g = new Group(n);
    ExecutorService pool = Executors.newFixedThreadPool(n);
    try {
      List<Future<T>> futures = new ArrayList<>();
      for (int r = 0; r < n; r++) {
        LocalCommunicator c = g.rank(r);
        futures.add(
            pool.submit(
                () -> {
                  try {
                    return task.run(c);
                  } catch (Throwable t) {
                    g.barrier.forceTermination(); // wakes and fails every rank's collective
                    throw t;
                  }
                }));
      }
      List<T> out = new ArrayList<>();
      Throwable first = null;
      for (Future<T> f : futures) {
        try {
          out.add(f.get());
        } catch (ExecutionException e) {
          Throwable cause = e.getCause();
          // a rank that failed only because another broke the barrier is not the cause
          if (first == null || first instanceof CollectiveAborted) {
            first = cause;
          }
          out.add(null);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IllegalStateException("interrupted while waiting for the ranks", e);
        }
      }
      if (first instanceof RuntimeException re) {
        throw re;
      }
      if (first instanceof Error err) {
        throw err;
      }
      if (first != null) {
        throw new IllegalStateException("a rank failed: " + first, first);
      }
      return out;
    } finally {
      pool.shutdownNow();
    }
  }

  /** Thrown in a rank whose collective was aborted because another rank failed. */
  public static final class CollectiveAborted extends RuntimeException {
    CollectiveAborted(String what, Throwable cause) {
      super(what + ": another rank failed or left the group", cause);
    }
  }

  private final Group group;
  private final int rank;

  private LocalCommunicator(Group group, int rank) {
    this.group = group;
    this.rank = rank;
  }

  @Override
  public int rank() {
    return rank;
  }

  @Override
  public int size() {
    return group.size;
  }

  @Override
  public void allReduceSum(Tensor x) {
    float[] mine = read(x);
    float[][] all = exchange(mine, "allReduceSum");
    float[] sum = new float[mine.length];
    for (int r = 0; r < all.length; r++) {
      check(all[r].length == mine.length, "allReduceSum", r, all[r].length, mine.length);
      for (int i = 0; i < sum.length; i++) {
        sum[i] += all[r][i];
      }
    }
    done("allReduceSum");
    write(sum, x);
  }

  @Override
  public void allReduceSum(double[] values) {
    double[] mine = values.clone();
    publish(mine, "allReduceSum");
    double[] sum = new double[mine.length];
    for (int r = 0; r < group.size; r++) {
      double[] o = (double[]) group.slots[r];
      check(o.length == mine.length, "allReduceSum", r, o.length, mine.length);
      for (int i = 0; i < sum.length; i++) {
        sum[i] += o[i];
      }
    }
    done("allReduceSum");
    System.arraycopy(sum, 0, values, 0, sum.length);
  }

  @Override
  public void reduceScatterSum(Tensor in, Tensor out) {
    long n = out.numel();
    if (in.numel() != n * group.size) {
      throw new IllegalArgumentException(
          "reduceScatterSum: in has "
              + in.numel()
              + " elements, need size * out = "
              + group.size
              + " * "
              + n);
    }
    float[][] all = exchange(read(in), "reduceScatterSum");
    float[] sum = new float[(int) n];
    int base = (int) (rank * n);
    for (float[] a : all) {
      for (int i = 0; i < n; i++) {
        sum[i] += a[base + i];
      }
    }
    done("reduceScatterSum");
    write(sum, out);
  }

  @Override
  public void allGather(Tensor in, Tensor out) {
    long n = in.numel();
    if (out.numel() != n * group.size) {
      throw new IllegalArgumentException(
          "allGather: out has "
              + out.numel()
              + " elements, need size * in = "
              + group.size
              + " * "
              + n);
    }
    float[][] all = exchange(read(in), "allGather");
    float[] cat = new float[(int) out.numel()];
    for (int r = 0; r < all.length; r++) {
      check(all[r].length == n, "allGather", r, all[r].length, n);
      System.arraycopy(all[r], 0, cat, (int) (r * n), (int) n);
    }
    done("allGather");
    write(cat, out);
  }

  @Override
  public void allToAll(Tensor send, long[] sendCounts, Tensor recv, long[] recvCounts) {
    int p = group.size;
    long[] totals = Communicator.checkAllToAll(p, send, sendCounts, recv, recvCounts);
    long sendTotal = totals[0], recvTotal = totals[1];
    float[] mine = sendTotal == 0 ? new float[0] : read(send.view(0, sendTotal));
    publish(new Object[] {mine, sendCounts.clone()}, "allToAll");
    float[] got = new float[(int) recvTotal];
    int at = 0;
    for (int j = 0; j < p; j++) {
      Object[] o = (Object[]) group.slots[j];
      float[] theirs = (float[]) o[0];
      long[] theirCounts = (long[]) o[1];
      if (theirCounts[rank] != recvCounts[j]) {
        throw new IllegalArgumentException(
            "allToAll: rank "
                + rank
                + " expects "
                + recvCounts[j]
                + " elements from rank "
                + j
                + ", which sends "
                + theirCounts[rank]);
      }
      long from = 0;
      for (int q = 0; q < rank; q++) {
        from += theirCounts[q];
      }
      System.arraycopy(theirs, (int) from, got, at, (int) recvCounts[j]);
      at += (int) recvCounts[j];
    }
    done("allToAll");
    if (recvTotal > 0) {
      write(got, recv.view(0, recvTotal));
    }
  }

  @Override
  public void barrier() {
    await("barrier");
  }

  @Override
  public void close() {}

  private float[][] exchange(float[] mine, String what) {
    publish(mine, what);
    float[][] all = new float[group.size][];
    for (int r = 0; r < group.size; r++) {
      all[r] = (float[]) group.slots[r];
    }
    return all;
  }

  private void publish(Object mine, String what) {
    group.slots[rank] = mine; // visible to the others after the barrier (happens-before)
    await(what);
  }

  private void done(String what) {
    await(what);
  }

  private void await(String what) {
    // termination is sticky, so a rank that arrives after another failed cannot wait forever
    if (group.barrier.arriveAndAwaitAdvance() < 0) {
      throw new CollectiveAborted(what, null);
    }
  }

  private static void check(boolean ok, String what, int r, long theirs, long mine) {
    if (!ok) {
      throw new IllegalArgumentException(
          what + ": rank " + r + " passed " + theirs + " elements, this rank " + mine);
    }
  }

  private static float[] read(Tensor t) {
    return t.backend().download(t).toFloatArray();
  }

  private static void write(float[] values, Tensor dst) {
    dst.backend().copyFromHost(HostTensor.ofFloats(dst.dtype(), values, dst.shape()), dst);
  }
}
