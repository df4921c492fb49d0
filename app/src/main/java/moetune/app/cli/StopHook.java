package moetune.app.cli;

import java.io.PrintStream;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Ctrl-C and SIGTERM during a run: a JVM shutdown hook asks the run to stop at the next step
 * boundary and holds the JVM open until the checkpoint is written ({@link #done}).
 *
 * <p>The hook must never deadlock the JVM: a run that is stuck (a step that never returns) would
 * hold it open forever and make the signal useless. So the hook waits while the run shows signs of
 * life ({@link #alive}, called on every step and checkpoint) and gives up after a quiet spell of
 * {@code grace} or three times the longest gap between signs seen so far (a slow model's step),
 * whichever is longer, or at once when the run's thread has died. The latest checkpoint on disk is
 * complete either way (checkpoints are written atomically).
 */
public final class StopHook {
  private final Runnable requestStop;
  private final Thread runThread;
  private final long graceNanos;
  private final PrintStream err;
  private final CountDownLatch done = new CountDownLatch(1);
  private volatile long lastSign = System.nanoTime();
  private volatile long longestGap;
  private Thread hook;

  /**
   * @param requestStop asks the run to stop at the next step boundary
   * @param runThread the thread running the loop
   * @param graceSeconds how long the hook waits without a sign of life
   */
  public StopHook(Runnable requestStop, Thread runThread, double graceSeconds, PrintStream err) {
    this.requestStop = requestStop;
    this.runThread = runThread;
    this.graceNanos = (long) (graceSeconds * 1e9);
    this.err = err;
  }

  /** The run made progress (a step or a checkpoint): the grace period starts again. */
  public void alive() {
    long now = System.nanoTime();
    longestGap = Math.max(longestGap, now - lastSign);
    lastSign = now;
  }

  /** Registers the hook with the JVM. */
  public StopHook install() {
    hook = new Thread(this::onSignal, "moetune-stop");
    Runtime.getRuntime().addShutdownHook(hook);
    return this;
  }

  /** The run is over: a hook that is waiting returns, and the hook is unregistered. */
  public void done() {
    done.countDown();
    if (hook == null) {
      return;
    }
    try {
      Runtime.getRuntime().removeShutdownHook(hook);
    } catch (IllegalStateException e) {
      // the JVM is shutting down (Ctrl-C): the hook is running and returns now that we are done
    }
  }

  /** What the hook does: ask for a stop, then wait for the run as long as it lives. */
  void onSignal() {
    requestStop.run();
    lastSign = System.nanoTime();
    try {
      while (!done.await(200, TimeUnit.MILLISECONDS)) {
        if (!runThread.isAlive()) {
          return;
        }
        long limit = Math.max(graceNanos, 3 * longestGap);
        if (System.nanoTime() - lastSign > limit) {
          err.printf(
              "moetune: the run showed no progress for %.0f s after the stop signal; exiting"
                  + " without a new checkpoint (the latest one on disk is complete)%n",
              limit / 1e9);
          err.flush();
          return;
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
