package moetune.engine.backend.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * The driver's {@code cuOccupancyMaxActiveClusters}, bound with FFM (JCuda 12.6 does not have it):
 * how many clusters of a kernel with its cluster size compiled in ({@code __cluster_dims__}) can be
 * resident at once, which is the grid of a persistent cluster kernel (a larger grid would leave
 * clusters waiting for others to finish their whole tile walk).
 */
final class Occupancy {
  // CUlaunchConfig (cuda.h): gridDimX..Z, blockDimX..Z, sharedMemBytes (unsigned int each), then
  // hStream, attrs (pointers, 8-byte aligned) and numAttrs: 56 bytes
  private static final long CONFIG_BYTES = 56, STREAM = 32, ATTRS = 40, NUM_ATTRS = 48;
  private static MethodHandle query;

  private Occupancy() {}

  private static synchronized MethodHandle query() {
    if (query == null) {
      query =
          Driver.downcall(
              "cuOccupancyMaxActiveClusters",
              FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS),
              "the MoE weight-gradient kernel in clusters (variant 42) needs it;"
                  + " MOETUNE_MOE_KERNEL=v14 runs without it");
    }
    return query;
  }

  /**
   * Resident clusters of {@code cluster} blocks of the kernel behind CUfunction handle {@code
   * function}, {@code block} threads and {@code smem} bytes of dynamic shared memory a block (the
   * kernel already allowed that much).
   */
  static int maxActiveClusters(long function, int cluster, int block, int smem, String name) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment cfg = arena.allocate(CONFIG_BYTES, 8);
      cfg.set(JAVA_INT, 0, cluster); // gridDimX: one cluster's worth (a multiple of its size)
      cfg.set(JAVA_INT, 4, 1);
      cfg.set(JAVA_INT, 8, 1);
      cfg.set(JAVA_INT, 12, block);
      cfg.set(JAVA_INT, 16, 1);
      cfg.set(JAVA_INT, 20, 1);
      cfg.set(JAVA_INT, 24, smem);
      cfg.set(ADDRESS, STREAM, MemorySegment.NULL);
      cfg.set(ADDRESS, ATTRS, MemorySegment.NULL); // the cluster size is the kernel's own
      cfg.set(JAVA_INT, NUM_ATTRS, 0);
      MemorySegment out = arena.allocate(JAVA_INT);
      int rc = (int) query().invokeExact(out, MemorySegment.ofAddress(function), cfg);
      Driver.check(
          rc,
          "cuOccupancyMaxActiveClusters",
          "kernel " + name + " (" + block + " threads, " + smem + " bytes of shared memory)");
      return out.get(JAVA_INT, 0);
    } catch (CudaException e) {
      throw e;
    } catch (Throwable t) {
      throw new IllegalStateException("cuOccupancyMaxActiveClusters for kernel " + name, t);
    }
  }
}
