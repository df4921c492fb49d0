package moetune.engine.backend.cuda;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

/**
 * A caching device allocator: blocks are rounded up to a size class and, when freed, kept in a free
 * list of that class for the next request, so a training step allocates from the cache with no
 * cuMemAlloc or cuMemFree. Everything runs on one stream, so a block freed by the host after
 * queuing work on it may be handed to later work at once: stream order guarantees the earlier
 * kernels finish first (while a second stream runs beside it, {@link #holdFrees} keeps freed blocks
 * back until the two join). When the device runs out, the cache is released and the allocation
 * retried once.
 *
 * <p>Size classes: multiples of 512 bytes up to 1 MiB, then multiples of 2 MiB (at most 2 MiB or
 * 0.05% waste per block, whichever is larger relative to size).
 */
final class DeviceAllocator {
  private static final long SMALL = 512, LARGE = 2L << 20, SMALL_LIMIT = 1L << 20;

  /** One cuMemAlloc'd block. */
  static final class Block {
    private final CUdeviceptr ptr;
    private final long address;
    private final long size;
    private boolean freed;

    Block(CUdeviceptr ptr, long size) {
      this.ptr = ptr;
      this.address = Driver.address(ptr);
      this.size = size;
    }

    long address() {
      return address;
    }

    CUdeviceptr pointer() {
      return ptr;
    }

    boolean isFreed() {
      return freed;
    }
  }

  private final Map<Long, ArrayDeque<Block>> free = new HashMap<>();
  private final java.util.List<Block> held = new java.util.ArrayList<>();
  private boolean holding;
  private long inUse; // bytes of blocks held by live tensors
  private long peak;
  private long reserved; // bytes cuMemAlloc'd, in use or cached

  static long roundUp(long bytes) {
    long b = Math.max(bytes, 1);
    long unit = b <= SMALL_LIMIT ? SMALL : LARGE;
    return (b + unit - 1) / unit * unit;
  }

  Block allocate(long bytes, String what) {
    long size = roundUp(bytes);
    ArrayDeque<Block> q = free.get(size);
    Block b = q == null ? null : q.poll();
    if (b == null) {
      CUdeviceptr p = new CUdeviceptr();
      int rc = JCudaDriver.cuMemAlloc(p, size);
      if (rc == CUresult.CUDA_ERROR_OUT_OF_MEMORY) {
        releaseCache();
        rc = JCudaDriver.cuMemAlloc(p, size);
      }
      Driver.check(
          rc,
          "cuMemAlloc",
          what + " (" + size + " bytes; " + inUse + " in use, " + reserved + " reserved)");
      reserved += size;
      b = new Block(p, size);
    }
    b.freed = false;
    inUse += size;
    peak = Math.max(peak, inUse);
    return b;
  }

  void free(Block b) {
    if (b.freed) {
      return;
    }
    b.freed = true;
    inUse -= b.size;
    if (holding) {
      held.add(b);
    } else {
      cache(b);
    }
  }

  private void cache(Block b) {
    free.computeIfAbsent(b.size, k -> new ArrayDeque<>()).push(b);
  }

  /**
   * While work runs on a second stream ({@code CudaScatterMoe}'s variant 61), a block freed by the
   * host may still be in use on the other stream, so stream order no longer makes it safe to hand
   * out: until {@link #releaseHeld}, freed blocks are kept out of the cache.
   */
  void holdFrees() {
    holding = true;
  }

  /**
   * Ends {@link #holdFrees}: the held blocks join the cache, for work queued after both streams
   * joined again.
   */
  void releaseHeld() {
    holding = false;
    held.forEach(this::cache);
    held.clear();
  }

  /** Returns every cached (unused) block to the driver. */
  void releaseCache() {
    for (ArrayDeque<Block> q : free.values()) {
      for (Block b : q) {
        Driver.check(JCudaDriver.cuMemFree(b.ptr), "cuMemFree", "allocator cache");
        reserved -= b.size;
      }
    }
    free.clear();
  }

  long bytesInUse() {
    return inUse;
  }

  long peakBytes() {
    return peak;
  }

  long reservedBytes() {
    return reserved;
  }

  void resetPeak() {
    peak = inUse;
  }
}
