package moetune.engine.backend.cuda;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import moetune.engine.dist.Communicator;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * One rank of an NCCL communicator, on one {@link CudaBackend}: every collective is queued on the
 * backend's one stream, so it is ordered with the ops before and after it without a host sync (the
 * host-scalar all-reduce reads back, as the loss does). F32, BF16 and F16 tensors.
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

  @Override
  public void allReduceSum(Tensor x) {
    long p = be.ct(x, "allReduceSum", "x").address();
    be.bind();
    nccl.allReduce(p, p, x.numel(), type(x, "allReduceSum"), comm, be.streamAddress(), ctx(x));
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
    be.bind();
    nccl.allReduce(
        p, p, values.length, 8 /* ncclFloat64 */, comm, be.streamAddress(), "host values");
    ByteBuffer r = be.download(t).bytes().order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < values.length; i++) values[i] = r.getDouble(8 * i);
    if (big) {
      t.close();
    }
  }

  @Override
  public void reduceScatterSum(Tensor in, Tensor out) {
    if (in.numel() != out.numel() * size || in.dtype() != out.dtype()) {
      throw new IllegalArgumentException(
          "reduceScatterSum: in " + in + " must be " + size + " times out " + out);
    }
    long s = be.ct(in, "reduceScatterSum", "in").address(),
        r = be.ct(out, "reduceScatterSum", "out").address();
    be.bind();
    nccl.reduceScatter(
        s, r, out.numel(), type(in, "reduceScatterSum"), comm, be.streamAddress(), ctx(in));
  }

  @Override
  public void allGather(Tensor in, Tensor out) {
    if (out.numel() != in.numel() * size || in.dtype() != out.dtype()) {
      throw new IllegalArgumentException(
          "allGather: out " + out + " must be " + size + " times in " + in);
    }
    long s = be.ct(in, "allGather", "in").address(), r = be.ct(out, "allGather", "out").address();
    be.bind();
    nccl.allGather(s, r, in.numel(), type(in, "allGather"), comm, be.streamAddress(), ctx(out));
  }

  @Override
  public void allToAll(Tensor send, long[] sendCounts, Tensor recv, long[] recvCounts) {
    if (send.dtype() != recv.dtype()) {
      throw new IllegalArgumentException(
          "allToAll: send " + send.dtype() + " and receive " + recv.dtype() + " differ");
    }
    Communicator.checkAllToAll(size, send, sendCounts, recv, recvCounts);
    int t = type(send, "allToAll");
    long es = send.dtype().bytes();
    long s = be.ct(send, "allToAll", "send").address(),
        r = be.ct(recv, "allToAll", "recv").address();
    long stream = be.streamAddress();
    be.bind();
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
  }

  @Override
  public void barrier() {
    double[] one = {1};
    allReduceSum(one); // reads back: every rank has arrived once it returns
  }

  @Override
  public void close() {
    be.synchronize();
    scalars.close();
    nccl.commDestroy(comm);
  }

  private static int type(Tensor t, String op) {
    return switch (t.dtype()) {
      case F32 -> Nccl.FLOAT32;
      case BF16 -> Nccl.BFLOAT16;
      case F16 -> Nccl.FLOAT16;
      default -> throw new IllegalArgumentException(op + ": " + t.dtype() + " is not reduced");
    };
  }

  private static String ctx(Tensor t) {
    return t.describe();
  }
}
