package moetune.engine.dist;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import moetune.engine.backend.Communicator;
import moetune.engine.tensor.Tensor;

/**
 * A communicator whose async collectives run as late as NCCL's side stream may finish them: not
 * when called but at the next {@link #awaitCollectives} (or the next synchronous collective, which
 * NCCL's one stream also runs after them). Code that reads an async collective's output before
 * awaiting it reads the old values here, so its results change; code that writes an async
 * collective's input or output before awaiting it (a race on a GPU) fails here with one line. The
 * CPU stand-in for "the collective overlaps whatever the caller does next", for tests: wrapping a
 * {@link LocalCommunicator} or a {@link TcpCommunicator} keeps their sums, only later.
 */
public final class DeferringCommunicator implements Communicator {
  private record Queued(
      String op, Tensor in, Tensor out, ByteBuffer inAt, ByteBuffer outAt, Runnable run) {}

  private final Communicator inner;
  private final List<Queued> queued = new ArrayList<>();
  private long deferred; // async collectives run late, over the communicator's life

  public DeferringCommunicator(Communicator inner) {
    this.inner = inner;
  }

  /** Async collectives that ran at an await instead of when called. */
  public long deferred() {
    return deferred;
  }

  private static ByteBuffer bytes(Tensor t) {
    return t.backend().download(t).bytes();
  }

  private void queue(String op, Tensor in, Tensor out, Runnable run) {
    queued.add(new Queued(op, in, out, bytes(in), bytes(out), run));
  }

  private void flush() {
    for (Queued q : queued) {
      if (!bytes(q.in()).equals(q.inAt()) || !bytes(q.out()).equals(q.outAt())) {
        throw new IllegalStateException(
            q.op() + ": its input or output was written before awaitCollectives (a race on a GPU)");
      }
      q.run().run();
      deferred++;
    }
    queued.clear();
  }

  @Override
  public int rank() {
    return inner.rank();
  }

  @Override
  public int size() {
    return inner.size();
  }

  @Override
  public void reduceScatterSumAsync(Tensor in, Tensor out) {
    queue("reduceScatterSumAsync", in, out, () -> inner.reduceScatterSum(in, out));
  }

  @Override
  public void allGatherAsync(Tensor in, Tensor out) {
    queue("allGatherAsync", in, out, () -> inner.allGather(in, out));
  }

  @Override
  public void awaitCollectives() {
    flush();
  }

  @Override
  public void allReduceSum(Tensor x) {
    flush();
    inner.allReduceSum(x);
  }

  @Override
  public void allReduceSum(double[] values) {
    flush();
    inner.allReduceSum(values);
  }

  @Override
  public void reduceScatterSum(Tensor in, Tensor out) {
    flush();
    inner.reduceScatterSum(in, out);
  }

  @Override
  public void allGather(Tensor in, Tensor out) {
    flush();
    inner.allGather(in, out);
  }

  @Override
  public void allToAll(Tensor send, long[] sendCounts, Tensor recv, long[] recvCounts) {
    flush();
    inner.allToAll(send, sendCounts, recv, recvCounts);
  }

  @Override
  public void barrier() {
    flush();
    inner.barrier();
  }

  @Override
  public void close() {
    if (!queued.isEmpty()) {
      throw new IllegalStateException(
          queued.size()
              + " async collectives never awaited (the last: "
              + queued.getLast().op()
              + ")");
    }
    inner.close();
  }
}
