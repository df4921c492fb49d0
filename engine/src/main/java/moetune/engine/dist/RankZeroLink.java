package moetune.engine.dist;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;

/**
 * How a rank other than 0 reaches rank 0 over TCP (the process group and the NCCL id rendezvous
 * both): connect to MASTER_ADDR:MASTER_PORT, retrying every 100 ms until the deadline because rank
 * 0 may start later, then run the caller's handshake on the socket with the rest of the deadline as
 * its read timeout. Refused connections and timeouts (rank 0 not listening yet, or listening but
 * not answering in time) are retried; rank 0 closing or resetting the connection mid-handshake is
 * one line at once (it failed and says why itself). Either failure names the rank, rank 0's address
 * and what to check.
 */
final class RankZeroLink {
  private RankZeroLink() {}

  /** The caller's part once connected: write its greeting, read rank 0's answer. */
  interface Handshake<T> {
    T run(Socket socket, DataInputStream in, DataOutputStream out) throws IOException;
  }

  /**
   * The handshake's result over a fresh connection to rank 0; the socket stays open on success (the
   * handshake closes it when it is done with it) and is closed on failure.
   *
   * @param what the message prefix: "process group" or "rendezvous"
   */
  static <T> T connect(LaunchEnv env, long timeoutMillis, String what, Handshake<T> handshake)
      throws IOException {
    long deadline = System.currentTimeMillis() + timeoutMillis;
    IOException last = null;
    while (System.currentTimeMillis() < deadline) {
      Socket s = new Socket();
      boolean ok = false, connected = false;
      try {
        s.connect(new InetSocketAddress(env.masterAddr(), env.masterPort()), 1000);
        connected = true;
        s.setSoTimeout((int) Math.max(1, deadline - System.currentTimeMillis()));
        T result =
            handshake.run(
                s,
                new DataInputStream(s.getInputStream()),
                new DataOutputStream(s.getOutputStream()));
        ok = true;
        return result;
      } catch (java.net.ConnectException | SocketTimeoutException e) {
        last = e; // rank 0 not listening (or answering) yet: retry
        sleep(what);
      } catch (EOFException | java.net.SocketException e) {
        if (!connected) {
          throw e; // no route, unknown host: not rank 0's doing
        }
        throw new IOException(
            what
                + ": rank 0 at "
                + env.masterAddr()
                + ":"
                + env.masterPort()
                + " closed the connection of rank "
                + env.rank()
                + " (it failed; its own message says why)",
            e);
      } finally {
        if (!ok) {
          s.close();
        }
      }
    }
    throw new IOException(
        what
            + ": rank "
            + env.rank()
            + " could not reach rank 0 at "
            + env.masterAddr()
            + ":"
            + env.masterPort()
            + " in "
            + timeoutMillis / 1000
            + " s ("
            + (last == null ? "no attempt" : last.getMessage())
            + "); check MASTER_ADDR and MASTER_PORT and that rank 0 runs",
        last);
  }

  private static void sleep(String what) throws IOException {
    try {
      Thread.sleep(100);
    } catch (InterruptedException ie) {
      Thread.currentThread().interrupt();
      throw new IOException(what + ": interrupted", ie);
    }
  }
}
