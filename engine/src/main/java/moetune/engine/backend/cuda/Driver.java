package moetune.engine.backend.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.reflect.Method;
import jcuda.NativePointerObject;
import jcuda.Pointer;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

/**
 * The one place where driver results are checked, and the raw addresses behind JCuda's handles
 * (kernel arguments and cuBLAS need plain 64-bit pointers).
 */
final class Driver {
  private static final Method NATIVE_POINTER;
  private static final Method BYTE_OFFSET;

  static {
    JCudaNatives.load();
    JCudaDriver.setExceptionsEnabled(false); // every result goes through check() instead
    try {
      NATIVE_POINTER = NativePointerObject.class.getDeclaredMethod("getNativePointer");
      NATIVE_POINTER.setAccessible(true);
      BYTE_OFFSET = Pointer.class.getDeclaredMethod("getByteOffset");
      BYTE_OFFSET.setAccessible(true);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  private Driver() {}

  /** Throws a {@link CudaException} naming the call and context unless rc is CUDA_SUCCESS. */
  static void check(int rc, String call, String context) {
    if (rc != CUresult.CUDA_SUCCESS) {
      String[] text = new String[1];
      JCudaDriver.cuGetErrorString(rc, text);
      throw new CudaException(
          call, rc, CUresult.stringFor(rc) + (text[0] == null ? "" : ": " + text[0]), context);
    }
  }

  /**
   * A downcall handle of driver entry point {@code symbol}, looked up in the libcuda JCuda already
   * loaded, for calls JCuda 12.6 does not bind; {@code need} (a sentence: what needs the call and
   * what runs without it) completes the error where the driver lacks it.
   */
  static MethodHandle downcall(String symbol, FunctionDescriptor signature, String need) {
    SymbolLookup lib = SymbolLookup.libraryLookup("libcuda.so.1", Arena.global());
    MemorySegment sym =
        lib.find(symbol)
            .orElseThrow(
                () ->
                    new CudaException(
                        "libcuda.so.1 has no "
                            + symbol
                            + " (CUDA 12 drivers or newer have it): "
                            + need));
    return Linker.nativeLinker().downcallHandle(sym, signature);
  }

  /** The raw address a JCuda handle or pointer stands for (native pointer plus byte offset). */
  static long address(NativePointerObject p) {
    try {
      long base = (long) NATIVE_POINTER.invoke(p);
      return p instanceof Pointer ? base + (long) BYTE_OFFSET.invoke(p) : base;
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException("cannot read the native pointer of " + p, e);
    }
  }
}
