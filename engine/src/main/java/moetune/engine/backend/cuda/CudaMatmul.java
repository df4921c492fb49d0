package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.CudaContext.dt;
import static moetune.engine.backend.cuda.CudaContext.require;

import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/** matmul on the GPU: cuBLAS (Cublas, through FFM). The CPU twin is {@code CpuMatmul}. */
final class CudaMatmul {
  private final CudaContext ctx;
  private final CudaElementwise elementwise; // float32 copies for mixed dtypes; beta-only products

  CudaMatmul(CudaContext ctx, CudaElementwise elementwise) {
    this.ctx = ctx;
    this.elementwise = elementwise;
  }

  void matmul(
      Tensor a, boolean transA, Tensor b, boolean transB, Tensor c, float alpha, float beta) {
    CudaTensor A = ctx.ct(a, "matmul", "A"),
        B = ctx.ct(b, "matmul", "B"),
        C = ctx.ct(c, "matmul", "C");
    long[] mnk = OpShapes.matmul(A, transA, B, transB, C);
    long m = mnk[0], n = mnk[1], ka = mnk[2];
    String shapes =
        "A "
            + A.describe()
            + (transA ? "^T" : "")
            + " @ B "
            + B.describe()
            + (transB ? "^T" : "")
            + " -> C "
            + C.describe();
    dt(A, "matmul", "A");
    dt(B, "matmul", "B");
    dt(C, "matmul", "C");
    require(
        m <= Integer.MAX_VALUE && n <= Integer.MAX_VALUE && ka <= Integer.MAX_VALUE,
        "matmul: dimensions exceed 2^31: " + shapes);
    if (m == 0 || n == 0) {
      return;
    }
    if (ka == 0) {
      if (beta == 0f) elementwise.fill(C, 0f);
      else elementwise.scale(C, beta);
      return;
    }
    // cuBLAS takes A and B of one type, and C must be F32 for F32 inputs: other mixes go through
    // float32 copies (a rare path; the model keeps operands of one dtype).
    boolean direct = A.dtype() == B.dtype() && (A.dtype() != DType.F32 || C.dtype() == DType.F32);
    if (!direct) {
      try (Tensor a32 = toF32(A);
          Tensor b32 = toF32(B);
          Tensor c32 = C.dtype() == DType.F32 ? null : toF32(C)) {
        matmul(a32, transA, b32, transB, c32 == null ? C : c32, alpha, beta);
        if (c32 != null) elementwise.copy(c32, C);
      }
      return;
    }
    int ab = cudaType(A.dtype());
    ctx.cublas()
        .gemm(
            transA,
            transB,
            (int) m,
            (int) n,
            (int) ka,
            alpha,
            A.address(),
            (int) A.cols(),
            B.address(),
            (int) B.cols(),
            ab,
            beta,
            C.address(),
            (int) n,
            cudaType(C.dtype()),
            "matmul " + shapes);
  }

  private Tensor toF32(CudaTensor t) {
    Tensor f = ctx.empty(DType.F32, t.shape());
    elementwise.copy(t, f);
    return f;
  }

  private static int cudaType(DType d) {
    return switch (d) {
      case F32 -> Cublas.CUDA_R_32F;
      case BF16 -> Cublas.CUDA_R_16BF;
      case F16 -> Cublas.CUDA_R_16F;
      default -> throw new IllegalArgumentException("matmul: " + d + " is not a float type");
    };
  }
}
