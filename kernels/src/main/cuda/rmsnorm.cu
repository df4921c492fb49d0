// RMSNorm forward (with the residual add fused in front) and backward.
#include "vec.cuh"

// One block per row. If delta != null: residual += delta (stored in residual's dtype, and the
// stored value is what gets normalised, as on the CPU). rstd = 1/sqrt(mean(x^2) + eps);
// out = w * x * rstd. residual/delta/out (N, D), w (D), rstd f32 (N).
// With D % 8 == 0, D <= 32 * blockDim.x and 16-byte aligned tensors (the step's case) each thread
// keeps up to 4 chunks of 8 columns in registers: one 16-byte read of residual and delta, one
// write of residual and out (the row is not read twice).
MT_KERNEL void rmsnorm_forward_kernel(void* residual, int rdt, const void* delta, int ddt,
                                      const void* w, int wdt, float eps, void* out, int odt,
                                      float* rstd, int D) {
  long long row = (long long)blockIdx.x * D;
  int D8 = D / 8;
  if (D % 8 == 0 && D8 <= 4 * (int)blockDim.x && aligned16(residual) && aligned16(delta) &&
      aligned16(w) && aligned16(out)) {
    float x[4][8];
    float ss = 0.f;
#pragma unroll
    for (int k = 0; k < 4; k++) {
      int c = threadIdx.x + k * blockDim.x;
      if (c < D8) {
        ld8(residual, row + c * 8, rdt, x[k]);
        if (delta != nullptr) {
          float dl[8];
          ld8(delta, row + c * 8, ddt, dl);
#pragma unroll
          for (int j = 0; j < 8; j++) x[k][j] = rnd(x[k][j] + dl[j], rdt);  // the stored value
          st8(residual, row + c * 8, rdt, x[k]);
        }
#pragma unroll
        for (int j = 0; j < 8; j++) ss += x[k][j] * x[k][j];
      }
    }
    ss = block_sum(ss);
    float r = rsqrtf(ss / D + eps);
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
#pragma unroll
    for (int k = 0; k < 4; k++) {
      int c = threadIdx.x + k * blockDim.x;
      if (c < D8) {
        float wv[8], o[8];
        ld8(w, c * 8, wdt, wv);
#pragma unroll
        for (int j = 0; j < 8; j++) o[j] = wv[j] * (x[k][j] * r);
        st8(out, row + c * 8, odt, o);
      }
    }
    return;
  }
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

#define RMS_BWD_MAXC 8
// The same backward for D % 256 == 0, D <= 2048 and 16-byte aligned tensors (the step's case;
// the host checks, and launches 256 threads): a warp takes a row
// (rows warp, warp + warps of the grid, ...): lane l owns columns c * 256 + 8 l .. + 8 for each
// chunk c, keeps their dw partial in registers across its rows, and reads with 16-byte loads;
// the row's reduction is a warp shuffle (no block barrier per row). At the end the block's warps
// add their partials into shared memory one warp after another (a fixed order: deterministic).
MT_KERNEL void rmsnorm_backward_rows_kernel(const void* dout, int gdt, const void* x, int xdt,
                                            const void* w, int wdt, const float* rstd, void* dx,
                                            int dxdt, float* dwPart, int N, int D) {
  extern __shared__ float dwAcc[];  // (D)
  int nc = D / 256, lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  float dwr[RMS_BWD_MAXC][8];
#pragma unroll
  for (int c = 0; c < RMS_BWD_MAXC; c++)
#pragma unroll
    for (int j = 0; j < 8; j++) dwr[c][j] = 0.f;
  for (long long n = (long long)blockIdx.x * nw + warp; n < N; n += (long long)gridDim.x * nw) {
    long long row = n * D;
    float r = rstd[n];
    float dot = 0.f;
#pragma unroll
    for (int c = 0; c < RMS_BWD_MAXC; c++) {
      if (c < nc) {
        int col = c * 256 + lane * 8;
        float g[8], xv[8], wv[8];
        ld8(dout, row + col, gdt, g);
        ld8(x, row + col, xdt, xv);
        ld8(w, col, wdt, wv);
#pragma unroll
        for (int j = 0; j < 8; j++) {
          dot += g[j] * wv[j] * xv[j];
          dwr[c][j] += g[j] * xv[j] * r;
        }
      }
    }
    dot = warp_sum(dot);
    float cf = r * r * r * dot / D;
#pragma unroll
    for (int c = 0; c < RMS_BWD_MAXC; c++) {
      if (c < nc) {
        int col = c * 256 + lane * 8;
        float g[8], xv[8], wv[8], d[8];
        ld8(dout, row + col, gdt, g);  // the warp just read these: L1/L2 hits
        ld8(x, row + col, xdt, xv);
        ld8(w, col, wdt, wv);
        ld8(dx, row + col, dxdt, d);
#pragma unroll
        for (int j = 0; j < 8; j++) d[j] = d[j] + (r * wv[j] * g[j] - cf * xv[j]);
        st8(dx, row + col, dxdt, d);
      }
    }
  }
  if (dwPart == nullptr) return;
  for (int d = threadIdx.x; d < D; d += blockDim.x) dwAcc[d] = 0.f;
  __syncthreads();
  for (int wv = 0; wv < nw; wv++) {
    if (warp == wv) {
#pragma unroll
      for (int c = 0; c < RMS_BWD_MAXC; c++) {
        if (c < nc) {
#pragma unroll
          for (int j = 0; j < 8; j++) dwAcc[c * 256 + lane * 8 + j] += dwr[c][j];
        }
      }
    }
    __syncthreads();
  }
  for (int d = threadIdx.x; d < D; d += blockDim.x) dwPart[(long long)blockIdx.x * D + d] = dwAcc[d];
}

// dw[d] += sum over the P partial rows of dwPart (P, D). Deterministic order.
MT_KERNEL void rmsnorm_dw_reduce_kernel(const float* dwPart, int P, void* dw, int dwdt, int D) {
  int d = blockIdx.x * blockDim.x + threadIdx.x;
  if (d >= D) return;
  float s = 0.f;
  for (int p = 0; p < P; p++) s += dwPart[(long long)p * D + d];
  addf(dw, d, dwdt, s);
}
