package moetune.engine.backend.cuda;

import java.util.ArrayList;
import java.util.List;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;
import moetune.engine.backend.QueueClock;

/**
 * A {@link QueueClock} of CUDA events recorded on the backend's stream. Events are created once and
 * reused after {@link #reset}, so a profiled step creates none after the first.
 */
final class CudaQueueClock implements QueueClock {
  private final CudaBackend backend;
  private final CUstream stream;
  private final List<CUevent> events = new ArrayList<>();
  private int n;

  CudaQueueClock(CudaBackend backend, CUstream stream) {
    this.backend = backend;
    this.stream = stream;
  }

  @Override
  public int stamp() {
    backend.bind();
    if (n == events.size()) {
      CUevent e = new CUevent();
      Driver.check(
          JCudaDriver.cuEventCreate(e, CUevent_flags.CU_EVENT_DEFAULT), "cuEventCreate", "clock");
      events.add(e);
    }
    Driver.check(JCudaDriver.cuEventRecord(events.get(n), stream), "cuEventRecord", "clock");
    return n++;
  }

  @Override
  public int count() {
    return n;
  }

  @Override
  public double[] read() {
    double[] ms = new double[n];
    if (n == 0) {
      return ms;
    }
    backend.bind();
    Driver.check(
        JCudaDriver.cuEventSynchronize(events.get(n - 1)), "cuEventSynchronize", "clock read");
    float[] t = new float[1];
    for (int i = 1; i < n; i++) {
      Driver.check(
          JCudaDriver.cuEventElapsedTime(t, events.get(0), events.get(i)),
          "cuEventElapsedTime",
          "clock stamp " + i);
      ms[i] = t[0];
    }
    return ms;
  }

  @Override
  public void reset() {
    n = 0;
  }

  @Override
  public void close() {
    backend.bind();
    for (CUevent e : events) {
      Driver.check(JCudaDriver.cuEventDestroy(e), "cuEventDestroy", "clock");
    }
    events.clear();
    n = 0;
  }
}
