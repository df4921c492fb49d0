package moetune.app.gui;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import javafx.application.Platform;

/**
 * Runs work on daemon threads (never the FX thread, so the UI cannot freeze) and delivers results
 * on the FX thread through {@link Platform#runLater}.
 */
public final class FxTaskExecutor implements TaskExecutor {

  private final AtomicInteger count = new AtomicInteger();
  private final ExecutorService pool =
      Executors.newCachedThreadPool(
          r -> {
            Thread t = new Thread(r, "moetune-gui-worker-" + count.incrementAndGet());
            t.setDaemon(true);
            return t;
          });

  @Override
  public <T> Handle submit(
      String name,
      Work<T> work,
      Consumer<? super T> onSuccess,
      Consumer<? super Throwable> onError) {
    CountDownLatch done = new CountDownLatch(1);
    pool.execute(
        () -> {
          Thread.currentThread().setName("moetune-gui-" + name);
          try {
            T result = work.call();
            onUi(() -> onSuccess.accept(result));
          } catch (Exception | Error e) {
            onUi(() -> onError.accept(e));
          } finally {
            done.countDown();
          }
        });
    return new Handle() {
      @Override
      public boolean isDone() {
        return done.getCount() == 0;
      }

      @Override
      public void await() throws InterruptedException {
        done.await();
      }
    };
  }

  @Override
  public void onUi(Runnable action) {
    if (Platform.isFxApplicationThread()) {
      action.run();
    } else {
      Platform.runLater(action);
    }
  }
}
