package moetune.engine.io;

import java.util.Arrays;
import moetune.engine.tensor.HostTensor;

/**
 * One tensor as a safetensors header describes it: name, stored type, shape and its byte range
 * [begin, end) relative to the start of the data area (the byte after the header).
 */
public record SafetensorsEntry(
    String name, SafetensorsDtype dtype, long[] shape, long begin, long end) {

  public SafetensorsEntry {
    shape = shape.clone();
  }

  @Override
  public long[] shape() {
    return shape.clone();
  }

  public long numel() {
    return HostTensor.numel(shape);
  }

  public long byteSize() {
    return end - begin;
  }

  /** The shape as moetune reads it (C64 gains a trailing dimension of 2). */
  public long[] readShape() {
    if (dtype != SafetensorsDtype.C64) {
      return shape.clone();
    }
    long[] s = Arrays.copyOf(shape, shape.length + 1);
    s[shape.length] = 2;
    return s;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof SafetensorsEntry e
        && name.equals(e.name)
        && dtype == e.dtype
        && Arrays.equals(shape, e.shape)
        && begin == e.begin
        && end == e.end;
  }

  @Override
  public int hashCode() {
    return name.hashCode() * 31 + Arrays.hashCode(shape);
  }

  @Override
  public String toString() {
    return name + " " + dtype + Arrays.toString(shape) + " [" + begin + ", " + end + ")";
  }
}
