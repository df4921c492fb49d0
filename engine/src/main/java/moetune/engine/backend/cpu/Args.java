package moetune.engine.backend.cpu;

import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * The CPU ops' residency checks: a tensor is a live CPU tensor of the dtype the CPU computes in.
 * Shapes are checked by {@link OpShapes}, which both backends share (the numel/rows/check forms
 * here delegate to it for the ops not yet described there). Every failure is an
 * IllegalArgumentException that names the op, the argument and its shape, as Backend's contract
 * asks.
 */
final class Args {
  private Args() {}

  /** t as a live F32 CPU tensor. */
  static CpuTensor f32(String op, String name, Tensor t) {
    CpuTensor c = cpu(op, name, t);
    if (c.dtype() != DType.F32) {
      throw new IllegalArgumentException(op + ": " + name + " must be F32, got " + t.describe());
    }
    return c;
  }

  /** t as a live I32 CPU tensor. */
  static CpuTensor i32(String op, String name, Tensor t) {
    CpuTensor c = cpu(op, name, t);
    if (c.dtype() != DType.I32) {
      throw new IllegalArgumentException(op + ": " + name + " must be I32, got " + t.describe());
    }
    return c;
  }

  /** t as an F32 CPU tensor of exactly {@code numel} elements. */
  static CpuTensor f32(String op, String name, Tensor t, long numel) {
    CpuTensor c = f32(op, name, t);
    numel(op, name, c, numel);
    return c;
  }

  /** t as an I32 CPU tensor of exactly {@code numel} elements. */
  static CpuTensor i32(String op, String name, Tensor t, long numel) {
    CpuTensor c = i32(op, name, t);
    numel(op, name, c, numel);
    return c;
  }

  static CpuTensor cpu(String op, String name, Tensor t) {
    if (t == null) {
      throw new IllegalArgumentException(op + ": " + name + " is null");
    }
    if (!(t instanceof CpuTensor c)) {
      throw new IllegalArgumentException(
          op + ": " + name + " " + t + " is not a CPU tensor; upload it to the CPU backend first");
    }
    if (c.isClosed()) {
      throw new IllegalStateException(
          op + ": " + name + " " + t.describe() + " used after close()");
    }
    return c;
  }

  static void numel(String op, String name, Tensor t, long expected) {
    OpShapes.numel(op, name, t, expected);
  }

  /** The number of rows of {@code t} read as (rows, cols); fails if numel is not a multiple. */
  static int rows(String op, String name, Tensor t, long cols) {
    return OpShapes.rows(op, name, t, cols);
  }

  /** Throws with message unless ok. The message is built eagerly: per call, never per element. */
  static void check(boolean ok, String message) {
    OpShapes.check(ok, message);
  }
}
