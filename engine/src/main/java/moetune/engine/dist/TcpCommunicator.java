package moetune.engine.dist;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import moetune.engine.backend.Communicator;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * Ranks as processes (one host or several) exchanging host copies of their tensors over TCP: the
 * communicator of a CPU run started with {@code moetune train --gpus N --device cpu} or by torchrun
 * with {@code --device cpu}, so the whole multi-process path (launch, rendezvous, data sharding,
 * ZeRO, checkpoints) runs on a machine without GPUs. It is a correctness path, not a fast one.
 *
 * <p>A star through rank 0, the way a parameter server is: every collective sends each rank's input
 * to rank 0, which computes every rank's output exactly as {@link LocalCommunicator} does (sums in
 * rank order 0..N-1 in float32, double for host scalars) and sends it back. So a process group and
 * an in-process group of the same size give bit-identical results.
 *
 * <p>Failure: a rank that dies closes its socket; rank 0 then fails its collective with a line
 * naming the rank, exits, and closes the others' sockets, so no rank waits forever. A mismatch
 * (different collectives or sizes on two ranks) is found on rank 0 and sent to every rank as the
 * same one-line error.
 */
public final class TcpCommunicator implements Communicator {
  private static final int MAGIC = 0x6d746370; // "mtcp"
  private static final int OK = 0;
  private static final int FAILED = 1;

  private enum Op {
    ALL_REDUCE,
    ALL_REDUCE_HOST,
    REDUCE_SCATTER,
    ALL_GATHER,
    ALL_TO_ALL,
    BARRIER
  }

  private final int rank;
  private final int size;
  private final Socket[] sockets; // rank 0: one per other rank (index = rank); others: [0] only
  private final DataInputStream[] in;
  private final DataOutputStream[] out;
  private int lastPeer; // rank 0: the rank it last talked to (named when the connection breaks)

  private TcpCommunicator(int rank, int size, Socket[] sockets) throws IOException {
    this.rank = rank;
    this.size = size;
    this.sockets = sockets;
    this.in = new DataInputStream[sockets.length];
    this.out = new DataOutputStream[sockets.length];
    for (int i = 0; i < sockets.length; i++) {
      if (sockets[i] != null) {
        sockets[i].setTcpNoDelay(true);
        sockets[i].setSoTimeout(0); // a step may take minutes; a dead peer closes the socket
        in[i] = new DataInputStream(new BufferedInputStream(sockets[i].getInputStream(), 1 << 16));
        out[i] =
            new DataOutputStream(new BufferedOutputStream(sockets[i].getOutputStream(), 1 << 16));
      }
    }
  }

  /**
   * Joins the group the launch environment describes: rank 0 listens on MASTER_PORT, every other
   * rank connects to MASTER_ADDR:MASTER_PORT (retrying until rank 0 listens), all within {@code
   * timeoutMillis}. A wrong WORLD_SIZE or a duplicate RANK fails with one line.
   */
  public static TcpCommunicator connect(LaunchEnv env, long timeoutMillis) throws IOException {
    int size = env.worldSize();
    if (size == 1) {
      return new TcpCommunicator(0, 1, new Socket[0]);
    }
    return env.rank() == 0 ? serve(env, timeoutMillis) : join(env, timeoutMillis);
  }

  private static TcpCommunicator serve(LaunchEnv env, long timeoutMillis) throws IOException {
    int size = env.worldSize();
    long deadline = System.currentTimeMillis() + timeoutMillis;
    Socket[] peers = new Socket[size];
    int arrived = 0;
    boolean ok = false;
    try (ServerSocket server = new ServerSocket()) {
      server.setReuseAddress(true);
      server.bind(new InetSocketAddress(env.masterPort()));
      while (arrived < size - 1) {
        int left = (int) Math.max(1, deadline - System.currentTimeMillis());
        server.setSoTimeout(left);
        Socket s;
        try {
          s = server.accept();
        } catch (SocketTimeoutException e) {
          throw new IOException(
              "process group on port "
                  + env.masterPort()
                  + ": only "
                  + arrived
                  + " of "
                  + (size - 1)
                  + " other ranks arrived in "
                  + timeoutMillis / 1000
                  + " s; check WORLD_SIZE, MASTER_ADDR and that every rank was started");
        }
        s.setSoTimeout(left);
        DataInputStream din = new DataInputStream(s.getInputStream());
        int magic = din.readInt();
        int r = din.readInt();
        int theirSize = din.readInt();
        String problem =
            magic != MAGIC
                ? "a connection that is not a moetune rank"
                : theirSize != size
                    ? "rank " + r + " says WORLD_SIZE=" + theirSize + " but rank 0 has " + size
                    : r < 1 || r >= size
                        ? "rank " + r + " is outside WORLD_SIZE=" + size
                        : peers[r] != null ? "rank " + r + " checked in twice" : null;
        if (problem != null) {
          s.close();
          throw new IOException(
              "process group on port "
                  + env.masterPort()
                  + ": "
                  + problem
                  + "; give every process the same WORLD_SIZE and its own RANK from 0 to"
                  + " WORLD_SIZE-1");
        }
        peers[r] = s;
        arrived++;
      }
      for (int r = 1; r < size; r++) {
        DataOutputStream dout = new DataOutputStream(peers[r].getOutputStream());
        dout.writeInt(OK);
        dout.flush();
      }
      TcpCommunicator c = new TcpCommunicator(0, size, peers);
      ok = true;
      return c;
    } finally {
      if (!ok) {
        for (Socket s : peers) {
          if (s != null) {
            s.close();
          }
        }
      }
    }
  }

  private static TcpCommunicator join(LaunchEnv env, long timeoutMillis) throws IOException {
    return RankZeroLink.connect(
        env,
        timeoutMillis,
        "process group",
        (s, din, dout) -> {
          dout.writeInt(MAGIC);
          dout.writeInt(env.rank());
          dout.writeInt(env.worldSize());
          dout.flush();
          if (din.readInt() != OK) {
            throw new IOException("process group: rank 0 refused rank " + env.rank());
          }
          return new TcpCommunicator(env.rank(), env.worldSize(), new Socket[] {s});
        });
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
    float[] mine = read(x);
    float[] sum;
    if (rank == 0) {
      float[][] all = gather(Op.ALL_REDUCE, mine, null);
      String bad = sameLengths(all, "allReduceSum");
      sum = new float[mine.length];
      if (bad == null) {
        for (float[] a : all) {
          for (int i = 0; i < sum.length; i++) {
            sum[i] += a[i];
          }
        }
      }
      for (int r = 1; r < size; r++) {
        reply(r, bad, sum);
      }
      fail(bad);
    } else {
      sum = exchange(Op.ALL_REDUCE, mine, null);
    }
    write(sum, x);
  }

  @Override
  public void allReduceSum(double[] values) {
    if (size == 1) {
      return;
    }
    try {
      if (rank == 0) {
        double[][] all = new double[size][];
        all[0] = values.clone();
        for (int r = 1; r < size; r++) {
          lastPeer = r;
          expect(r, Op.ALL_REDUCE_HOST);
          all[r] = new double[in[r].readInt()];
          for (int i = 0; i < all[r].length; i++) {
            all[r][i] = in[r].readDouble();
          }
        }
        String bad = null;
        for (int r = 1; r < size && bad == null; r++) {
          if (all[r].length != values.length) {
            bad = lengths("allReduceSum", r, all[r].length, values.length);
          }
        }
        double[] sum = new double[values.length];
        if (bad == null) {
          for (double[] a : all) {
            for (int i = 0; i < sum.length; i++) {
              sum[i] += a[i];
            }
          }
        }
        for (int r = 1; r < size; r++) {
          lastPeer = r;
          status(r, bad);
          if (bad == null) {
            for (double v : sum) {
              out[r].writeDouble(v);
            }
          }
          out[r].flush();
        }
        fail(bad);
        System.arraycopy(sum, 0, values, 0, sum.length);
      } else {
        out[0].writeInt(Op.ALL_REDUCE_HOST.ordinal());
        out[0].writeInt(values.length);
        for (double v : values) {
          out[0].writeDouble(v);
        }
        out[0].flush();
        fail(readStatus());
        for (int i = 0; i < values.length; i++) {
          values[i] = in[0].readDouble();
        }
      }
    } catch (IOException e) {
      throw broken("allReduceSum", rank == 0 ? lastPeer : 0, e);
    }
  }

  @Override
  public void reduceScatterSum(Tensor in, Tensor out) {
    long n = out.numel();
    if (in.numel() != n * size) {
      throw new IllegalArgumentException(
          "reduceScatterSum: in has "
              + in.numel()
              + " elements, need size * out = "
              + size
              + " * "
              + n);
    }
    float[] mine = read(in);
    float[] result;
    if (rank == 0) {
      float[][] all = gather(Op.REDUCE_SCATTER, mine, null);
      String bad = sameLengths(all, "reduceScatterSum");
      float[][] chunks = new float[size][(int) n];
      if (bad == null) {
        for (int q = 0; q < size; q++) {
          int base = (int) (q * n);
          for (float[] a : all) { // rank order, as LocalCommunicator
            for (int i = 0; i < n; i++) {
              chunks[q][i] += a[base + i];
            }
          }
        }
      }
      for (int r = 1; r < size; r++) {
        reply(r, bad, chunks[r]);
      }
      fail(bad);
      result = chunks[0];
    } else {
      result = exchange(Op.REDUCE_SCATTER, mine, null);
    }
    write(result, out);
  }

  @Override
  public void allGather(Tensor in, Tensor out) {
    long n = in.numel();
    if (out.numel() != n * size) {
      throw new IllegalArgumentException(
          "allGather: out has " + out.numel() + " elements, need size * in = " + size + " * " + n);
    }
    float[] mine = read(in);
    float[] cat;
    if (rank == 0) {
      float[][] all = gather(Op.ALL_GATHER, mine, null);
      String bad = sameLengths(all, "allGather");
      cat = new float[(int) out.numel()];
      if (bad == null) {
        for (int r = 0; r < size; r++) {
          System.arraycopy(all[r], 0, cat, (int) (r * n), (int) n);
        }
      }
      for (int r = 1; r < size; r++) {
        reply(r, bad, cat);
      }
      fail(bad);
    } else {
      cat = exchange(Op.ALL_GATHER, mine, null);
    }
    write(cat, out);
  }

  @Override
  public void allToAll(Tensor send, long[] sendCounts, Tensor recv, long[] recvCounts) {
    long[] totals = Communicator.checkAllToAll(size, send, sendCounts, recv, recvCounts);
    long sendTotal = totals[0], recvTotal = totals[1];
    float[] mine = sendTotal == 0 ? new float[0] : read(send.view(0, sendTotal));
    long[] counts = new long[2 * size]; // send counts, then receive counts
    System.arraycopy(sendCounts, 0, counts, 0, size);
    System.arraycopy(recvCounts, 0, counts, size, size);
    float[] got;
    if (rank == 0) {
      long[][] allCounts = new long[size][];
      float[][] all = gather(Op.ALL_TO_ALL, mine, allCounts);
      allCounts[0] = counts;
      String bad = null;
      float[][] routed = new float[size][];
      for (int d = 0; d < size && bad == null; d++) {
        long total = 0;
        for (int j = 0; j < size; j++) {
          total += allCounts[d][size + j];
        }
        routed[d] = new float[(int) total];
        int at = 0;
        for (int j = 0; j < size && bad == null; j++) {
          long theirs = allCounts[j][d];
          long expected = allCounts[d][size + j];
          if (theirs != expected) {
            bad =
                "allToAll: rank "
                    + d
                    + " expects "
                    + expected
                    + " elements from rank "
                    + j
                    + ", which sends "
                    + theirs;
            break;
          }
          long from = 0;
          for (int q = 0; q < d; q++) {
            from += allCounts[j][q];
          }
          System.arraycopy(all[j], (int) from, routed[d], at, (int) theirs);
          at += (int) theirs;
        }
      }
      for (int r = 1; r < size; r++) {
        reply(r, bad, bad == null ? routed[r] : new float[0]);
      }
      fail(bad);
      got = routed[0];
    } else {
      got = exchange(Op.ALL_TO_ALL, mine, counts);
    }
    if (recvTotal > 0) {
      write(got, recv.view(0, recvTotal));
    }
  }

  @Override
  public void barrier() {
    if (size == 1) {
      return;
    }
    try {
      if (rank == 0) {
        for (int r = 1; r < size; r++) {
          lastPeer = r;
          expect(r, Op.BARRIER);
        }
        for (int r = 1; r < size; r++) {
          lastPeer = r;
          status(r, null);
          out[r].flush();
        }
      } else {
        out[0].writeInt(Op.BARRIER.ordinal());
        out[0].flush();
        fail(readStatus());
      }
    } catch (IOException e) {
      throw broken("barrier", rank == 0 ? lastPeer : 0, e);
    }
  }

  @Override
  public void close() {
    for (Socket s : sockets) {
      if (s != null) {
        try {
          s.close();
        } catch (IOException e) {
          // closing: nothing left to tell the peer
        }
      }
    }
  }

  /** Rank 0: every rank's floats (and counts) for op, its own in slot 0. */
  private float[][] gather(Op op, float[] mine, long[][] counts) {
    float[][] all = new float[size][];
    all[0] = mine;
    for (int r = 1; r < size; r++) {
      try {
        expect(r, op);
        if (counts != null) {
          counts[r] = new long[2 * size];
          for (int i = 0; i < counts[r].length; i++) {
            counts[r][i] = in[r].readLong();
          }
        }
        all[r] = readFloats(in[r]);
      } catch (IOException e) {
        throw broken(name(op), r, e);
      }
    }
    return all;
  }

  /** Other ranks: send this rank's floats (and counts) for op to rank 0 and read the result. */
  private float[] exchange(Op op, float[] mine, long[] counts) {
    try {
      out[0].writeInt(op.ordinal());
      if (counts != null) {
        for (long c : counts) {
          out[0].writeLong(c);
        }
      }
      writeFloats(out[0], mine);
      out[0].flush();
      fail(readStatus());
      return readFloats(in[0]);
    } catch (IOException e) {
      throw broken(name(op), 0, e);
    }
  }

  private void reply(int r, String bad, float[] values) {
    try {
      status(r, bad);
      if (bad == null) {
        writeFloats(out[r], values);
      }
      out[r].flush();
    } catch (IOException e) {
      throw broken("reply to rank " + r, r, e);
    }
  }

  private void expect(int r, Op op) throws IOException {
    int got;
    try {
      got = in[r].readInt();
    } catch (EOFException e) {
      throw new GroupBrokenException(
          name(op)
              + ": rank "
              + r
              + " left the group (its process ended or its connection broke); its own output"
              + " says why",
          e);
    }
    if (got != op.ordinal()) {
      String theirs = got >= 0 && got < Op.values().length ? name(Op.values()[got]) : "#" + got;
      String line =
          "collectives out of step: rank 0 called "
              + name(op)
              + " while rank "
              + r
              + " called "
              + theirs;
      for (int q = 1; q < size; q++) {
        try {
          status(q, line);
          out[q].flush();
        } catch (IOException ignored) {
          // that rank is gone too; rank 0 fails below either way
        }
      }
      throw new IllegalStateException(line);
    }
  }

  private void status(int r, String bad) throws IOException {
    if (bad == null) {
      out[r].writeInt(OK);
    } else {
      out[r].writeInt(FAILED);
      out[r].writeUTF(bad);
    }
  }

  /** Other ranks: rank 0's status, null when OK, else the line it sent. */
  private String readStatus() throws IOException {
    int s = in[0].readInt();
    return s == OK ? null : in[0].readUTF();
  }

  private static void fail(String bad) {
    if (bad != null) {
      throw new IllegalArgumentException(bad);
    }
  }

  private String sameLengths(float[][] all, String what) {
    for (int r = 1; r < all.length; r++) {
      if (all[r].length != all[0].length) {
        return lengths(what, r, all[r].length, all[0].length);
      }
    }
    return null;
  }

  private static String lengths(String what, int r, long theirs, long mine) {
    return what + ": rank " + r + " passed " + theirs + " elements, rank 0 " + mine;
  }

  private RuntimeException broken(String what, int peer, IOException e) {
    return new GroupBrokenException(
        what
            + ": rank "
            + rank
            + " lost its connection to rank "
            + peer
            + " (that process ended; its own output says why)",
        e);
  }

  private static String name(Op op) {
    return switch (op) {
      case ALL_REDUCE, ALL_REDUCE_HOST -> "allReduceSum";
      case REDUCE_SCATTER -> "reduceScatterSum";
      case ALL_GATHER -> "allGather";
      case ALL_TO_ALL -> "allToAll";
      case BARRIER -> "barrier";
    };
  }

  private static void writeFloats(DataOutputStream o, float[] v) throws IOException {
    o.writeInt(v.length);
    ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(v);
    o.write(b.array());
  }

  private static float[] readFloats(DataInputStream i) throws IOException {
    int n = i.readInt();
    byte[] bytes = new byte[4 * n];
    i.readFully(bytes);
    float[] v = new float[n];
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(v);
    return v;
  }

  private static float[] read(Tensor t) {
    return t.backend().download(t).toFloatArray();
  }

  private static void write(float[] values, Tensor dst) {
    dst.backend().copyFromHost(HostTensor.ofFloats(dst.dtype(), values, dst.shape()), dst);
  }
}
