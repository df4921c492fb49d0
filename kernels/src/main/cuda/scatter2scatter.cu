// ScatterMoE's scatter2scatter: for each routed row p (in expert order) y_row = x_row @ B_e
// (+ bias[e]), where the input row is x[p] (grouped_in) or x[s_p / k] (scattered), the output
// row y[p] (grouped_out) or y[s_p] (scattered), and B_e = W[e]^T (transW) or W[e]. Rows are
// gathered and scattered inside the tile loads and the epilogue: no padded or per-expert copy
// of X exists. Each block owns TBM rows of one expert and TBN output columns; blocks are
// assigned to experts on the device from the sorted expert indices (binary searches), so the
// grid is the upper bound ceil(M / TBM) + E row tiles and surplus blocks exit.
#include "tile.cuh"

// Finds this block's expert and row range [r0, r1) for row tiles of bm rows. Returns false for
// a surplus block. ends (E) shared scratch. sortedExpert is ascending.
__device__ bool tile_to_expert(const int* sortedExpert, int M, int E, int tile, int bm, int* ends,
                               int* outE, int* r0, int* r1) {
  for (int e = threadIdx.x; e < E; e += blockDim.x) {
    int lo = 0, hi = M;  // first p with sortedExpert[p] > e
    while (lo < hi) {
      int mid = (lo + hi) >> 1;
      if (sortedExpert[mid] <= e) lo = mid + 1; else hi = mid;
    }
    ends[e] = lo;
  }
  __syncthreads();
  __shared__ int info[3];
  if (threadIdx.x == 0) {
    info[0] = -1;
    int start = 0, t = tile;
    for (int e = 0; e < E; e++) {
      int n = ends[e] - start;
      int tiles = (n + bm - 1) / bm;
      if (t < tiles) {
        info[0] = e;
        info[1] = start + t * bm;
        info[2] = min(ends[e], start + (t + 1) * bm);
        break;
      }
      t -= tiles;
      start = ends[e];
    }
  }
  __syncthreads();
  *outE = info[0];
  *r0 = info[1];
  *r1 = info[2];
  return info[0] >= 0;
}

// W (E, O, I) as stored. transW: inDim = I, outDim = O; else inDim = O, outDim = I.
// Grid (ceil(outDim / TBN), ceil(M / TBM) + E). Dynamic shared memory: E ints.
MT_KERNEL void __launch_bounds__(TTHREADS)
scatter2scatter_kernel(const void* x, int xdt, const void* w, int wdt, const void* bias, int bdt,
                       void* y, int ydt, const int* sortedExpert, const int* sortedScattered,
                       int M, int E, int inDim, int outDim, int transW, int fanOut, int groupedIn,
                       int groupedOut) {
  extern __shared__ int ends[];
  __shared__ float As[TBK][TBM + 4];
  __shared__ float Bs[TBK][TBN + 4];
  __shared__ long long inRow[TBM], outRow[TBM];
  int e, r0, r1;
  if (!tile_to_expert(sortedExpert, M, E, blockIdx.y, TBM, ends, &e, &r0, &r1)) return;
  int rows = r1 - r0;
  int n0 = blockIdx.x * TBN;
  if (threadIdx.x < TBM) {
    int p = r0 + threadIdx.x;
    if (threadIdx.x < rows) {
      int s = sortedScattered[p];
      inRow[threadIdx.x] = groupedIn ? p : s / fanOut;
      outRow[threadIdx.x] = groupedOut ? p : s;
    } else {
      inRow[threadIdx.x] = -1;
      outRow[threadIdx.x] = -1;
    }
  }
  // B_e(k, n) = W[e] at k * sk + n * sn.
  long long wBase = (long long)e * inDim * outDim;
  long long sk = transW ? 1 : outDim, sn = transW ? inDim : 1;
  TileAcc acc;
  tile_zero(acc);
  __syncthreads();
  for (int k0 = 0; k0 < inDim; k0 += TBK) {
#pragma unroll
    for (int i = 0; i < 4; i++) {
      int idx = threadIdx.x + i * TTHREADS;
      int r = idx / TBK, kk = idx % TBK;  // k fastest: x rows are contiguous in k
      long long ir = inRow[r];
      As[kk][r] = (ir >= 0 && k0 + kk < inDim) ? ldf(x, ir * inDim + k0 + kk, xdt) : 0.f;
      int n, kb;
      if (transW) {
        n = idx / TBK;
        kb = idx % TBK;
      } else {
        kb = idx / TBN;
        n = idx % TBN;
      }
      Bs[kb][n] = (n0 + n < outDim && k0 + kb < inDim)
                      ? ldf(w, wBase + (k0 + kb) * sk + (n0 + n) * sn, wdt)
                      : 0.f;
    }
    __syncthreads();
    tile_mma(acc, As, Bs);
    __syncthreads();
  }
  int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    int r = ty + 16 * i;
    if (r >= rows) continue;
    long long orow = outRow[r];
#pragma unroll
    for (int j = 0; j < 4; j++) {
      int n = n0 + tx + 16 * j;
      if (n >= outDim) continue;
      float v = acc.v[i][j];
      if (bias != nullptr) v += ldf(bias, (long long)e * outDim + n, bdt);
      stf(y, orow * outDim + n, ydt, v);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// bf16 x and W on the tensor cores (wmma 16x16x16, float32 accumulators): tiles of TC_BM rows of
// one expert by TC_BN output columns, TC_BK deep, 8 warps each owning 32 x 64 of the tile. The
// gathered rows of x and the tile of W are staged in shared memory as bf16 (16-byte loads where
// the row length allows, else element by element); the epilogue goes through a per-warp 16x16
// float patch so bias, dtype conversion and the scattered row index are applied on the way out.
// Grid (ceil(outDim / TC_BN), ceil(M / TC_BM) + E).
#include "tc_tile.cuh"

MT_KERNEL void __launch_bounds__(TC_THREADS)
scatter2scatter_bf16_kernel(const __nv_bfloat16* x, const __nv_bfloat16* w, const void* bias,
                            int bdt, void* y, int ydt, const int* sortedExpert,
                            const int* sortedScattered, int M, int E, int inDim, int outDim,
                            int transW, int fanOut, int groupedIn, int groupedOut) {
  extern __shared__ int ends[];
  __shared__ __align__(128) __nv_bfloat16 As[TC_BM * TC_LDA];  // (m, k) row-major
  __shared__ __align__(128) __nv_bfloat16 Bs[TC_B_ELEMS];       // transW: (n, k); else (k, n)
  __shared__ __align__(128) float patch[TC_THREADS / 32][16 * 16];
  __shared__ long long inRow[TC_BM], outRow[TC_BM];
  int e, r0, r1;
  if (!tile_to_expert(sortedExpert, M, E, blockIdx.y, TC_BM, ends, &e, &r0, &r1)) return;
  int rows = r1 - r0;
  int n0 = blockIdx.x * TC_BN;
  for (int r = threadIdx.x; r < TC_BM; r += TC_THREADS) {
    if (r < rows) {
      int p = r0 + r, s = sortedScattered[p];
      inRow[r] = groupedIn ? p : s / fanOut;
      outRow[r] = groupedOut ? p : s;
    } else {
      inRow[r] = -1;
      outRow[r] = -1;
    }
  }
  const __nv_bfloat16* we = w + (long long)e * inDim * outDim;
  // 16-byte loads need 16-byte aligned row starts: the row length a multiple of 8 and the base
  // aligned (a view into a flat parameter buffer, e.g. a LoRA factor, may start anywhere)
  bool vecA = (inDim % 8) == 0 && (reinterpret_cast<uintptr_t>(x) & 15) == 0;
  bool vecB = (transW ? (inDim % 8) == 0 : (outDim % 8) == 0) &&
              (reinterpret_cast<uintptr_t>(w) & 15) == 0;
  TcAcc acc;
  tc_zero(acc);
  __syncthreads();
  for (int k0 = 0; k0 < inDim; k0 += TC_BK) {
    // A: TC_BM x TC_BK gathered rows of x.
    tc_load_rows(As, TC_LDA, TC_BM, TC_BK, vecA, [&](int r, int k) -> const __nv_bfloat16* {
      long long ir = inRow[r];
      return (ir >= 0 && k0 + k < inDim) ? x + ir * inDim + k0 + k : nullptr;
    }, inDim - k0);
    if (transW) {
      // B^T tile: W[e] rows n (contiguous in k) -> Bs (n, k).
      tc_load_rows(Bs, TC_LDA, TC_BN, TC_BK, vecB, [&](int n, int k) -> const __nv_bfloat16* {
        return (n0 + n < outDim && k0 + k < inDim) ? we + (long long)(n0 + n) * inDim + k0 + k : nullptr;
      }, inDim - k0);
    } else {
      // B tile: W[e] rows k (contiguous in n) -> Bs (k, n).
      tc_load_rows(Bs, TC_LDB, TC_BK, TC_BN, vecB, [&](int k, int n) -> const __nv_bfloat16* {
        return (k0 + k < inDim && n0 + n < outDim) ? we + (long long)(k0 + k) * outDim + n0 + n : nullptr;
      }, outDim - n0);
    }
    __syncthreads();
    if (transW) tc_mma_bt(acc, As, Bs); else tc_mma_b(acc, As, Bs);
    __syncthreads();
  }
  tc_epilogue(acc, patch, [&](int r, int c, float v) {
    if (r < rows && n0 + c < outDim) {
      if (bias != nullptr) v += ldf(bias, (long long)e * outDim + n0 + c, bdt);
      stf(y, outRow[r] * outDim + n0 + c, ydt, v);
    }
  });
}
