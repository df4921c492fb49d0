package moetune.engine.tensor;

import java.util.Arrays;
import moetune.engine.backend.Backend;

/**
 * A dense, row-major, contiguous tensor owned by a {@link Backend} (host arrays for the CPU, device
 * memory for CUDA). A tensor may be a view of a contiguous range of a larger buffer ({@link
 * #view}); views share storage with their parent and must not outlive it.
 *
 * <p>Closing a tensor returns its memory to the backend's allocator; closing a view does nothing.
 */
public abstract class Tensor implements AutoCloseable {
  protected final DType dtype;
  protected final long[] shape;

  protected Tensor(DType dtype, long[] shape) {
    this.dtype = dtype;
    this.shape = shape.clone();
    HostTensor.numel(shape); // validates
  }

  public abstract Backend backend();

  /**
   * A view of {@code numel(shape)} elements starting {@code elementOffset} elements into this
   * tensor's storage, with the given shape. Shares storage; closing it frees nothing.
   */
  public abstract Tensor view(long elementOffset, long... shape);

  /** The same storage with another shape of equal element count. */
  public Tensor reshape(long... newShape) {
    if (HostTensor.numel(newShape) != numel()) {
      throw new IllegalArgumentException(
          "reshape "
              + Arrays.toString(shape)
              + " to "
              + Arrays.toString(newShape)
              + ": sizes differ");
    }
    return view(0, newShape);
  }

  public DType dtype() {
    return dtype;
  }

  public long[] shape() {
    return shape.clone();
  }

  public int rank() {
    return shape.length;
  }

  /** Size of dimension i; negative i counts from the end. */
  public long dim(int i) {
    return shape[i < 0 ? shape.length + i : i];
  }

  public long numel() {
    return HostTensor.numel(shape);
  }

  /** Rows when viewed as a matrix whose columns are the last dimension. */
  public long rows() {
    return shape.length == 0 ? 1 : numel() / shape[shape.length - 1];
  }

  /** The last dimension (1 for a scalar). */
  public long cols() {
    return shape.length == 0 ? 1 : shape[shape.length - 1];
  }

  public String describe() {
    return dtype + Arrays.toString(shape);
  }

  @Override
  public String toString() {
    return "Tensor(" + describe() + " on " + backend().name() + ")";
  }

  @Override
  public abstract void close();
}
