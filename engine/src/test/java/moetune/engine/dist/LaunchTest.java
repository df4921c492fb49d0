package moetune.engine.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/** --devices, the torchrun/SLURM environment and the TCP rendezvous of the NCCL unique id. */
class LaunchTest {

  @Test
  void deviceList() {
    assertEquals(List.of(1, 0, 3), DeviceList.parse("cuda:1, cuda:0,cuda:3", 4));
    assertEquals(
        "--devices cuda:0,gpu1: 'gpu1' is not cuda:N; give the GPUs as cuda:0,cuda:1 (cpu and"
            + " auto are one-device choices for --device)",
        assertThrows(IllegalArgumentException.class, () -> DeviceList.parse("cuda:0,gpu1", 2))
            .getMessage());
    assertEquals(
        "--devices cuda:0,cuda:2: cuda:2 does not exist, this machine has 2 CUDA device(s)"
            + " (cuda:0 to cuda:1)",
        assertThrows(IllegalArgumentException.class, () -> DeviceList.parse("cuda:0,cuda:2", 2))
            .getMessage());
    assertEquals(
        "--devices cuda:1,cuda:1: cuda:1 is listed twice; each GPU takes one rank",
        assertThrows(IllegalArgumentException.class, () -> DeviceList.parse("cuda:1,cuda:1", 2))
            .getMessage());
    assertThrows(IllegalArgumentException.class, () -> DeviceList.parse("cuda:0,", 2));
    assertThrows(IllegalArgumentException.class, () -> DeviceList.parse(" ", 2));
  }

  @Test
  void launchEnvironment() {
    assertNull(LaunchEnv.from(Map.of()), "no WORLD_SIZE: no launcher");
    assertEquals(
        new LaunchEnv(4, 2, 0, "node7", 29500),
        LaunchEnv.from(
            Map.of(
                "WORLD_SIZE",
                "4",
                "RANK",
                "2",
                "LOCAL_RANK",
                "0",
                "MASTER_ADDR",
                "node7",
                "MASTER_PORT",
                "29500")));
    assertEquals(
        "RANK=4 is outside 0..3 (WORLD_SIZE ranks, from 0)",
        assertThrows(
                IllegalArgumentException.class,
                () ->
                    LaunchEnv.from(
                        Map.of(
                            "WORLD_SIZE",
                            "4",
                            "RANK",
                            "4",
                            "MASTER_ADDR",
                            "h",
                            "MASTER_PORT",
                            "1")))
            .getMessage());
    assertTrue(
        assertThrows(
                IllegalArgumentException.class,
                () -> LaunchEnv.from(Map.of("WORLD_SIZE", "2", "RANK", "1")))
            .getMessage()
            .startsWith("WORLD_SIZE=2 but MASTER_ADDR is not set"));
    assertEquals(
        "MASTER_PORT=x is not a whole number",
        assertThrows(
                IllegalArgumentException.class,
                () ->
                    LaunchEnv.from(
                        Map.of(
                            "WORLD_SIZE",
                            "2",
                            "RANK",
                            "0",
                            "MASTER_ADDR",
                            "h",
                            "MASTER_PORT",
                            "x")))
            .getMessage());
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  /** Ranks 1..3 start before rank 0 (they retry); all receive rank 0's id. */
  @Test
  void thePortBesideTorchrunsAgentStoreOrTheOverride() {
    Map<String, String> base =
        Map.of("WORLD_SIZE", "2", "RANK", "1", "MASTER_ADDR", "h0", "MASTER_PORT", "29500");
    assertEquals(29500, LaunchEnv.from(base).masterPort());
    Map<String, String> torchrun = new java.util.HashMap<>(base);
    torchrun.put("TORCHELASTIC_USE_AGENT_STORE", "True");
    assertEquals(29501, LaunchEnv.from(torchrun).masterPort(), "the agent's store has 29500");
    torchrun.put("MOETUNE_MASTER_PORT", "31000");
    assertEquals(31000, LaunchEnv.from(torchrun).masterPort());
    torchrun.put("MOETUNE_MASTER_PORT", "x");
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> LaunchEnv.from(torchrun));
    assertEquals("MOETUNE_MASTER_PORT=x is not a whole number", e.getMessage());
  }

  @Test
  void rendezvousHandsRankZerosIdToEveryRank() throws Exception {
    int port = freePort();
    int world = 4;
    byte[] id = new byte[128];
    for (int i = 0; i < id.length; i++) id[i] = (byte) (i * 7 + 3);
    ExecutorService pool = Executors.newFixedThreadPool(world);
    try {
      List<Future<byte[]>> fs = new ArrayList<>();
      for (int r = world - 1; r >= 0; r--) {
        LaunchEnv env = new LaunchEnv(world, r, r, "127.0.0.1", port);
        fs.add(
            pool.submit(
                () ->
                    Rendezvous.exchange(
                        env,
                        () -> {
                          if (env.rank() != 0) throw new AssertionError("only rank 0 makes it");
                          return id.clone();
                        },
                        20_000)));
        if (r == 1) Thread.sleep(300); // rank 0 comes late
      }
      for (Future<byte[]> f : fs) {
        assertArrayEquals(id, f.get());
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void aDuplicateRankFailsWithOneLine() throws Exception {
    int port = freePort();
    ExecutorService pool = Executors.newFixedThreadPool(3);
    try {
      Future<byte[]> zero =
          pool.submit(
              () ->
                  Rendezvous.exchange(
                      new LaunchEnv(3, 0, 0, "127.0.0.1", port), () -> new byte[128], 20_000));
      for (int i = 0; i < 2; i++) {
        pool.submit(
            () ->
                Rendezvous.exchange(
                    new LaunchEnv(3, 1, 1, "127.0.0.1", port), () -> new byte[128], 5_000));
      }
      ExecutionException e = assertThrows(ExecutionException.class, zero::get);
      assertEquals(
          "rendezvous on port "
              + port
              + ": rank 1 checked in twice; give every process its own RANK from 0 to"
              + " WORLD_SIZE-1",
          e.getCause().getMessage());
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void aMissingRankTimesOutWithOneLine() throws Exception {
    int port = freePort();
    IOException e =
        assertThrows(
            IOException.class,
            () ->
                Rendezvous.exchange(
                    new LaunchEnv(2, 0, 0, "127.0.0.1", port), () -> new byte[128], 500));
    assertTrue(e.getMessage().contains("only 0 of 1 other ranks arrived"), e.getMessage());
  }

  /**
   * The process group and the rendezvous share one connect-and-retry loop ({@link RankZeroLink}):
   * both give the same lines for a rank 0 that never listens and for one that hangs up.
   */
  @Test
  void bothJoinsReachRankZeroThroughOneLoop() throws Exception {
    int port = freePort();
    LaunchEnv one = new LaunchEnv(2, 1, 1, "127.0.0.1", port);
    String unreachable = ": rank 1 could not reach rank 0 at 127.0.0.1:" + port + " in 0 s (";
    IOException r =
        assertThrows(IOException.class, () -> Rendezvous.exchange(one, () -> null, 400));
    assertTrue(r.getMessage().startsWith("rendezvous" + unreachable), r.getMessage());
    IOException t = assertThrows(IOException.class, () -> TcpCommunicator.connect(one, 400));
    assertTrue(t.getMessage().startsWith("process group" + unreachable), t.getMessage());
    // a rank 0 that accepts and closes (it failed): one line at once, no retrying to the deadline
    try (ServerSocket hangsUp = new ServerSocket(port)) {
      Thread closer =
          Thread.ofVirtual()
              .start(
                  () -> {
                    for (int i = 0; i < 2; i++) {
                      try {
                        hangsUp.accept().close();
                      } catch (IOException ignored) {
                        return;
                      }
                    }
                  });
      String closed =
          ": rank 0 at 127.0.0.1:"
              + port
              + " closed the connection of rank 1 (it failed; its own message says why)";
      long t0 = System.nanoTime();
      assertEquals(
          "rendezvous" + closed,
          assertThrows(IOException.class, () -> Rendezvous.exchange(one, () -> null, 20_000))
              .getMessage());
      assertEquals(
          "process group" + closed,
          assertThrows(IOException.class, () -> TcpCommunicator.connect(one, 20_000)).getMessage());
      assertTrue(System.nanoTime() - t0 < 10_000_000_000L, "failed at once, not at the deadline");
      closer.join(5_000);
    }
  }
}
