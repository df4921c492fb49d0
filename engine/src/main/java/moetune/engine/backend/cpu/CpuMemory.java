package moetune.engine.backend.cpu;

import java.util.concurrent.atomic.AtomicLong;

/** Bytes held by live CPU tensors and the high-water mark since the last reset. Thread-safe. */
final class CpuMemory {
  private final AtomicLong inUse = new AtomicLong();
  private final AtomicLong peak = new AtomicLong();

  void allocated(long bytes) {
    long now = inUse.addAndGet(bytes);
    peak.accumulateAndGet(now, Math::max);
  }

  void freed(long bytes) {
    inUse.addAndGet(-bytes);
  }

  long inUse() {
    return inUse.get();
  }

  long peak() {
    return peak.get();
  }

  void resetPeak() {
    peak.set(inUse.get());
  }
}
