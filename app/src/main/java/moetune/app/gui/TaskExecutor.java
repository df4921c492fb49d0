package moetune.app.gui;

import java.util.function.Consumer;

/**
 * Where ViewModels send background work. The GUI uses {@link FxTaskExecutor} (work on a daemon
 * thread, callbacks on the FX thread); ViewModel tests use {@link SyncTaskExecutor}, which runs
 * everything inline so a test reads the result right after the call.
 *
 * <p>Invariant: {@code onSuccess}, {@code onError} and everything passed to {@link #onUi} run on
 * the UI thread (the FX thread, or the caller's thread for the synchronous twin), so ViewModels may
 * touch their properties there without locking.
 */
public interface TaskExecutor {

  /** A piece of background work; it may throw, and the error goes to {@code onError}. */
  @FunctionalInterface
  interface Work<T> {
    T call() throws Exception;
  }

  /** A handle on submitted work. */
  interface Handle {
    /** True once the work has finished (either way). */
    boolean isDone();

    /** Waits for the work to finish; tests and window-close use it. */
    void await() throws InterruptedException;
  }

  /** Runs {@code work} in the background, then one of the callbacks on the UI thread. */
  <T> Handle submit(
      String name,
      Work<T> work,
      Consumer<? super T> onSuccess,
      Consumer<? super Throwable> onError);

  /** Runs {@code action} on the UI thread (later, or now when already there). */
  void onUi(Runnable action);
}
