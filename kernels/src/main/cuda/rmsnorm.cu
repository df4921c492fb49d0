// RMSNorm forward (with the residual add fused in front) and backward.
#include "common.cuh"

// One block per row. If delta != null: residual += delta (stored in residual's dtype, and the
// stored value is what gets normalised, as on the CPU). rstd = 1/sqrt(mean(x^2) + eps);
// out = w * x * rstd. residual/delta/out (N, D), w (D), rstd f32 (N).
MT_KERNEL void rmsnorm_forward_kernel(void* residual, int rdt, const void* delta, int ddt,
                                      const void* w, int wdt, float eps, void* out, int odt,
                                      float* rstd, int D) {
  long long row = (long long)blockIdx.x * D;
  float ss = 0.f;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float x;
    if (delta != nullptr) {
      stf(residual, row + d, rdt, ldf(residual, row + d, rdt) + ldf(delta, row + d, ddt));
      x = ldf(residual, row + d, rdt);  // re-read: the rounded stored value is the input
    } else {
      x = ldf(residual, row + d, rdt);
    }
    ss += x * x;
  }
  ss = block_sum(ss);
  float r = rsqrtf(ss / D + eps);
  if (threadIdx.x == 0) rstd[blockIdx.x] = r;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    stf(out, row + d, odt, ldf(w, d, wdt) * (ldf(residual, row + d, rdt) * r));
  }
}

// Backward of y = w * x * r: dx_i += r * w_i g_i - r^3 x_i / D * sum_j g_j w_j x_j, and the
// per-block partial of dw_j = sum_n g_nj x_nj r_n into dwPart (gridDim.x, D) f32 (dwPart may be
// null when dw is not wanted). Each block takes rows blockIdx.x, blockIdx.x + gridDim.x, ...;
// its dw partial lives in dynamic shared memory (D floats), so D is limited by that size.
MT_KERNEL void rmsnorm_backward_kernel(const void* dout, int gdt, const void* x, int xdt,
                                       const void* w, int wdt, const float* rstd, void* dx,
                                       int dxdt, float* dwPart, int N, int D) {
  extern __shared__ float dwAcc[];  // (D)
  for (int d = threadIdx.x; d < D; d += blockDim.x) dwAcc[d] = 0.f;
  for (int n = blockIdx.x; n < N; n += gridDim.x) {
    long long row = (long long)n * D;
    float r = rstd[n];
    float dot = 0.f;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
      float g = ldf(dout, row + d, gdt), xv = ldf(x, row + d, xdt);
      dot += g * ldf(w, d, wdt) * xv;
      dwAcc[d] += g * xv * r;  // thread owns column d: no race
    }
    dot = block_sum(dot);
    float c = r * r * r * dot / D;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
      float g = ldf(dout, row + d, gdt), xv = ldf(x, row + d, xdt);
      addf(dx, row + d, dxdt, r * ldf(w, d, wdt) * g - c * xv);
    }
  }
  if (dwPart != nullptr) {
    for (int d = threadIdx.x; d < D; d += blockDim.x) dwPart[(long long)blockIdx.x * D + d] = dwAcc[d];
  }
}

// dw[d] += sum over the P partial rows of dwPart (P, D). Deterministic order.
MT_KERNEL void rmsnorm_dw_reduce_kernel(const float* dwPart, int P, void* dw, int dwdt, int D) {
  int d = blockIdx.x * blockDim.x + threadIdx.x;
  if (d >= D) return;
  float s = 0.f;
  for (int p = 0; p < P; p++) s += dwPart[(long long)p * D + d];
  addf(dw, d, dwdt, s);
}
