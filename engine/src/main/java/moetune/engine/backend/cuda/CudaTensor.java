package moetune.engine.backend.cuda;

import java.util.Arrays;
import jcuda.driver.CUdeviceptr;
import moetune.engine.backend.Backend;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * A tensor in device memory: a block of the backend's caching allocator (or a view into one) plus a
 * byte offset. Closing an owning tensor returns its block to the allocator for reuse by later work
 * on the same stream (stream order makes that safe without a sync).
 */
final class CudaTensor extends Tensor {
  private final CudaBackend backend;
  private final DeviceAllocator.Block block; // shared with views
  private final long byteOffset;
  private final boolean owner;
  private boolean closed;

  CudaTensor(
      CudaBackend backend,
      DType dtype,
      long[] shape,
      DeviceAllocator.Block block,
      long byteOffset,
      boolean owner) {
    super(dtype, shape);
    this.backend = backend;
    this.block = block;
    this.byteOffset = byteOffset;
    this.owner = owner;
  }

  @Override
  public Backend backend() {
    return backend.facade();
  }

  /** The backend that allocated this tensor (whatever {@link #backend()} reports). */
  CudaBackend owner() {
    return backend;
  }

  /** The device address of element 0. */
  long address() {
    if (closed || block.isFreed()) {
      throw new IllegalStateException("CUDA tensor " + describe() + " was used after close()");
    }
    return block.address() + byteOffset;
  }

  /** A JCuda pointer to element 0 (for the driver's memcpy and memset calls). */
  CUdeviceptr pointer() {
    address();
    return block.pointer().withByteOffset(byteOffset);
  }

  long byteSize() {
    return numel() * dtype.bytes();
  }

  @Override
  public Tensor view(long elementOffset, long... newShape) {
    long n = HostTensor.numel(newShape);
    if (elementOffset < 0 || elementOffset + n > numel()) {
      throw new IllegalArgumentException(
          "view of "
              + Arrays.toString(newShape)
              + " at element "
              + elementOffset
              + " exceeds "
              + describe());
    }
    return new CudaTensor(
        backend, dtype, newShape, block, byteOffset + elementOffset * dtype.bytes(), false);
  }

  @Override
  public void close() {
    if (owner && !closed) {
      closed = true;
      backend.allocator().free(block);
    }
  }
}
