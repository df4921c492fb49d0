// Per-expert weight gradient of ParallelLinear: dW[e] += dy_e^T x_e over expert e's rows
// [offsets[e-1], offsets[e]) of the grouped x (M, I) and dy (M, O); db[e] += column sums of dy_e.
// Each output element belongs to exactly one block, so the += needs no atomics and is
// deterministic.
#include "tile.cuh"

// Grid (ceil(I / TBN), ceil(O / TBM), E). dW (E, O, I).
MT_KERNEL void __launch_bounds__(TTHREADS)
group_xty_kernel(const void* x, int xdt, const void* dy, int gdt, const int* offsets, void* dw,
                 int wdt, int I, int O) {
  __shared__ float As[TBK][TBM + 4];
  __shared__ float Bs[TBK][TBN + 4];
  int e = blockIdx.z;
  int p0 = e == 0 ? 0 : offsets[e - 1], p1 = offsets[e];
  if (p1 <= p0) return;
  int o0 = blockIdx.y * TBM, i0 = blockIdx.x * TBN;
  TileAcc acc;
  tile_zero(acc);
  for (int k0 = p0; k0 < p1; k0 += TBK) {
#pragma unroll
    for (int i = 0; i < 4; i++) {
      int idx = threadIdx.x + i * TTHREADS;
      int kk = idx / TBM, c = idx % TBM;  // columns fastest: rows of dy and x are contiguous
      long long p = k0 + kk;
      As[kk][c] = (p < p1 && o0 + c < O) ? ldf(dy, p * O + o0 + c, gdt) : 0.f;
      Bs[kk][c] = (p < p1 && i0 + c < I) ? ldf(x, p * I + i0 + c, xdt) : 0.f;
    }
    __syncthreads();
    tile_mma(acc, As, Bs);
    __syncthreads();
  }
  int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    int o = o0 + ty + 16 * i;
    if (o >= O) continue;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      int c = i0 + tx + 16 * j;
      if (c < I) addf(dw, ((long long)e * O + o) * I + c, wdt, acc.v[i][j]);
    }
  }
}

// db[e, o] += sum over expert e's rows of dy[p, o]. Grid (ceil(O / 256), E).
MT_KERNEL void group_db_kernel(const void* dy, int gdt, const int* offsets, void* db, int bdt,
                               int O) {
  int e = blockIdx.y;
  int o = blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= O) return;
  int p0 = e == 0 ? 0 : offsets[e - 1], p1 = offsets[e];
  float s = 0.f;
  for (long long p = p0; p < p1; p++) s += ldf(dy, p * O + o, gdt);
  addf(db, (long long)e * O + o, bdt, s);
}

// ---------------------------------------------------------------------------------------------
// bf16 x and dy on the tensor cores: the TC_BM x TC_BN tile of dW[e] (rows o, columns i) is
// dy_e^T x_e over expert e's rows in steps of TC_BK rows. dy's tile is staged as (p, o), which
// is dy^T in column-major order, x's as (p, i). Grid (ceil(I / TC_BN), ceil(O / TC_BM), E).
#include "tc_tile.cuh"

MT_KERNEL void __launch_bounds__(TC_THREADS)
group_xty_bf16_kernel(const __nv_bfloat16* x, const __nv_bfloat16* dy, const int* offsets, void* dw,
                      int wdt, int I, int O) {
  __shared__ __align__(128) __nv_bfloat16 At[TC_BK * TC_LDB];  // (p, o)
  __shared__ __align__(128) __nv_bfloat16 Bs[TC_BK * TC_LDB];  // (p, i)
  __shared__ __align__(128) float patch[TC_THREADS / 32][16 * 16];
  int e = blockIdx.z;
  int p0 = e == 0 ? 0 : offsets[e - 1], p1 = offsets[e];
  if (p1 <= p0) return;
  int o0 = blockIdx.y * TC_BM, i0 = blockIdx.x * TC_BN;
  // 16-byte loads need 16-byte aligned row starts (length a multiple of 8, base aligned)
  bool vecO = (O % 8) == 0 && (reinterpret_cast<uintptr_t>(dy) & 15) == 0,
       vecI = (I % 8) == 0 && (reinterpret_cast<uintptr_t>(x) & 15) == 0;
  TcAcc acc;
  tc_zero(acc);
  for (int k0 = p0; k0 < p1; k0 += TC_BK) {
    tc_load_rows(At, TC_LDB, TC_BK, TC_BM, vecO, [&](int kk, int c) -> const __nv_bfloat16* {
      return (k0 + kk < p1 && o0 + c < O) ? dy + (long long)(k0 + kk) * O + o0 + c : nullptr;
    }, O - o0);
    tc_load_rows(Bs, TC_LDB, TC_BK, TC_BN, vecI, [&](int kk, int c) -> const __nv_bfloat16* {
      return (k0 + kk < p1 && i0 + c < I) ? x + (long long)(k0 + kk) * I + i0 + c : nullptr;
    }, I - i0);
    __syncthreads();
    tc_mma_at_b(acc, At, Bs);
    __syncthreads();
  }
  tc_epilogue(acc, patch, [&](int r, int c, float v) {
    if (o0 + r < O && i0 + c < I) addf(dw, ((long long)e * O + o0 + r) * I + i0 + c, wdt, v);
  });
}
