package moetune.engine.backend.cuda;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JCudaDriver;
import moetune.engine.backend.Communicator;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * One rank of an NCCL communicator, on one {@link CudaBackend}. F32, BF16 and F16 tensors (I32 for
 * the all-gather and all-to-all, which only move bytes).
 *
 * <p>Streams: every collective runs on this communicator's own stream (created at the highest
 * priority, as NCCL advises, so its kernels are scheduled beside a busy compute stream), after an
 * event recorded on the backend's compute stream when it is called, so it reads what the ops queued
 * before it wrote, and nothing later. The synchronous collectives then make the compute stream wait
 * for an event recorded behind them (ordered with the ops before and after without a host sync; the
 * host-scalar all-reduce reads back, as the loss does). The async ones ({@link
 * #reduceScatterSumAsync}, {@link #allGatherAsync}) skip that wait: the compute stream goes on (the
 * rest of the backward, the next buckets' optimizer step) while the collective runs, until {@link
 * #awaitCollectives}. One stream for all of a communicator's collectives keeps them in call order,
 * the order NCCL needs on every rank.
 *
 * <p>All-to-all with counts is ncclSend/ncclRecv pairs inside ncclGroupStart/End (available in
 * every NCCL 2.7+, where ncclAlltoAll with equal counts is only in recent releases).
 *
 * <p>Create: rank 0 calls {@link Nccl#uniqueId()} and hands the 128 bytes to the others (in memory
 * for one process with a thread per GPU, over {@code moetune.engine.dist.Rendezvous} for one
 * process per GPU); then every rank constructs this on its own thread, where it blocks until all
 * ranks have joined.
 */
public final class NcclCommunicator implements Communicator {
  private final Nccl nccl;
  private final CudaBackend be;
  private final int rank;
  private final int size;
  private final long comm;
  private final Tensor scalars; // I32 (2 * 16): 16 float64 host values for allReduceSum
  private final CUstream side = new CUstream(); // the collectives' stream
  private final CUevent computed = new CUevent(); // recorded on the compute stream
  private final CUevent communicated = new CUevent(); // recorded on the side stream
  private boolean pending; // async collectives the compute stream has not waited for
  private long asyncCalls; // over the communicator's life (evidence for tests)

  public NcclCommunicator(CudaBackend be, int size, int rank, byte[] uniqueId) {
    if (size < 1 || rank < 0 || rank >= size) {
      throw new IllegalArgumentException(
          "NcclCommunicator: rank " + rank + " outside a group of " + size);
    }
    this.nccl = Nccl.get();
    this.be = be;
    this.rank = rank;
    this.size = size;
    be.bind(); // NCCL takes the device from the calling thread's current context
    int[] least = new int[1], greatest = new int[1];
    Driver.check(
        JCudaDriver.cuCtxGetStreamPriorityRange(least, greatest),
        "cuCtxGetStreamPriorityRange",
        "NCCL stream");
    Driver.check(
        JCudaDriver.cuStreamCreateWithPriority(
            side, CUstream_flags.CU_STREAM_NON_BLOCKING, greatest[0]),
        "cuStreamCreateWithPriority",
        "NCCL stream");
    Driver.check(
        JCudaDriver.cuEventCreate(computed, CUevent_flags.CU_EVENT_DISABLE_TIMING),
        "cuEventCreate",
        "NCCL stream");
    Driver.check(
        JCudaDriver.cuEventCreate(communicated, CUevent_flags.CU_EVENT_DISABLE_TIMING),
        "cuEventCreate",
        "NCCL stream");
    this.comm = nccl.commInitRank(size, uniqueId, rank);
    this.scalars = be.zeros(DType.I32, 32);
  }

  @Override
  public int rank() {
    return rank;
  }

  @Override
  public int size() {
    return size;
  }

  /** Async collectives called so far (they ran on the side stream without a wait behind them). */
  public long asyncCalls() {
    return asyncCalls;
  }

  /**
   * The side stream, behind everything queued on the compute stream so far: the stream to queue a
   * collective on.
   */
  private long afterCompute() {
    be.bind();
    Driver.check(JCudaDriver.cuEventRecord(computed, be.stream()), "cuEventRecord", "NCCL stream");
    Driver.check(
        JCudaDriver.cuStreamWaitEvent(side, computed, 0), "cuStreamWaitEvent", "NCCL stream");
    return Driver.address(side);
  }

  /** The compute stream, from here on, behind every collective queued so far. */
  private void computeWaits() {
    Driver.check(JCudaDriver.cuEventRecord(communicated, side), "cuEventRecord", "NCCL stream");
    Driver.check(
        JCudaDriver.cuStreamWaitEvent(be.stream(), communicated, 0),
        "cuStreamWaitEvent",
        "NCCL stream");
    pending = false;
  }

  @Override
  public void awaitCollectives() {
    if (pending) {
      be.bind();
      computeWaits();
    }
  }

  @Override
  public void allReduceSum(Tensor x) {
    long p = be.ct(x, "allReduceSum", "x").address();
    nccl.allReduce(p, p, x.numel(), type(x, "allReduceSum"), comm, afterCompute(), ctx(x));
    computeWaits();
  }

  @Override
  public void allReduceSum(double[] values) {
    if (values.length == 0) {
      return;
    }
    ByteBuffer b = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    for (double v : values) b.putDouble(v);
    b.flip();
    boolean big =
        values.length > 16; // the standing buffer holds 16; more is rare (a plan's counts)
    Tensor t = big ? be.empty(DType.I32, 2L * values.length) : scalars.view(0, 2L * values.length);
    be.copyFromHost(new HostTensor(DType.I32, new long[] {2L * values.length}, b), t);
    long p = be.ct(t, "allReduceSum", "host values").address();
    nccl.allReduce(p, p, values.length, 8 /* ncclFloat64 */, comm, afterCompute(), "host values");
    computeWaits();
    ByteBuffer r = be.download(t).bytes().order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < values.length; i++) values[i] = r.getDouble(8 * i);
    if (big) {
      t.close();
    }
  }

  @Override
  public void reduceScatterSum(Tensor in, Tensor out) {
    queueReduceScatter(in, out);
    computeWaits();
  }

  @Override
  public void reduceScatterSumAsync(Tensor in, Tensor out) {
    queueReduceScatter(in, out);
    pending = true;
    asyncCalls++;
  }

  private void queueReduceScatter(Tensor in, Tensor out) {
    if (in.numel() != out.numel() * size || in.dtype() != out.dtype()) {
      throw new IllegalArgumentException(
          "reduceScatterSum: in " + in + " must be " + size + " times out " + out);
    }
    long s = be.ct(in, "reduceScatterSum", "in").address(),
        r = be.ct(out, "reduceScatterSum", "out").address();
    nccl.reduceScatter(
        s, r, out.numel(), type(in, "reduceScatterSum"), comm, afterCompute(), ctx(in));
  }

  @Override
  public void allGather(Tensor in, Tensor out) {
    queueAllGather(in, out);
    computeWaits();
  }

  @Override
  public void allGatherAsync(Tensor in, Tensor out) {
    queueAllGather(in, out);
    pending = true;
    asyncCalls++;
  }

  private void queueAllGather(Tensor in, Tensor out) {
    if (out.numel() != in.numel() * size || in.dtype() != out.dtype()) {
      throw new IllegalArgumentException(
          "allGather: out " + out + " must be " + size + " times in " + in);
    }
    long s = be.ct(in, "allGather", "in").address(), r = be.ct(out, "allGather", "out").address();
    nccl.allGather(s, r, in.numel(), moved(in, "allGather"), comm, afterCompute(), ctx(out));
  }

  @Override
  public void allToAll(Tensor send, long[] sendCounts, Tensor recv, long[] recvCounts) {
    if (send.dtype() != recv.dtype()) {
      throw new IllegalArgumentException(
          "allToAll: send " + send.dtype() + " and receive " + recv.dtype() + " differ");
    }
    Communicator.checkAllToAll(size, send, sendCounts, recv, recvCounts);
    int t = moved(send, "allToAll");
    long es = send.dtype().bytes();
    long s = be.ct(send, "allToAll", "send").address(),
        r = be.ct(recv, "allToAll", "recv").address();
    long stream = afterCompute();
    nccl.groupStart();
    long so = 0, ro = 0;
    try {
      for (int j = 0; j < size; j++) {
        if (sendCounts[j] > 0) {
          nccl.send(s + so * es, sendCounts[j], t, j, comm, stream, "allToAll");
        }
        if (recvCounts[j] > 0) {
          nccl.recv(r + ro * es, recvCounts[j], t, j, comm, stream, "allToAll");
        }
        so += sendCounts[j];
        ro += recvCounts[j];
      }
    } finally {
      nccl.groupEnd("allToAll");
    }
    computeWaits();
  }

  @Override
  public void barrier() {
    double[] one = {1};
    allReduceSum(one); // reads back: every rank has arrived once it returns
  }

  @Override
  public void close() {
    be.synchronize();
    Driver.check(JCudaDriver.cuStreamSynchronize(side), "cuStreamSynchronize", "NCCL stream");
    scalars.close();
    nccl.commDestroy(comm);
    JCudaDriver.cuEventDestroy(computed);
    JCudaDriver.cuEventDestroy(communicated);
    JCudaDriver.cuStreamDestroy(side);
  }

  /** The NCCL type of a reduced tensor. */
  private static int type(Tensor t, String op) {
    return switch (t.dtype()) {
      case F32 -> Nccl.FLOAT32;
      case BF16 -> Nccl.BFLOAT16;
      case F16 -> Nccl.FLOAT16;
      default -> throw new IllegalArgumentException(op + ": " + t.dtype() + " is not reduced");
    };
  }

  /** The NCCL type of a moved (not reduced) tensor: the reduced ones and I32. */
  private static int moved(Tensor t, String op) {
    return t.dtype() == DType.I32 ? Nccl.INT32 : type(t, op);
  }

  private static String ctx(Tensor t) {
    return t.describe();
  }
}
