// Row movement of ScatterMoE: group (gather rows into expert order, optionally gate-scaled),
// and the gate-weighted combine of each token's K expert outputs with its gates gradient.
#include "vec.cuh"

// The three kernels below take 8 consecutive columns per thread with 16-byte loads and stores
// (vec.cuh) when D % 8 == 0 and the tensors are 16-byte aligned (the layer's case), else one
// element per thread; group and combine compute each element the same way on both paths.
__device__ __forceinline__ bool rows8(int D, const void* a, const void* b) {
  return D % 8 == 0 && aligned16(a) && aligned16(b);
}

// out[p] = x[s_p / fanOut] * (gates ? gates[s_p] : 1). x (M / fanOut, D), out (M, D).
// One block per row p.
MT_KERNEL void group_kernel(const void* x, int xdt, const int* sortedScattered, int fanOut,
                            const float* gates, void* out, int odt, int D) {
  long long p = blockIdx.x;
  int s = sortedScattered[p];
  long long src = (long long)(s / fanOut) * D;
  float g = gates == nullptr ? 1.f : gates[s];
  if (rows8(D, x, out)) {
    for (int d = threadIdx.x * 8; d < D; d += blockDim.x * 8) {
      float v[8];
      ld8(x, src + d, xdt, v);
#pragma unroll
      for (int j = 0; j < 8; j++) v[j] *= g;
      st8(out, p * D + d, odt, v);
    }
    return;
  }
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    stf(out, p * D + d, odt, ldf(x, src + d, xdt) * g);
  }
}

// inv[sortedScattered[p]] = p: each token slot's row in expert order (sortedScattered is a
// permutation of 0 .. M - 1). One thread per row.
MT_KERNEL void invert_rows_kernel(const int* sortedScattered, int* inv, int M) {
  long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (p < M) inv[sortedScattered[p]] = (int)p;
}

// group_kernel by token: out[inv[s]] = x[s / fanOut] * (gates ? gates[s] : 1) for the token's
// slots s = n fanOut + j. One block per token n, so x's row is read once (group_kernel reads it
// fanOut times, from DRAM once x outgrows L2: 16 times on a 64-expert top-16 layer); each element
// is computed as group_kernel computes it.
MT_KERNEL void group_tokens_kernel(const void* x, int xdt, const int* inv, int fanOut,
                                   const float* gates, void* out, int odt, int D) {
  long long n = blockIdx.x;
  if (rows8(D, x, out)) {
    for (int d = threadIdx.x * 8; d < D; d += blockDim.x * 8) {
      float v[8];
      ld8(x, n * D + d, xdt, v);
      for (int j = 0; j < fanOut; j++) {
        long long s = n * fanOut + j;
        float g = gates == nullptr ? 1.f : gates[s], w[8];
#pragma unroll
        for (int i = 0; i < 8; i++) w[i] = v[i] * g;
        st8(out, (long long)inv[s] * D + d, odt, w);
      }
    }
    return;
  }
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float v = ldf(x, n * D + d, xdt);
    for (int j = 0; j < fanOut; j++) {
      long long s = n * fanOut + j;
      stf(out, (long long)inv[s] * D + d, odt, v * (gates == nullptr ? 1.f : gates[s]));
    }
  }
}

// y[n] = sum_j g[n, j] * expanded[n*K + j]. expanded (N*K, D), gates f32 (N, K) or null,
// y (N, D). One block per token.
MT_KERNEL void combine_kernel(const void* expanded, int edt, const float* gates, int K, void* y,
                              int ydt, int D) {
  long long n = blockIdx.x;
  if (rows8(D, expanded, y)) {
    for (int d = threadIdx.x * 8; d < D; d += blockDim.x * 8) {
      float s[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f}, v[8];
      for (int j = 0; j < K; j++) {
        float g = gates == nullptr ? 1.f : gates[n * K + j];
        ld8(expanded, (n * K + j) * D + d, edt, v);
#pragma unroll
        for (int i = 0; i < 8; i++) s[i] += g * v[i];
      }
      st8(y, n * D + d, ydt, s);
    }
    return;
  }
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float s = 0.f;
    for (int j = 0; j < K; j++) {
      float g = gates == nullptr ? 1.f : gates[n * K + j];
      s += g * ldf(expanded, (n * K + j) * D + d, edt);
    }
    stf(y, n * D + d, ydt, s);
  }
}

// The gates' gradient of token slot t (token n) from one warp: dot(dY[n], expanded[t]), each lane
// summing 8-column chunks (single columns where rows8 fails) in turn, then warp_sum across lanes;
// visit(d, v, count) sees each piece of dY's row the lane loaded (count values from column d).
// Both kernels below sum through it, so their gates' gradients are the same bit for bit.
template <typename Visit>
__device__ __forceinline__ float gates_dot(const void* dy, int gdt, const void* expanded, int edt,
                                           long long n, long long t, int D, int lane,
                                           Visit visit) {
  float s = 0.f;
  if (rows8(D, dy, expanded)) {
    for (int d = lane * 8; d < D; d += 32 * 8) {
      float a[8], b[8];
      ld8(dy, n * D + d, gdt, a);
      ld8(expanded, t * D + d, edt, b);
#pragma unroll
      for (int i = 0; i < 8; i++) s += a[i] * b[i];
      visit(d, a, 8);
    }
  } else {
    for (int d = lane; d < D; d += 32) {
      float a = ldf(dy, n * D + d, gdt);
      s += a * ldf(expanded, t * D + d, edt);
      visit(d, &a, 1);
    }
  }
  return warp_sum(s);
}

// dGates[n, j] = dot(dY[n], expanded[n*K + j]). One warp per (n, j); blockDim 256.
MT_KERNEL void combine_gates_backward_kernel(const void* dy, int gdt, const void* expanded,
                                             int edt, int K, float* dgates, long long NK, int D) {
  long long t = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  if (t >= NK) return;
  float s = gates_dot(dy, gdt, expanded, edt, t / K, t, D, lane, [](int, float*, int) {});
  if (lane == 0) dgates[t] = s;
}

// Variant 60: group_tokens_kernel with gates and combine_gates_backward_kernel in one pass over
// dY. For token slot t = n K + j (one warp each, blockDim 256, so a token's K warps share a block
// or two and its row comes from L1 after the first): dgates[t] = dot(dY[n], expanded[t]) by
// gates_dot, as combine_gates_backward_kernel, and out[inv[t]] = dY[n] * gates[t], group's
// product: both equal the two kernels' bit for bit; dY is read once instead of twice, and one
// launch is saved.
MT_KERNEL void group_gates_backward_kernel(const void* dy, int gdt, const void* expanded, int edt,
                                           const int* inv, int K, const float* gates,
                                           float* dgates, void* out, int odt, long long NK,
                                           int D) {
  long long t = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  if (t >= NK) return;
  long long dst = (long long)inv[t] * D;
  float g = gates == nullptr ? 1.f : gates[t];
  bool vecOut = aligned16(out);
  float s = gates_dot(dy, gdt, expanded, edt, t / K, t, D, lane, [&](int d, float* a, int count) {
    for (int i = 0; i < count; i++) a[i] *= g;
    if (count == 8 && vecOut) {
      st8(out, dst + d, odt, a);
    } else {
      for (int i = 0; i < count; i++) stf(out, dst + d + i, odt, a[i]);
    }
  });
  if (lane == 0) dgates[t] = s;
}
