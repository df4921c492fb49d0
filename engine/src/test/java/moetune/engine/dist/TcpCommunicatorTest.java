package moetune.engine.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import moetune.engine.backend.Communicator;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The TCP process-group communicator (ranks as threads here, each with its own sockets) against the
 * in-process {@link LocalCommunicator}: the same collectives on the same inputs give bit-identical
 * outputs, since both sum in rank order; and its failures are one line.
 */
class TcpCommunicatorTest {

  interface Task {
    float[][] run(Communicator comm, CpuBackend be) throws Exception;
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  /** Runs task on n ranks of a fresh TCP group (threads), results by rank. */
  static List<float[][]> runTcp(int n, Task task) throws Exception {
    int port = freePort();
    ExecutorService pool = Executors.newFixedThreadPool(n);
    try {
      List<Future<float[][]>> fs = new ArrayList<>();
      for (int r = 0; r < n; r++) {
        LaunchEnv env = new LaunchEnv(n, r, r, "127.0.0.1", port);
        fs.add(
            pool.submit(
                () -> {
                  try (TcpCommunicator c = TcpCommunicator.connect(env, 20_000);
                      CpuBackend be = new CpuBackend(1)) {
                    return task.run(c, be);
                  }
                }));
      }
      List<float[][]> out = new ArrayList<>();
      for (Future<float[][]> f : fs) {
        out.add(f.get(60, TimeUnit.SECONDS));
      }
      return out;
    } finally {
      pool.shutdownNow();
    }
  }

  static List<float[][]> runLocal(int n, Task task) {
    return LocalCommunicator.run(
        n,
        c -> {
          try (CpuBackend be = new CpuBackend(1)) {
            return task.run(c, be);
          }
        });
  }

  /** Values with rounding in their sums (not exact like LocalCommunicatorTest's). */
  static float[] noisy(int r, int n) {
    java.util.Random rnd = new java.util.Random(31L * r + n);
    float[] x = new float[n];
    for (int i = 0; i < n; i++) x[i] = (float) (rnd.nextGaussian() * Math.pow(10, i % 7 - 3));
    return x;
  }

  static final Task EVERY_COLLECTIVE =
      (comm, be) -> {
        int n = comm.size(), r = comm.rank(), len = 11;
        Tensor x = be.upload(HostTensor.ofFloats(noisy(r, len * n), len * n));
        Tensor rs = be.zeros(DType.F32, len);
        comm.reduceScatterSum(x, rs);
        Tensor ag = be.zeros(DType.F32, len * n);
        comm.allGather(be.upload(HostTensor.ofFloats(noisy(r + 7, len), len)), ag);
        comm.allReduceSum(x);
        // in place: own chunk of the input / output
        Tensor y = be.upload(HostTensor.ofFloats(noisy(r + 3, len * n), len * n));
        comm.reduceScatterSum(y, y.view(r * (long) len, len));
        double[] h = {r + 0.1, 1e-17 * (r + 1), 3};
        comm.allReduceSum(h);
        // uneven all-to-all: rank r sends (r + j) % 3 elements to rank j (some empty)
        long[] send = new long[n], recv = new long[n];
        long st = 0;
        for (int j = 0; j < n; j++) {
          send[j] = (r + j) % 3;
          recv[j] = (j + r) % 3;
          st += send[j];
        }
        Tensor s = be.upload(HostTensor.ofFloats(noisy(r + 11, (int) st + 1), st + 1));
        Tensor d = be.zeros(DType.F32, 3L * n + 2);
        comm.allToAll(s, send, d, recv);
        comm.barrier();
        return new float[][] {
          be.download(x).toFloatArray(),
          be.download(rs).toFloatArray(),
          be.download(ag).toFloatArray(),
          be.download(y).toFloatArray(),
          {(float) h[0], (float) (h[1] * 1e17), (float) h[2]},
          be.download(d).toFloatArray()
        };
      };

  @ParameterizedTest
  @ValueSource(ints = {1, 2, 3, 4})
  void bitEqualToTheInProcessGroup(int n) throws Exception {
    List<float[][]> tcp = runTcp(n, EVERY_COLLECTIVE);
    List<float[][]> local = runLocal(n, EVERY_COLLECTIVE);
    for (int r = 0; r < n; r++) {
      for (int k = 0; k < local.get(r).length; k++) {
        assertArrayEquals(local.get(r)[k], tcp.get(r)[k], "rank " + r + ", result " + k);
      }
    }
    if (n > 1) {
      // not a trivial agreement: rank 1's reduce-scatter chunk is the sum of the ranks' chunk 1
      float[] sum = new float[11];
      for (int q = 0; q < n; q++) {
        float[] v = noisy(q, 11 * n);
        for (int i = 0; i < 11; i++) sum[i] += v[11 + i];
      }
      assertArrayEquals(sum, tcp.get(1)[1]);
    }
  }

  @Test
  void mismatchedCountsAreOneLineOnEveryRank() throws Exception {
    Task t =
        (comm, be) -> {
          Tensor s = be.zeros(DType.F32, 4);
          Tensor d = be.zeros(DType.F32, 4);
          long[] recv = comm.rank() == 0 ? new long[] {1, 2} : new long[] {1, 1};
          try {
            comm.allToAll(s, new long[] {1, 1}, d, recv);
          } catch (IllegalArgumentException e) {
            return new float[][] {{1}, toFloats(e.getMessage())};
          }
          return new float[][] {{0}};
        };
    List<float[][]> got = runTcp(2, t);
    for (int r = 0; r < 2; r++) {
      assertEquals(1f, got.get(r)[0][0], "rank " + r + " failed");
      assertEquals(
          "allToAll: rank 0 expects 2 elements from rank 1, which sends 1",
          fromFloats(got.get(r)[1]));
    }
  }

  @Test
  void collectivesOutOfStepAreNamed() throws Exception {
    Task t =
        (comm, be) -> {
          try {
            if (comm.rank() == 0) {
              comm.barrier();
            } else {
              comm.allReduceSum(new double[] {1});
            }
          } catch (RuntimeException e) {
            return new float[][] {toFloats(e.getMessage())};
          }
          return new float[][] {new float[0]};
        };
    List<float[][]> got = runTcp(2, t);
    for (int r = 0; r < 2; r++) {
      assertEquals(
          "collectives out of step: rank 0 called barrier while rank 1 called allReduceSum",
          fromFloats(got.get(r)[0]),
          "rank " + r);
    }
  }

  @Test
  void aRankThatLeavesFailsRankZeroWithItsNumber() throws Exception {
    Task t =
        (comm, be) -> {
          if (comm.rank() == 1) {
            comm.close(); // as a process that died
            return new float[0][];
          }
          try {
            comm.barrier();
          } catch (IllegalStateException e) {
            return new float[][] {toFloats(e.getMessage())};
          }
          return new float[][] {new float[0]};
        };
    String line = fromFloats(runTcp(2, t).get(0)[0]);
    assertTrue(line.startsWith("barrier: rank 1 left the group"), line);
  }

  @Test
  void wrongWorldSizeAndDuplicateRankAreOneLine() throws Exception {
    int port = freePort();
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      Future<TcpCommunicator> root =
          pool.submit(
              () -> TcpCommunicator.connect(new LaunchEnv(2, 0, 0, "127.0.0.1", port), 20_000));
      Future<TcpCommunicator> other =
          pool.submit(
              () -> TcpCommunicator.connect(new LaunchEnv(3, 1, 1, "127.0.0.1", port), 20_000));
      ExecutionException e =
          assertThrows(ExecutionException.class, () -> root.get(30, TimeUnit.SECONDS));
      assertEquals(
          "process group on port "
              + port
              + ": rank 1 says WORLD_SIZE=3 but rank 0 has 2; give every process the same"
              + " WORLD_SIZE and its own RANK from 0 to WORLD_SIZE-1",
          e.getCause().getMessage());
      assertThrows(ExecutionException.class, () -> other.get(30, TimeUnit.SECONDS));
    } finally {
      pool.shutdownNow();
    }
    IOException timeout =
        assertThrows(
            IOException.class,
            () -> TcpCommunicator.connect(new LaunchEnv(2, 1, 1, "127.0.0.1", freePort()), 500));
    assertTrue(timeout.getMessage().startsWith("process group: rank 1 could not reach rank 0"));
  }

  static float[] toFloats(String s) {
    float[] f = new float[s.length()];
    for (int i = 0; i < f.length; i++) f[i] = s.charAt(i);
    return f;
  }

  static String fromFloats(float[] f) {
    StringBuilder b = new StringBuilder();
    for (float c : f) b.append((char) c);
    return b.toString();
  }
}
