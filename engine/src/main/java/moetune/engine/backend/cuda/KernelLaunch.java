package moetune.engine.backend.cuda;

import java.util.List;
import jcuda.Pointer;
import jcuda.driver.CUstream;
import moetune.kernels.KernelSignatures.Kind;
import moetune.kernels.KernelSignatures.Param;
import moetune.kernels.KernelSignatures.Signature;

/**
 * One kernel launch, built step by step: the kernel by name, its grid, block, dynamic shared memory
 * and stream, then each argument typed and labelled with the kernel's own parameter name:
 *
 * <pre>{@code
 * ctx.kernel("rmsnorm_forward_kernel")
 *     .grid(n).block(256).shapes(r.describe())
 *     .ptr("residual", r.address()).i32("rdt", dt(r, op, "residual"))
 *     ...
 *     .launch();
 * }</pre>
 *
 * Each argument is checked as it is added against the kernel's parameter list (read from its .cu
 * file, {@link moetune.kernels.KernelSignatures}): the label must be the parameter's name and the
 * Java kind its C type's ({@code i32} for int, {@code i64} for long long, {@code f32} for float,
 * {@code ptr} for any pointer, {@code struct} for a struct of 4-byte fields), and {@link #launch}
 * checks that none is missing. A mismatch is a bug in the launcher and fails with one line naming
 * the kernel, its file and the parameter.
 */
final class KernelLaunch {
  private final KernelModule module;
  private final Signature sig;
  private final List<Param> params;
  private final Object[] values; // long[1], int[1], float[1] or int[] (a struct) per parameter
  private int count;
  private long gx = 1, gy = 1, gz = 1;
  private int block;
  private int smem;
  private CUstream stream;
  private String shapes = "";

  KernelLaunch(KernelModule module, Signature sig, CUstream stream) {
    this.module = module;
    this.sig = sig;
    this.params = sig.params();
    this.values = new Object[params.size()];
    this.stream = stream;
  }

  /** A one-dimensional grid of {@code x} blocks (0 blocks: an empty problem, nothing runs). */
  KernelLaunch grid(long x) {
    return grid(x, 1, 1);
  }

  KernelLaunch grid(long x, long y) {
    return grid(x, y, 1);
  }

  KernelLaunch grid(long x, long y, long z) {
    gx = x;
    gy = y;
    gz = z;
    return this;
  }

  /** Threads per block (one-dimensional blocks). */
  KernelLaunch block(int threads) {
    block = threads;
    return this;
  }

  /** Bytes of dynamic shared memory (above 48 KiB the kernel's limit is raised first). */
  KernelLaunch smem(int bytes) {
    smem = bytes;
    return this;
  }

  /** The stream to queue on (the backend's one stream unless set). */
  KernelLaunch stream(CUstream s) {
    stream = s;
    return this;
  }

  /** The op's operands, for the message should the launch fail. */
  KernelLaunch shapes(String s) {
    shapes = s;
    return this;
  }

  /** A pointer parameter: a device address, or 0 for an absent optional tensor. */
  KernelLaunch ptr(String name, long address) {
    return add(name, Kind.PTR, new long[] {address});
  }

  /** An {@code int} parameter. */
  KernelLaunch i32(String name, int value) {
    return add(name, Kind.INT, new int[] {value});
  }

  /** A {@code long long} parameter. */
  KernelLaunch i64(String name, long value) {
    return add(name, Kind.LONG, new long[] {value});
  }

  /** A {@code float} parameter. */
  KernelLaunch f32(String name, float value) {
    return add(name, Kind.FLOAT, new float[] {value});
  }

  /** A struct of 4-byte fields passed by value (floats as their raw bits). */
  KernelLaunch struct(String name, int[] fields) {
    add(name, Kind.STRUCT, fields);
    int want = params.get(count - 1).fields();
    if (want != fields.length) {
      throw new IllegalStateException(
          "kernel "
              + sig.where()
              + ": struct argument '"
              + name
              + "' has "
              + fields.length
              + " fields, the kernel's "
              + params.get(count - 1).type()
              + " has "
              + want);
    }
    return this;
  }

  private KernelLaunch add(String name, Kind kind, Object value) {
    if (count == params.size()) {
      throw new IllegalStateException(
          "kernel "
              + sig.where()
              + " takes "
              + params.size()
              + " arguments; the launch passes more: '"
              + name
              + "'");
    }
    Param p = params.get(count);
    if (!p.name().equals(name) || p.kind() != kind) {
      throw new IllegalStateException(
          "kernel "
              + sig.where()
              + ": argument "
              + (count + 1)
              + " is passed as "
              + kindWord(kind)
              + " '"
              + name
              + "' but the kernel declares parameter "
              + (count + 1)
              + " as '"
              + p
              + "' ("
              + kindWord(p.kind())
              + ")");
    }
    values[count++] = value;
    return this;
  }

  private static String kindWord(Kind k) {
    return switch (k) {
      case PTR -> "ptr";
      case INT -> "i32";
      case LONG -> "i64";
      case FLOAT -> "f32";
      case STRUCT -> "struct";
    };
  }

  /** Queues the kernel; an empty grid queues nothing. */
  void launch() {
    if (count != params.size()) {
      throw new IllegalStateException(
          "kernel "
              + sig.where()
              + " takes "
              + params.size()
              + " arguments; the launch passes "
              + count
              + ", missing '"
              + params.get(count)
              + "'");
    }
    if (block <= 0) {
      throw new IllegalStateException("kernel " + sig.where() + ": no block size was given");
    }
    Pointer[] ps = new Pointer[count];
    for (int i = 0; i < count; i++) {
      ps[i] =
          switch (values[i]) {
            case long[] l -> Pointer.to(l);
            case int[] n -> Pointer.to(n);
            case float[] f -> Pointer.to(f);
            default -> throw new AssertionError(values[i]);
          };
    }
    module.launch(sig.name(), shapes, gx, gy, gz, block, smem, stream, ps);
  }
}
