package moetune.engine.backend.cpu;

import java.lang.ref.Cleaner;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicBoolean;
import moetune.engine.backend.Backend;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * A tensor of the {@link CpuBackend}: a Java array plus an element offset. F32 tensors hold a
 * {@code float[]}, I32 tensors an {@code int[]} (the CPU backend has no other dtypes). Views share
 * the array of the tensor that allocated it (the owner) and start at their own offset.
 *
 * <p>Memory accounting: the owner counts {@code numel * 4} bytes against its backend until it is
 * closed, or, if the caller forgets to close it, until the garbage collector reclaims it. Using a
 * tensor (or a view of it) after its owner was closed throws, so use-after-free bugs in the model
 * show on the CPU as they would on the GPU.
 */
public final class CpuTensor extends Tensor {
  private static final Cleaner CLEANER = Cleaner.create();

  private final CpuBackend backend;
  private final float[] floats; // F32 storage, null for I32
  private final int[] ints; // I32 storage, null for F32
  private final int offset; // first element of this tensor in the storage array
  private final int size; // numel, cached as an int (arrays are int-indexed)
  private final Release release; // shared by the owner and all its views
  private final Cleaner.Cleanable cleanable; // non-null only on the owner
  // A view keeps its owner reachable: the garbage collector must not release the owner's bytes
  // (and mark the storage closed) while a view, e.g. from reshape(), is still in use.
  private final CpuTensor owner;

  /** Allocates a new owner tensor of zeros (Java arrays start zeroed). */
  CpuTensor(CpuBackend backend, DType dtype, long[] shape) {
    super(dtype, shape);
    this.backend = backend;
    long n = HostTensor.numel(shape);
    if (n > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(
          "CpuBackend: tensor "
              + dtype
              + Arrays.toString(shape)
              + " has "
              + n
              + " elements; a CPU tensor holds at most 2^31-9");
    }
    this.size = (int) n;
    this.offset = 0;
    switch (dtype) {
      case F32 -> {
        this.floats = new float[size];
        this.ints = null;
      }
      case I32 -> {
        this.floats = null;
        this.ints = new int[size];
      }
      default -> throw new IllegalArgumentException(CpuBackend.unsupported(dtype));
    }
    long bytes = 4L * size;
    this.release = new Release(backend.memory(), bytes);
    backend.memory().allocated(bytes);
    this.cleanable = CLEANER.register(this, release);
    this.owner = this;
  }

  /** A view on {@code parent}'s storage. */
  private CpuTensor(CpuTensor parent, int offset, long[] shape) {
    super(parent.dtype, shape);
    this.backend = parent.backend;
    this.floats = parent.floats;
    this.ints = parent.ints;
    this.offset = offset;
    this.size = (int) HostTensor.numel(shape);
    this.release = parent.release;
    this.cleanable = null;
    this.owner = parent.owner;
  }

  @Override
  public Backend backend() {
    return backend.facade();
  }

  @Override
  public CpuTensor view(long elementOffset, long... shape) {
    long n = HostTensor.numel(shape);
    if (elementOffset < 0 || elementOffset + n > size) {
      throw new IllegalArgumentException(
          "view: "
              + n
              + " elements "
              + Arrays.toString(shape)
              + " at offset "
              + elementOffset
              + " do not fit in "
              + describe());
    }
    return new CpuTensor(this, offset + (int) elementOffset, shape);
  }

  @Override
  public CpuTensor reshape(long... newShape) {
    return (CpuTensor) super.reshape(newShape);
  }

  /** The float storage (shared with views); elements of this tensor start at {@link #offset}. */
  float[] floats() {
    checkLive();
    return floats;
  }

  /** The int storage (shared with views); elements of this tensor start at {@link #offset}. */
  int[] ints() {
    checkLive();
    return ints;
  }

  int offset() {
    return offset;
  }

  /** numel as an int. */
  int size() {
    return size;
  }

  CpuBackend cpuBackend() {
    return backend;
  }

  boolean isClosed() {
    return release.released.get();
  }

  /** Frees the owner's bytes in the accounting; on a view this does nothing. Idempotent. */
  @Override
  public void close() {
    if (cleanable != null) {
      cleanable.clean();
    }
  }

  private void checkLive() {
    if (release.released.get()) {
      throw new IllegalStateException("CpuBackend: " + describe() + " used after close()");
    }
  }

  /** Returns the owner's bytes once, on close() or when the owner becomes unreachable. */
  private static final class Release implements Runnable {
    final CpuMemory memory;
    final long bytes;
    final AtomicBoolean released = new AtomicBoolean();

    Release(CpuMemory memory, long bytes) {
      this.memory = memory;
      this.bytes = bytes;
    }

    @Override
    public void run() {
      if (released.compareAndSet(false, true)) {
        memory.freed(bytes);
      }
    }
  }
}
