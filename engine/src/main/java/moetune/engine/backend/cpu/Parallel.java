package moetune.engine.backend.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.RecursiveAction;
import java.util.function.IntConsumer;

/**
 * Runs independent tasks 0..n-1 on the backend's ForkJoinPool.
 *
 * <p>Determinism rule for every CPU op: a task owns the output elements it writes and computes each
 * of them in a fixed order; task boundaries depend only on the shapes (never on the thread count),
 * and reductions across tasks combine the per-task partials in task order. So results are
 * bit-identical from run to run and for any number of threads.
 */
final class Parallel implements AutoCloseable {
  private final int threads;
  private final ForkJoinPool pool; // null when single-threaded

  Parallel(int threads) {
    if (threads < 1) {
      throw new IllegalArgumentException("CpuBackend: threads must be >= 1, got " + threads);
    }
    this.threads = threads;
    this.pool = threads == 1 ? null : new ForkJoinPool(threads);
  }

  int threads() {
    return threads;
  }

  /** Runs task(i) for i in [0, n), in parallel; returns when all are done. */
  void forEach(int n, IntConsumer task) {
    if (n <= 0) {
      return;
    }
    if (pool == null || n == 1) {
      for (int i = 0; i < n; i++) {
        task.accept(i);
      }
      return;
    }
    pool.invoke(new Range(task, 0, n));
  }

  /**
   * Splits [0, n) into fixed chunks of {@code chunk} indices and runs body(start, end) on each in
   * parallel. The chunking depends only on n and chunk.
   */
  void forChunks(int n, int chunk, ChunkBody body) {
    int chunks = (n + chunk - 1) / chunk;
    forEach(chunks, c -> body.run(c * chunk, Math.min(n, (c + 1) * chunk)));
  }

  @Override
  public void close() {
    if (pool != null) {
      pool.shutdown();
    }
  }

  /** The body of {@link #forChunks}: handles indices [start, end). */
  @FunctionalInterface
  interface ChunkBody {
    void run(int start, int end);
  }

  private static final class Range extends RecursiveAction {
    private final IntConsumer task;
    private final int lo;
    private final int hi;

    Range(IntConsumer task, int lo, int hi) {
      this.task = task;
      this.lo = lo;
      this.hi = hi;
    }

    @Override
    protected void compute() {
      if (hi - lo == 1) {
        task.accept(lo);
        return;
      }
      int mid = (lo + hi) >>> 1;
      invokeAll(new Range(task, lo, mid), new Range(task, mid, hi));
    }
  }
}
