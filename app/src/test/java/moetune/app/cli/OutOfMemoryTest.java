package moetune.app.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Running out of memory ends the process with one line of advice and exit code 3, never a hang; a
 * stop signal to a stuck run ends it too. Each case is a real child process.
 */
class OutOfMemoryTest {

  /** A child whose helper thread dies of a real OOM while the main thread waits for it forever. */
  public static final class WorkerDiesMain {
    public static void main(String[] args) throws Exception {
      OutOfMemory.install();
      CountDownLatch never = new CountDownLatch(1);
      Thread worker =
          new Thread(
              () -> {
                List<long[]> hog = new ArrayList<>();
                while (true) {
                  hog.add(new long[1 << 20]);
                }
              },
              "worker");
      worker.start();
      never.await(); // what the training loop did when its pool's thread died
    }
  }

  /** A child "run" whose loop never reaches a step boundary, with the real stop hook. */
  public static final class StuckRunMain {
    public static void main(String[] args) throws Exception {
      new StopHook(() -> {}, Thread.currentThread(), 1.0, System.err).install();
      System.out.println("ready");
      System.out.flush();
      Object lock = new Object();
      synchronized (lock) {
        lock.wait(); // a step that never returns
      }
    }
  }

  @Test
  void anOomInAnotherThreadEndsTheProcessWithAdvice(@TempDir Path tmp) throws Exception {
    ChildProcess c =
        ChildProcess.start(tmp.resolve("log"), List.of("-Xmx64m"), WorkerDiesMain.class.getName());
    int code = c.waitFor(60);
    String out = c.output();
    assertEquals(OutOfMemory.EXIT_CODE, code, out);
    assertTrue(out.contains("moetune: out of memory on the host (Java heap max "), out);
    assertTrue(out.contains("MOETUNE_JAVA_OPTS=-Xmx"), out);
    assertTrue(out.contains("--micro-batch") && out.contains("--max-length"), out);
  }

  @Test
  void aTrainingRunOutOfHeapSaysWhatToLowerAndExits(@TempDir Path tmp) throws Exception {
    ChildProcess c =
        ChildProcess.start(
            tmp.resolve("log"),
            List.of("-Xmx160m"),
            "moetune.app.Main",
            "train",
            "--demo",
            "--out",
            tmp.resolve("run").toString(),
            "--micro-batch",
            "150",
            "--max-steps",
            "2",
            "--warmup-steps",
            "0",
            "--eval-split",
            "0",
            "--device",
            "cpu");
    int code = c.waitFor(180);
    String out = c.output();
    assertEquals(OutOfMemory.EXIT_CODE, code, out);
    String last = out.strip().lines().reduce((a, b) -> b).orElse("");
    assertTrue(last.startsWith("moetune: out of memory on the host"), out);
    assertFalse(out.contains("\tat "), "no stack trace: " + out);
  }

  @Test
  void aStopSignalToAStuckRunStillEndsTheProcess(@TempDir Path tmp) throws Exception {
    ChildProcess c =
        ChildProcess.start(tmp.resolve("log"), List.of(), StuckRunMain.class.getName());
    assertTrue(c.awaitOutput("ready", 60), c.output());
    c.process().destroy(); // SIGTERM
    int code = c.waitFor(30);
    String out = c.output();
    assertEquals(143, code, "the hook must not hold a stuck JVM open: " + out);
    assertTrue(out.contains("showed no progress for 1 s after the stop signal"), out);
  }
}
