package moetune.engine.dist;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * Hands rank 0's NCCL unique id to every other rank over TCP, as torch.distributed's TCP store does
 * for its own: rank 0 listens on MASTER_ADDR:MASTER_PORT, each other rank connects (retrying until
 * the deadline, since rank 0 may start later), sends a magic word and its rank, and reads the id.
 * Rank 0 answers only after all WORLD_SIZE - 1 ranks, each once, have checked in, so a wrong
 * WORLD_SIZE or a duplicate RANK fails here with one line instead of hanging inside NCCL.
 */
public final class Rendezvous {
  private static final int MAGIC = 0x6d6f6574; // "moet"

  private Rendezvous() {}

  /**
   * The id every rank must pass to ncclCommInitRank: made by {@code makeId} on rank 0, received
   * from rank 0 elsewhere.
   */
  public static byte[] exchange(LaunchEnv env, Supplier<byte[]> makeId, long timeoutMillis)
      throws IOException {
    if (env.worldSize() == 1) {
      return makeId.get();
    }
    return env.rank() == 0 ? serve(env, makeId.get(), timeoutMillis) : fetch(env, timeoutMillis);
  }

  private static byte[] serve(LaunchEnv env, byte[] id, long timeoutMillis) throws IOException {
    long deadline = System.currentTimeMillis() + timeoutMillis;
    boolean[] seen = new boolean[env.worldSize()];
    List<Socket> peers = new ArrayList<>();
    try (ServerSocket server = new ServerSocket()) {
      server.setReuseAddress(true);
      server.bind(new InetSocketAddress(env.masterPort()));
      while (peers.size() < env.worldSize() - 1) {
        int left = (int) Math.max(1, deadline - System.currentTimeMillis());
        server.setSoTimeout(left);
        Socket s;
        try {
          s = server.accept();
        } catch (SocketTimeoutException e) {
          throw new IOException(
              "rendezvous on port "
                  + env.masterPort()
                  + ": only "
                  + peers.size()
                  + " of "
                  + (env.worldSize() - 1)
                  + " other ranks arrived in "
                  + timeoutMillis / 1000
                  + " s; check WORLD_SIZE, MASTER_ADDR and that every rank was started");
        }
        peers.add(s);
        s.setSoTimeout(left);
        DataInputStream in = new DataInputStream(s.getInputStream());
        int magic = in.readInt();
        int rank = in.readInt();
        if (magic != MAGIC || rank < 1 || rank >= env.worldSize() || seen[rank]) {
          throw new IOException(
              "rendezvous on port "
                  + env.masterPort()
                  + ": "
                  + (magic != MAGIC
                      ? "a connection that is not a moetune rank"
                      : "rank "
                          + rank
                          + (rank >= 1 && rank < env.worldSize()
                              ? " checked in twice"
                              : " is outside WORLD_SIZE=" + env.worldSize()))
                  + "; give every process its own RANK from 0 to WORLD_SIZE-1");
        }
        seen[rank] = true;
      }
      for (Socket s : peers) {
        DataOutputStream out = new DataOutputStream(s.getOutputStream());
        out.writeInt(id.length);
        out.write(id);
        out.flush();
      }
      return id;
    } finally {
      for (Socket s : peers) {
        s.close();
      }
    }
  }

  private static byte[] fetch(LaunchEnv env, long timeoutMillis) throws IOException {
    return RankZeroLink.connect(
        env,
        timeoutMillis,
        "rendezvous",
        (s, in, out) -> {
          try (s) {
            out.writeInt(MAGIC);
            out.writeInt(env.rank());
            out.flush();
            int n = in.readInt();
            if (n < 1 || n > 4096) {
              throw new IOException("rendezvous: rank 0 sent an id of " + n + " bytes");
            }
            byte[] id = new byte[n];
            in.readFully(id);
            return id;
          }
        });
  }
}
