package moetune.engine.backend;

/**
 * Stamps points in a backend's queue of work and reads back the time between them, for profiling:
 * on the GPU each stamp is a CUDA event recorded on the backend's stream (it fires when the work
 * queued before it has run), on the CPU it is the host clock (the work has run when the call
 * returns). Stamps cost a little; use a clock only for profiled steps.
 */
public interface QueueClock extends AutoCloseable {

  /**
   * Stamps the current end of the queue; returns the stamp's index since the last {@link #reset}.
   */
  int stamp();

  /** Stamps taken since the last reset. */
  int count();

  /**
   * Waits for the queue to reach the last stamp and returns, per stamp, the milliseconds since
   * stamp 0.
   */
  double[] read();

  /** Forgets every stamp; the next one is index 0. */
  void reset();

  @Override
  void close();

  /** The host clock: for backends whose ops finish before they return. */
  static QueueClock host() {
    return new QueueClock() {
      private long[] t = new long[1024];
      private int n;

      @Override
      public int stamp() {
        if (n == t.length) {
          t = java.util.Arrays.copyOf(t, 2 * n);
        }
        t[n] = System.nanoTime();
        return n++;
      }

      @Override
      public int count() {
        return n;
      }

      @Override
      public double[] read() {
        double[] ms = new double[n];
        for (int i = 0; i < n; i++) {
          ms[i] = (t[i] - t[0]) / 1e6;
        }
        return ms;
      }

      @Override
      public void reset() {
        n = 0;
      }

      @Override
      public void close() {}
    };
  }
}
