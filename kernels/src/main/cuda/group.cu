// Row movement of ScatterMoE: group (gather rows into expert order, optionally gate-scaled),
// and the gate-weighted combine of each token's K expert outputs with its gates gradient.
#include "common.cuh"

// out[p] = x[s_p / fanOut] * (gates ? gates[s_p] : 1). x (M / fanOut, D), out (M, D).
// One block per row p.
MT_KERNEL void group_kernel(const void* x, int xdt, const int* sortedScattered, int fanOut,
                            const float* gates, void* out, int odt, int D) {
  long long p = blockIdx.x;
  int s = sortedScattered[p];
  long long src = (long long)(s / fanOut) * D;
  float g = gates == nullptr ? 1.f : gates[s];
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    stf(out, p * D + d, odt, ldf(x, src + d, xdt) * g);
  }
}

// y[n] = sum_j g[n, j] * expanded[n*K + j]. expanded (N*K, D), gates f32 (N, K) or null,
// y (N, D). One block per token.
MT_KERNEL void combine_kernel(const void* expanded, int edt, const float* gates, int K, void* y,
                              int ydt, int D) {
  long long n = blockIdx.x;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float s = 0.f;
    for (int j = 0; j < K; j++) {
      float g = gates == nullptr ? 1.f : gates[n * K + j];
      s += g * ldf(expanded, (n * K + j) * D + d, edt);
    }
    stf(y, n * D + d, ydt, s);
  }
}

// dGates[n, j] = dot(dY[n], expanded[n*K + j]). One warp per (n, j); blockDim 256.
MT_KERNEL void combine_gates_backward_kernel(const void* dy, int gdt, const void* expanded,
                                             int edt, int K, float* dgates, long long NK, int D) {
  long long t = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  if (t >= NK) return;
  long long n = t / K;
  float s = 0.f;
  for (int d = lane; d < D; d += 32) s += ldf(dy, n * D + d, gdt) * ldf(expanded, t * D + d, edt);
  s = warp_sum(s);
  if (lane == 0) dgates[t] = s;
}
