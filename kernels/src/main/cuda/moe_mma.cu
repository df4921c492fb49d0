// bf16 grouped products of ScatterMoE, variant 2 (kernels/lab/moe, "variant A"): mma.sync
// m16n8k16 (bf16 in, float32 accumulators) fed by ldmatrix from a MM_STAGES-deep cp.async
// pipeline of 16-byte copies. Block tile MM_BM x MM_BN x MM_BK, 8 warps as 2 (rows) x 4 (columns),
// each warp 64 x 32 of the tile (4 x 4 mma tiles). Used for sm_80 and sm_90a alike.
//
// scatter2scatter_bf16_kernel2 is persistent: each block first builds, in shared memory, the
// row tiles of every expert from the sorted expert indices (one binary search per expert), then
// walks the (row tile, column tile) space with a stride of gridDim.x. The tile order is grouped
// by MM_GROUP_M row tiles so the blocks running at once share their A rows and weight tiles in
// L2. Gathered A rows are copied straight from x by cp.async through a per-row pointer (no
// gathered copy of x exists); output rows are scattered in the epilogue.
//
// group_xty_bf16_kernel2 is the weight gradient dW[e] += dy_e^T x_e, a product grouped over K
// (the expert's rows), accumulated in float32 and added once into dW (each element belongs to one
// block: deterministic, no atomics).
//
// Requirements (checked by MoeOps, which otherwise uses variant 1): the contiguous dimension of
// every operand is a multiple of 8 elements (16-byte rows), tensors 16-byte aligned.
#include "common.cuh"

#define MM_BM 128
#define MM_BN 128
#ifndef MM_BK  // the lab builds other depths (kernels/lab/moe/README.md); the fatbin uses these
#define MM_BK 32
#endif
#ifndef MM_STAGES
#define MM_STAGES 4
#endif
#define MM_THREADS 256
#define MM_LDK (MM_BK + 8)  // (rows, k) tiles: 80- or 144-byte rows, ldmatrix reads hit 8 distinct banks
#define MM_LDN (MM_BN + 8)  // (k, columns) tiles: 272-byte rows, likewise
#define MM_TILE (MM_BM * MM_LDK)  // elements of one operand tile, either layout
#define MM_STAGE_ELEMS (2 * MM_TILE)
#define MM_SMEM_BYTES (MM_STAGES * MM_STAGE_ELEMS * 2)
#define MM_GROUP_M 16

#include "moe_tiles.cuh"

static_assert(MM_BM == MM_BN, "one tile size serves A and B in both layouts");
static_assert(MM_BK * MM_LDN <= MM_TILE, "a (k, columns) tile fits the operand slot");

__device__ __forceinline__ uint32_t mm_smem_addr(const void* p) {
  return (uint32_t)__cvta_generic_to_shared(p);
}

// 16-byte global -> shared copy; invalid copies write zeros (src-size 0 reads nothing, but src
// must still be a mapped address, so callers pass a base pointer of the tensor).
__device__ __forceinline__ void mm_cp16(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void mm_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void mm_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void mm_ldsm4(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void mm_ldsm4_t(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

__device__ __forceinline__ void mm_mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                       uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

struct MmAcc {
  float c[4][4][4];  // [m16 tile][n8 tile][fragment]
};

__device__ __forceinline__ void mm_zero(MmAcc& a) {
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
      for (int v = 0; v < 4; v++) a.c[i][j][v] = 0.f;
}

// acc += A @ B over one MM_BK stage. A_KMAJOR: A stored (m, k) with stride MM_LDK, else (k, m)
// with stride MM_LDN (read transposed). B_KMAJOR: B stored (n, k), else (k, n), likewise.
template <bool A_KMAJOR, bool B_KMAJOR>
__device__ __forceinline__ void mm_stage(MmAcc& acc, uint32_t sA, uint32_t sB) {
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int wm = (warp >> 2) * 64, wn = (warp & 3) * 32;
  int r = lane & 7, q = lane >> 3;  // ldmatrix: lane gives row r of matrix q
#pragma unroll
  for (int kk = 0; kk < MM_BK; kk += 16) {
    uint32_t a[4][4], b[4][2];
#pragma unroll
    for (int mi = 0; mi < 4; mi++) {
      int m0 = wm + mi * 16;
      if (A_KMAJOR) {
        mm_ldsm4(sA + ((m0 + r + (q & 1) * 8) * MM_LDK + kk + (q >> 1) * 8) * 2, a[mi]);
      } else {
        mm_ldsm4_t(sA + ((kk + r + (q >> 1) * 8) * MM_LDN + m0 + (q & 1) * 8) * 2, a[mi]);
      }
    }
#pragma unroll
    for (int nj = 0; nj < 2; nj++) {
      int n0 = wn + nj * 16;
      uint32_t t[4];
      if (B_KMAJOR) {
        mm_ldsm4(sB + ((n0 + r + (q >> 1) * 8) * MM_LDK + kk + (q & 1) * 8) * 2, t);
      } else {
        mm_ldsm4_t(sB + ((kk + r + (q & 1) * 8) * MM_LDN + n0 + (q >> 1) * 8) * 2, t);
      }
      b[2 * nj][0] = t[0];
      b[2 * nj][1] = t[1];
      b[2 * nj + 1][0] = t[2];
      b[2 * nj + 1][1] = t[3];
    }
#pragma unroll
    for (int mi = 0; mi < 4; mi++)
#pragma unroll
      for (int ni = 0; ni < 4; ni++) mm_mma(acc.c[mi][ni], a[mi], b[ni][0], b[ni][1]);
  }
}

// Copies a (R, C) bf16 tile (C contiguous, stride LD in shared memory) in 16-byte chunks;
// src(r, c) is the global address of element (r, c) or null for zeros.
template <int R, int C, int LD, typename Src>
__device__ __forceinline__ void mm_load(uint32_t dst, const void* base, Src src) {
  constexpr int CH = C / 8;
  static_assert((R * CH) % MM_THREADS == 0, "whole chunks per thread");
#pragma unroll
  for (int i = 0; i < R * CH / MM_THREADS; i++) {
    int idx = threadIdx.x + i * MM_THREADS;
    int r = idx / CH, c = (idx % CH) * 8;
    const __nv_bfloat16* p = src(r, c);
    mm_cp16(dst + (r * LD + c) * 2, p != nullptr ? (const void*)p : base, p != nullptr);
  }
}

// The MM_STAGES-deep main loop over kTiles steps of MM_BK. load(stage, kt) issues the cp.async
// copies of step kt into the stage's A and B slots.
template <bool A_KMAJOR, bool B_KMAJOR, typename Load>
__device__ __forceinline__ void mm_mainloop(MmAcc& acc, uint32_t smem, int kTiles, Load load) {
#pragma unroll
  for (int s = 0; s < MM_STAGES - 1; s++) {
    if (s < kTiles) load(s, s);
    mm_commit();
  }
  for (int kt = 0; kt < kTiles; kt++) {
    mm_wait<MM_STAGES - 2>();  // step kt has landed (this thread's copies)...
    __syncthreads();           // ...and everyone's; everyone is done with step kt - 1
    int next = kt + MM_STAGES - 1;
    if (next < kTiles) load(next % MM_STAGES, next);
    mm_commit();
    uint32_t st = smem + (kt % MM_STAGES) * MM_STAGE_ELEMS * 2;
    mm_stage<A_KMAJOR, B_KMAJOR>(acc, st, st + MM_TILE * 2);
  }
  mm_wait<0>();
}

// Hands each accumulator pair (columns c, c + 1 of tile row r) to out(r, c, v0, v1).
template <typename Out>
__device__ __forceinline__ void mm_epilogue(const MmAcc& acc, Out out) {
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int wm = (warp >> 2) * 64, wn = (warp & 3) * 32;
  int g = lane >> 2, c2 = (lane & 3) * 2;
#pragma unroll
  for (int mi = 0; mi < 4; mi++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      int r = wm + mi * 16 + g + h * 8;
#pragma unroll
      for (int ni = 0; ni < 4; ni++)
        out(r, wn + ni * 8 + c2, acc.c[mi][ni][2 * h], acc.c[mi][ni][2 * h + 1]);
    }
}

// One tile of scatter2scatter; TRANSW: B_e = W[e]^T, stored (n, k) rows of W; else (k, n).
template <bool TRANSW>
__device__ __forceinline__ void s2s_tile(const __nv_bfloat16* x, const __nv_bfloat16* w,
                                         const void* bias, int bdt, void* y, int ydt,
                                         const int* sortedScattered, int e, int rStart, int rows,
                                         int n0, int inDim, int outDim, int fanOut, int groupedIn,
                                         int groupedOut, uint32_t smem) {
  // This thread's A chunks are rows tid / CH + RSTEP i of the tile, the same every k step.
  constexpr int CH = MM_BK / 8, RSTEP = MM_THREADS / CH, NA = MM_BM / RSTEP;
  const __nv_bfloat16* arow[NA];
#pragma unroll
  for (int i = 0; i < NA; i++) {
    int r = threadIdx.x / CH + RSTEP * i;
    arow[i] = nullptr;
    if (r < rows) {
      int p = rStart + r;
      long long src = groupedIn ? p : sortedScattered[p] / fanOut;
      arow[i] = x + src * inDim;
    }
  }
  const __nv_bfloat16* we = w + (long long)e * inDim * outDim;
  int kTiles = (inDim + MM_BK - 1) / MM_BK;
  auto load = [&](int stage, int kt) {
    uint32_t sA = smem + stage * MM_STAGE_ELEMS * 2, sB = sA + MM_TILE * 2;
    int k0 = kt * MM_BK;
#pragma unroll
    for (int i = 0; i < NA; i++) {
      int r = threadIdx.x / CH + RSTEP * i, c = (threadIdx.x % CH) * 8;
      bool ok = arow[i] != nullptr && k0 + c < inDim;
      mm_cp16(sA + (r * MM_LDK + c) * 2, ok ? (const void*)(arow[i] + k0 + c) : (const void*)x, ok);
    }
    if (TRANSW) {
      mm_load<MM_BN, MM_BK, MM_LDK>(sB, w, [&](int n, int c) -> const __nv_bfloat16* {
        return (n0 + n < outDim && k0 + c < inDim) ? we + (long long)(n0 + n) * inDim + k0 + c
                                                   : nullptr;
      });
    } else {
      mm_load<MM_BK, MM_BN, MM_LDN>(sB, w, [&](int k, int c) -> const __nv_bfloat16* {
        return (k0 + k < inDim && n0 + c < outDim) ? we + (long long)(k0 + k) * outDim + n0 + c
                                                   : nullptr;
      });
    }
  };
  MmAcc acc;
  mm_zero(acc);
  mm_mainloop<true, TRANSW>(acc, smem, kTiles, load);
  bool pairs = ydt == DT_BF16 && (outDim & 1) == 0;
  mm_epilogue(acc, [&](int r, int c, float v0, float v1) {
    int n = n0 + c;
    if (r >= rows || n >= outDim) return;
    int p = rStart + r;
    long long o = (long long)(groupedOut ? p : sortedScattered[p]) * outDim + n;
    if (bias != nullptr) {
      long long bi = (long long)e * outDim + n;
      v0 += ldf(bias, bi, bdt);
      if (n + 1 < outDim) v1 += ldf(bias, bi + 1, bdt);
    }
    if (pairs) {
      *reinterpret_cast<__nv_bfloat162*>((__nv_bfloat16*)y + o) = __floats2bfloat162_rn(v0, v1);
    } else {
      stf(y, o, ydt, v0);
      if (n + 1 < outDim) stf(y, o + 1, ydt, v1);
    }
  });
}

// W (E, O, I) as stored. transW: inDim = I, outDim = O; else inDim = O, outDim = I. Persistent:
// launch about two blocks per SM. Dynamic shared memory: MM_SMEM_BYTES + (2E + 1) ints.
MT_KERNEL void __launch_bounds__(MM_THREADS, 2)
scatter2scatter_bf16_kernel2(const __nv_bfloat16* x, const __nv_bfloat16* w, const void* bias,
                             int bdt, void* y, int ydt, const int* sortedExpert,
                             const int* sortedScattered, int M, int E, int inDim, int outDim,
                             int transW, int fanOut, int groupedIn, int groupedOut) {
  extern __shared__ __align__(128) unsigned char mm_smem[];
  int* tileStart = reinterpret_cast<int*>(mm_smem + MM_SMEM_BYTES);  // (E + 1) row tiles before e
  int* rowEnd = tileStart + E + 1;                                    // (E) end of e's rows
  moe_build_tiles<MM_BM>(sortedExpert, M, E, tileStart, rowEnd);
  int rowTiles = tileStart[E], nTiles = (outDim + MM_BN - 1) / MM_BN;
  long long total = (long long)rowTiles * nTiles;
  uint32_t smem = mm_smem_addr(mm_smem);
  for (long long t = blockIdx.x; t < total; t += gridDim.x) {
    MoeTile tl = moe_tile<MM_BM, MM_BN>(t, tileStart, rowEnd, E, rowTiles, nTiles);
    int e = tl.e, rStart = tl.rStart, rows = tl.rows;
    __syncthreads();  // the previous tile's warps are done with the stages
    if (transW) {
      s2s_tile<true>(x, w, bias, bdt, y, ydt, sortedScattered, e, rStart, rows, tl.n0, inDim,
                     outDim, fanOut, groupedIn, groupedOut, smem);
    } else {
      s2s_tile<false>(x, w, bias, bdt, y, ydt, sortedScattered, e, rStart, rows, tl.n0, inDim,
                      outDim, fanOut, groupedIn, groupedOut, smem);
    }
  }
}

// dW[e] (O, I) += dy_e^T x_e over expert e's rows [offsets[e-1], offsets[e]) of the grouped x
// (M, I) and dy (M, O). Grid (ceil(I / MM_BN), ceil(O / MM_BM), E); MM_SMEM_BYTES dynamic.
MT_KERNEL void __launch_bounds__(MM_THREADS, 2)
group_xty_bf16_kernel2(const __nv_bfloat16* x, const __nv_bfloat16* dy, const int* offsets,
                       void* dw, int wdt, int I, int O) {
  extern __shared__ __align__(128) unsigned char mm_smem[];
  int e = blockIdx.z;
  int p0 = e == 0 ? 0 : offsets[e - 1], p1 = offsets[e];
  if (p1 <= p0) return;
  int o0 = blockIdx.y * MM_BM, i0 = blockIdx.x * MM_BN;
  uint32_t smem = mm_smem_addr(mm_smem);
  auto load = [&](int stage, int kt) {
    uint32_t sA = smem + stage * MM_STAGE_ELEMS * 2, sB = sA + MM_TILE * 2;
    int k0 = p0 + kt * MM_BK;
    mm_load<MM_BK, MM_BM, MM_LDN>(sA, dy, [&](int k, int c) -> const __nv_bfloat16* {
      return (k0 + k < p1 && o0 + c < O) ? dy + (long long)(k0 + k) * O + o0 + c : nullptr;
    });
    mm_load<MM_BK, MM_BN, MM_LDN>(sB, x, [&](int k, int c) -> const __nv_bfloat16* {
      return (k0 + k < p1 && i0 + c < I) ? x + (long long)(k0 + k) * I + i0 + c : nullptr;
    });
  };
  MmAcc acc;
  mm_zero(acc);
  mm_mainloop<false, false>(acc, smem, (p1 - p0 + MM_BK - 1) / MM_BK, load);
  mm_epilogue(acc, [&](int r, int c, float v0, float v1) {
    int o = o0 + r, i = i0 + c;
    if (o >= O || i >= I) return;
    long long at = ((long long)e * O + o) * I + i;
    addf(dw, at, wdt, v0);
    if (i + 1 < I) addf(dw, at + 1, wdt, v1);
  });
}
