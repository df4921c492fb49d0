package moetune.engine.backend.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.List;

/**
 * cuBLAS bound with the FFM API to whichever libcublas.so.13 or .so.12 the host has (JCublas cannot
 * be used: it links libcublas.so.12 by versioned symbols and does not load on CUDA 13 hosts). Only
 * what moetune needs: a handle on our stream, math mode, a workspace, and the two GEMM entry
 * points. Row-major products are computed as the column-major product of the transposes (see {@link
 * #gemm}).
 */
final class Cublas implements AutoCloseable {
  // cudaDataType and cublasComputeType_t values from library_types.h / cublas_api.h.
  static final int CUDA_R_32F = 0, CUDA_R_16F = 2, CUDA_R_16BF = 14;
  private static final int COMPUTE_32F = 68;
  private static final int DEFAULT_MATH = 0, TF32_MATH = 3;
  private static final int GEMM_DEFAULT = -1;
  private static final ValueLayout.OfLong PTR = ValueLayout.JAVA_LONG; // pointers as raw addresses
  private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;

  private final Arena arena = Arena.ofShared();
  private final Path library;
  private final MethodHandle destroy, gemmEx, gemmStridedBatchedEx;
  private final long handle;
  private final MemorySegment
      alphaBeta; // host scalars read by cuBLAS at call time (host pointer mode)

  /**
   * Creates a handle bound to {@code stream} (a raw cudaStream_t) with a workspace of {@code
   * workspaceBytes} at {@code workspace}. pedantic: exact float32 (no TF32, no reduced precision
   * reductions) for parity runs.
   */
  Cublas(long stream, long workspace, long workspaceBytes, boolean pedantic) {
    this.library = find();
    // loaded for the life of the process, as Cudnn does: closing a backend must not dlclose the
    // library another backend (or cuBLASLt's own state) still relies on
    SymbolLookup lib = SymbolLookup.libraryLookup(library, Arena.global());
    Linker linker = Linker.nativeLinker();
    MethodHandle create =
        bind(linker, lib, "cublasCreate_v2", FunctionDescriptor.of(INT, ValueLayout.ADDRESS));
    MethodHandle setStream =
        bind(linker, lib, "cublasSetStream_v2", FunctionDescriptor.of(INT, PTR, PTR));
    MethodHandle setMath =
        bind(linker, lib, "cublasSetMathMode", FunctionDescriptor.of(INT, PTR, INT));
    MethodHandle setWorkspace =
        bind(linker, lib, "cublasSetWorkspace_v2", FunctionDescriptor.of(INT, PTR, PTR, PTR));
    destroy = bind(linker, lib, "cublasDestroy_v2", FunctionDescriptor.of(INT, PTR));
    gemmEx =
        bind(
            linker,
            lib,
            "cublasGemmEx",
            FunctionDescriptor.of(
                INT, PTR, INT, INT, INT, INT, INT, PTR, PTR, INT, INT, PTR, INT, INT, PTR, PTR, INT,
                INT, INT, INT));
    gemmStridedBatchedEx =
        bind(
            linker,
            lib,
            "cublasGemmStridedBatchedEx",
            FunctionDescriptor.of(
                INT,
                PTR,
                INT,
                INT,
                INT,
                INT,
                INT,
                PTR,
                PTR,
                INT,
                INT,
                ValueLayout.JAVA_LONG,
                PTR,
                INT,
                INT,
                ValueLayout.JAVA_LONG,
                PTR,
                PTR,
                INT,
                INT,
                ValueLayout.JAVA_LONG,
                INT,
                INT,
                INT));
    alphaBeta = arena.allocate(8, 8);
    MemorySegment h = arena.allocate(ValueLayout.JAVA_LONG);
    call(create, "cublasCreate_v2", h);
    handle = h.get(ValueLayout.JAVA_LONG, 0);
    call(setStream, "cublasSetStream_v2", handle, stream);
    // Default math with float32 compute never uses TF32; bf16 inputs still use the tensor cores.
    call(setMath, "cublasSetMathMode", handle, pedantic ? DEFAULT_MATH : TF32_MATH);
    call(setWorkspace, "cublasSetWorkspace_v2", handle, workspace, workspaceBytes);
  }

  Path library() {
    return library;
  }

  /**
   * Row-major C (m, n) = alpha op(A) op(B) + beta C, with A stored (rows, lda) and B stored (rows,
   * ldb) row-major. cuBLAS is column-major, where row-major C is C^T = op(B)^T op(A)^T: so B goes
   * first, the dimensions swap to (n, m), and each operand's leading dimension is its stored row
   * length. Types: cudaDataType of A, B (equal) and C; compute is float32.
   */
  void gemm(
      boolean transA,
      boolean transB,
      int m,
      int n,
      int k,
      float alpha,
      long a,
      int lda,
      long b,
      int ldb,
      int abType,
      float beta,
      long c,
      int ldc,
      int cType,
      String context) {
    alphaBeta.set(ValueLayout.JAVA_FLOAT, 0, alpha);
    alphaBeta.set(ValueLayout.JAVA_FLOAT, 4, beta);
    long pa = alphaBeta.address(), pb = pa + 4;
    call(
        gemmEx,
        "cublasGemmEx",
        context,
        handle,
        transB ? 1 : 0,
        transA ? 1 : 0,
        n,
        m,
        k,
        pa,
        b,
        abType,
        ldb,
        a,
        abType,
        lda,
        pb,
        c,
        cType,
        ldc,
        COMPUTE_32F,
        GEMM_DEFAULT);
  }

  /** {@link #gemm} over {@code batch} matrices at fixed element strides. */
  void gemmBatched(
      boolean transA,
      boolean transB,
      int m,
      int n,
      int k,
      float alpha,
      long a,
      int lda,
      long strideA,
      long b,
      int ldb,
      long strideB,
      int abType,
      float beta,
      long c,
      int ldc,
      long strideC,
      int cType,
      int batch,
      String context) {
    alphaBeta.set(ValueLayout.JAVA_FLOAT, 0, alpha);
    alphaBeta.set(ValueLayout.JAVA_FLOAT, 4, beta);
    long pa = alphaBeta.address(), pb = pa + 4;
    call(
        gemmStridedBatchedEx,
        "cublasGemmStridedBatchedEx",
        context,
        handle,
        transB ? 1 : 0,
        transA ? 1 : 0,
        n,
        m,
        k,
        pa,
        b,
        abType,
        ldb,
        strideB,
        a,
        abType,
        lda,
        strideA,
        pb,
        c,
        cType,
        ldc,
        strideC,
        batch,
        COMPUTE_32F,
        GEMM_DEFAULT);
  }

  @Override
  public void close() {
    call(destroy, "cublasDestroy_v2", handle);
    arena.close();
  }

  private static MethodHandle bind(
      Linker linker, SymbolLookup lib, String name, FunctionDescriptor fd) {
    MemorySegment sym =
        lib.find(name).orElseThrow(() -> new CudaException("cuBLAS has no symbol " + name));
    return linker.downcallHandle(sym, fd);
  }

  private static void call(MethodHandle h, String name, Object... args) {
    call(h, name, "", args);
  }

  private static void call(MethodHandle h, String name, String context, Object... args) {
    int rc;
    try {
      rc = (int) h.invokeWithArguments(args);
    } catch (Throwable t) {
      throw new CudaException("calling " + name + ": " + t);
    }
    if (rc != 0) {
      throw new CudaException(name, rc, statusName(rc), context);
    }
  }

  private static String statusName(int rc) {
    return switch (rc) {
      case 1 -> "CUBLAS_STATUS_NOT_INITIALIZED";
      case 3 -> "CUBLAS_STATUS_ALLOC_FAILED";
      case 7 -> "CUBLAS_STATUS_INVALID_VALUE";
      case 8 -> "CUBLAS_STATUS_ARCH_MISMATCH";
      case 11 -> "CUBLAS_STATUS_MAPPING_ERROR";
      case 13 -> "CUBLAS_STATUS_EXECUTION_FAILED";
      case 14 -> "CUBLAS_STATUS_INTERNAL_ERROR";
      case 15 -> "CUBLAS_STATUS_NOT_SUPPORTED";
      case 16 -> "CUBLAS_STATUS_LICENSE_ERROR";
      default -> "cublasStatus " + rc;
    };
  }

  static final NativeLibrarySearch SEARCH =
      new NativeLibrarySearch(
          "cuBLAS",
          List.of("libcublas.so.13", "libcublas.so.12"),
          "MOETUNE_CUBLAS",
          null,
          List.of("nvidia/cu13/lib", "nvidia/cublas/lib"),
          "install the CUDA toolkit's cuBLAS");

  /** Finds libcublas.so.13 (preferred) or .so.12 ({@link NativeLibrarySearch}). */
  static Path find() {
    return SEARCH.find();
  }
}
