package moetune.app.gui;

import java.util.function.Consumer;

/**
 * The synchronous twin of {@link FxTaskExecutor}: work and callbacks run inline on the caller's
 * thread, so ViewModel tests are deterministic and need no FX toolkit.
 */
public final class SyncTaskExecutor implements TaskExecutor {

  private static final Handle DONE =
      new Handle() {
        @Override
        public boolean isDone() {
          return true;
        }

        @Override
        public void await() {}
      };

  @Override
  public <T> Handle submit(
      String name,
      Work<T> work,
      Consumer<? super T> onSuccess,
      Consumer<? super Throwable> onError) {
    T result;
    try {
      result = work.call();
    } catch (Exception | Error e) {
      onError.accept(e);
      return DONE;
    }
    onSuccess.accept(result);
    return DONE;
  }

  @Override
  public void onUi(Runnable action) {
    action.run();
  }
}
