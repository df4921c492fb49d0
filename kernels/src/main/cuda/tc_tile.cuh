// Tensor-core tile helpers (wmma bf16 16x16x16 with float32 accumulators) shared by the bf16
// grouped products. A block of TC_THREADS = 8 warps computes a TC_BM x TC_BN tile; warp w owns
// rows 32 * (w / 2) .. +32 and columns 64 * (w % 2) .. +64, i.e. 2 x 4 accumulator fragments.
// Shared-memory leading dimensions are padded by 8 elements (16 bytes) against bank conflicts
// and stay multiples of 8 as wmma requires; every fragment pointer is 32-byte aligned.
#pragma once
#include <mma.h>
#include "common.cuh"

#define TC_BM 128
#define TC_BN 128
#define TC_BK 32
#define TC_THREADS 256
#define TC_LDA (TC_BK + 8)   // (rows, k) tiles
#define TC_LDB (TC_BN + 8)   // (k, n) tiles
#define TC_B_ELEMS (TC_BN * TC_LDA > TC_BK * TC_LDB ? TC_BN * TC_LDA : TC_BK * TC_LDB)

namespace wm = nvcuda::wmma;

struct TcAcc {
  wm::fragment<wm::accumulator, 16, 16, 16, float> f[2][4];
};

__device__ __forceinline__ void tc_zero(TcAcc& a) {
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) wm::fill_fragment(a.f[i][j], 0.f);
}

// Fills a (R, C) bf16 tile at dst (leading dimension ld) from src(r, c), a pointer to element
// (r, c) or null for zero. Rows are contiguous in c in global memory. vec: 16-byte loads of 8
// elements (the row length is a multiple of 8, so an in-range group of 8 never straddles the
// end); `avail` is how many columns remain in range from the tile's first column.
template <typename Src>
__device__ __forceinline__ void tc_load_rows(__nv_bfloat16* dst, int ld, int R, int C, bool vec,
                                             Src src, int avail) {
  if (vec) {
    int groups = C / 8;
    for (int idx = threadIdx.x; idx < R * groups; idx += TC_THREADS) {
      int r = idx / groups, c = (idx % groups) * 8;
      const __nv_bfloat16* p = c < avail ? src(r, c) : nullptr;
      uint4 v = p != nullptr ? *reinterpret_cast<const uint4*>(p) : make_uint4(0, 0, 0, 0);
      *reinterpret_cast<uint4*>(dst + r * ld + c) = v;
    }
  } else {
    for (int idx = threadIdx.x; idx < R * C; idx += TC_THREADS) {
      int r = idx / C, c = idx % C;
      const __nv_bfloat16* p = src(r, c);
      dst[r * ld + c] = p != nullptr ? *p : __float2bfloat16_rn(0.f);
    }
  }
}

// acc += A (TC_BM, TC_BK) @ B, with B given as Bs (n, k): col_major matrix_b.
__device__ __forceinline__ void tc_mma_bt(TcAcc& acc, const __nv_bfloat16* As, const __nv_bfloat16* Bs) {
  int warp = threadIdx.x >> 5, wm0 = (warp >> 1) * 32, wn0 = (warp & 1) * 64;
#pragma unroll
  for (int kk = 0; kk < TC_BK; kk += 16) {
    wm::fragment<wm::matrix_a, 16, 16, 16, __nv_bfloat16, wm::row_major> a[2];
    wm::fragment<wm::matrix_b, 16, 16, 16, __nv_bfloat16, wm::col_major> b[4];
#pragma unroll
    for (int i = 0; i < 2; i++) wm::load_matrix_sync(a[i], As + (wm0 + 16 * i) * TC_LDA + kk, TC_LDA);
#pragma unroll
    for (int j = 0; j < 4; j++) wm::load_matrix_sync(b[j], Bs + (wn0 + 16 * j) * TC_LDA + kk, TC_LDA);
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
      for (int j = 0; j < 4; j++) wm::mma_sync(acc.f[i][j], a[i], b[j], acc.f[i][j]);
  }
}

// acc += A (TC_BM, TC_BK) @ B, with B given as Bs (k, n): row_major matrix_b.
__device__ __forceinline__ void tc_mma_b(TcAcc& acc, const __nv_bfloat16* As, const __nv_bfloat16* Bs) {
  int warp = threadIdx.x >> 5, wm0 = (warp >> 1) * 32, wn0 = (warp & 1) * 64;
#pragma unroll
  for (int kk = 0; kk < TC_BK; kk += 16) {
    wm::fragment<wm::matrix_a, 16, 16, 16, __nv_bfloat16, wm::row_major> a[2];
    wm::fragment<wm::matrix_b, 16, 16, 16, __nv_bfloat16, wm::row_major> b[4];
#pragma unroll
    for (int i = 0; i < 2; i++) wm::load_matrix_sync(a[i], As + (wm0 + 16 * i) * TC_LDA + kk, TC_LDA);
#pragma unroll
    for (int j = 0; j < 4; j++) wm::load_matrix_sync(b[j], Bs + kk * TC_LDB + wn0 + 16 * j, TC_LDB);
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
      for (int j = 0; j < 4; j++) wm::mma_sync(acc.f[i][j], a[i], b[j], acc.f[i][j]);
  }
}

// acc += A @ B with A given transposed as At (k, m) (col_major matrix_a, leading dim TC_LDB)
// and B as Bs (k, n) row-major: the groupXtY shape dy^T x.
__device__ __forceinline__ void tc_mma_at_b(TcAcc& acc, const __nv_bfloat16* At, const __nv_bfloat16* Bs) {
  int warp = threadIdx.x >> 5, wm0 = (warp >> 1) * 32, wn0 = (warp & 1) * 64;
#pragma unroll
  for (int kk = 0; kk < TC_BK; kk += 16) {
    wm::fragment<wm::matrix_a, 16, 16, 16, __nv_bfloat16, wm::col_major> a[2];
    wm::fragment<wm::matrix_b, 16, 16, 16, __nv_bfloat16, wm::row_major> b[4];
#pragma unroll
    for (int i = 0; i < 2; i++) wm::load_matrix_sync(a[i], At + kk * TC_LDB + wm0 + 16 * i, TC_LDB);
#pragma unroll
    for (int j = 0; j < 4; j++) wm::load_matrix_sync(b[j], Bs + kk * TC_LDB + wn0 + 16 * j, TC_LDB);
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
      for (int j = 0; j < 4; j++) wm::mma_sync(acc.f[i][j], a[i], b[j], acc.f[i][j]);
  }
}

// Hands every accumulator element to out(r, c, v) with r, c tile coordinates, one 16x16
// fragment at a time through the warp's float patch (coalesced 16-wide rows on the way out).
template <typename Out>
__device__ __forceinline__ void tc_epilogue(TcAcc& acc, float (*patch)[256], Out out) {
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int wm0 = (warp >> 1) * 32, wn0 = (warp & 1) * 64;
  float* pw = patch[warp];
#pragma unroll
  for (int i = 0; i < 2; i++) {
#pragma unroll
    for (int j = 0; j < 4; j++) {
      wm::store_matrix_sync(pw, acc.f[i][j], 16, wm::mem_row_major);
      __syncwarp();
#pragma unroll
      for (int t = 0; t < 8; t++) {
        int idx = lane + 32 * t, r = idx / 16, c = idx % 16;
        out(wm0 + 16 * i + r, wn0 + 16 * j + c, pw[idx]);
      }
      __syncwarp();
    }
  }
}
