package moetune.app.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * {@code moetune train --gpus N} (and {@code bench step --gpus N}) on one host: starts N worker
 * processes of this same program (the same java, JVM options and class path), each with the
 * variables torchrun sets (WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1,
 * MASTER_PORT a free port), so a worker is exactly a rank an outside launcher would start. Rank 0
 * keeps the terminal (progress bar, summary); the other ranks print only errors, each line prefixed
 * with its rank.
 *
 * <p>Signals: SIGTERM or Ctrl-C reach the launcher's shutdown hook, which sends SIGTERM to every
 * worker (they agree to stop at the next step boundary and rank 0 writes a checkpoint) and waits
 * for them. A worker that dies with a non-zero status takes the job down: one line naming it, then
 * SIGTERM to the others (killed after a grace period) and status 1.
 */
final class RankLauncher {
  /** Seconds the others get to exit after SIGTERM when a rank died (they fail fast anyway). */
  static final long FAILURE_GRACE_S = 30;

  private final int ranks;
  private final String command; // "train" or "bench step", for its lines
  private final List<String> args; // the command line without --gpus
  private final Map<String, String> extraEnv;
  private final PrintStream err;
  private final double stopGraceSeconds;
  private final List<Process> workers = new ArrayList<>();
  private final List<Thread> printers = new ArrayList<>();
  // ranks in the order their processes ended (the JDK's reaper sees them in order), so the rank
  // that
  // died first is named, not one that failed because it lost that rank
  private final java.util.Queue<Integer> exitOrder =
      new java.util.concurrent.ConcurrentLinkedQueue<>();
  private volatile boolean stopping;

  RankLauncher(
      String command,
      int ranks,
      List<String> args,
      Map<String, String> extraEnv,
      PrintStream err,
      double stopGraceSeconds) {
    this.command = command;
    this.ranks = ranks;
    this.args = List.copyOf(args);
    this.extraEnv = Map.copyOf(extraEnv);
    this.err = err;
    this.stopGraceSeconds = stopGraceSeconds;
  }

  /**
   * The command line a worker of this JVM runs: this java, its options (but a debugger agent, which
   * would clash on its port) and class path, {@code moetune.app.Main} and args.
   */
  static List<String> workerCommand(List<String> args) {
    String java =
        ProcessHandle.current()
            .info()
            .command()
            .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    List<String> cmd = new ArrayList<>();
    cmd.add(java);
    for (String o : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (!o.startsWith("-agentlib:jdwp") && !o.startsWith("-Xrunjdwp")) {
        cmd.add(o);
      }
    }
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add("moetune.app.Main");
    cmd.addAll(args);
    return cmd;
  }

  /** The arguments of a worker: the command line without --gpus (and its value). */
  static List<String> withoutGpus(List<String> original) {
    List<String> out = new ArrayList<>();
    for (int i = 0; i < original.size(); i++) {
      String a = original.get(i);
      if (a.equals("--gpus")) {
        i++; // its value
      } else if (!a.startsWith("--gpus=")) {
        out.add(a);
      }
    }
    return out;
  }

  /** The variables of rank r, as torchrun sets them for one host. */
  static Map<String, String> rankEnv(int ranks, int r, int port) {
    return Map.of(
        "WORLD_SIZE", Integer.toString(ranks),
        "RANK", Integer.toString(r),
        "LOCAL_RANK", Integer.toString(r),
        "LOCAL_WORLD_SIZE", Integer.toString(ranks),
        "MASTER_ADDR", "127.0.0.1",
        "MASTER_PORT", Integer.toString(port));
  }

  /** Starts the workers, waits for them and returns the job's exit status. */
  int run() throws IOException, InterruptedException {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort(); // free now; rank 0 binds it a moment later (as torchrun does)
    }
    Thread hook = new Thread(this::onSignal, "moetune-launcher-stop");
    Runtime.getRuntime().addShutdownHook(hook);
    try {
      List<String> cmd = workerCommand(args);
      for (int r = 0; r < ranks; r++) {
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().putAll(rankEnv(ranks, r, port));
        pb.environment().putAll(extraEnv);
        if (r == 0) {
          pb.inheritIO();
        } else {
          pb.redirectInput(ProcessBuilder.Redirect.INHERIT);
          pb.redirectErrorStream(true);
        }
        Process p = pb.start();
        synchronized (workers) {
          workers.add(p);
        }
        int rank = r;
        p.onExit().thenRun(() -> exitOrder.add(rank));
        if (r > 0) {
          prefixLines(p.getInputStream(), "rank " + r + ": ");
        }
      }
      int status = supervise();
      for (Thread t : printers) {
        t.join(2000); // the last lines of ranks that ended
      }
      return status;
    } finally {
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException e) {
        // shutting down: the hook is running (it waits for the workers)
      }
    }
  }

  /** Waits until every worker ended or one failed; the job's status. */
  private int supervise() throws InterruptedException {
    while (true) {
      boolean allDone = true;
      for (int r : exitOrder) {
        Process p = workers.get(r);
        if (p.exitValue() != 0 && !stopping) {
          err.println(
              "moetune "
                  + command
                  + ": rank "
                  + r
                  + " exited with status "
                  + p.exitValue()
                  + (r == 0 ? "" : " (its lines above start with 'rank " + r + ":')")
                  + "; stopping the other ranks");
          err.flush();
          stopAll(FAILURE_GRACE_S);
          return 1;
        }
      }
      for (Process p : workers) {
        allDone &= !p.isAlive();
      }
      if (allDone && exitOrder.size() == workers.size()) {
        int status = 0;
        for (Process p : workers) {
          status = Math.max(status, p.exitValue());
        }
        return status;
      }
      Thread.sleep(100);
    }
  }

  /** The shutdown hook: forward the stop to every worker and wait for their checkpoint. */
  private void onSignal() {
    stopping = true;
    err.println(
        "moetune " + command + ": stopping the " + ranks + " ranks at the next step boundary");
    err.flush();
    stopAll((long) stopGraceSeconds + FAILURE_GRACE_S);
  }

  /** SIGTERM to every live worker; SIGKILL to those still alive after graceSeconds. */
  private void stopAll(long graceSeconds) {
    List<Process> ps;
    synchronized (workers) {
      ps = List.copyOf(workers);
    }
    for (Process p : ps) {
      if (p.isAlive()) {
        p.destroy(); // SIGTERM: the worker's StopHook stops at the next step boundary
      }
    }
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(graceSeconds);
    for (Process p : ps) {
      try {
        long left = deadline - System.nanoTime();
        if (!p.waitFor(Math.max(0, left), TimeUnit.NANOSECONDS)) {
          p.destroyForcibly();
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        p.destroyForcibly();
      }
    }
  }

  private void prefixLines(InputStream in, String prefix) {
    Thread t =
        new Thread(
            () -> {
              try (BufferedReader r =
                  new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                  err.println(prefix + line);
                }
              } catch (IOException e) {
                // the worker is gone; its status says the rest
              }
            },
            "moetune-" + prefix.strip());
    t.setDaemon(true);
    t.start();
    printers.add(t);
  }
}
