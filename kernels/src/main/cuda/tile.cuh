// A 64x64 output tile with a 16-deep k step, 256 threads, 4x4 outputs per thread, float32
// accumulation. Operands are staged in shared memory as float (converted from their dtype on
// load), so one kernel serves f32 and bf16; thread (ty, tx) owns rows ty + 16*i and columns
// tx + 16*j, which keeps the shared-memory reads of a warp on distinct banks.
#pragma once
#include "common.cuh"

#define TBM 64
#define TBN 64
#define TBK 16
#define TTHREADS 256

struct TileAcc {
  float v[4][4];
};

__device__ __forceinline__ void tile_zero(TileAcc& a) {
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) a.v[i][j] = 0.f;
}

// acc += As^T Bs over one k step. As[k][m] (TBK, TBM), Bs[k][n] (TBK, TBN).
__device__ __forceinline__ void tile_mma(TileAcc& a, const float (*As)[TBM + 4],
                                         const float (*Bs)[TBN + 4]) {
  int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
#pragma unroll
  for (int k = 0; k < TBK; k++) {
    float ar[4], br[4];
#pragma unroll
    for (int i = 0; i < 4; i++) ar[i] = As[k][ty + 16 * i];
#pragma unroll
    for (int j = 0; j < 4; j++) br[j] = Bs[k][tx + 16 * j];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < 4; j++) a.v[i][j] = fmaf(ar[i], br[j], a.v[i][j]);
  }
}
