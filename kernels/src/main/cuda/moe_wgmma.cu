// bf16 grouped products of ScatterMoE, variant 3 (kernels/lab/moe): sm_90a wgmma. Each block is
// two warpgroups; warpgroup g computes rows 64 g .. 64 g + 63 of a 128 x BN output tile with
// wgmma m64nBNk16 (float32 accumulators in registers) reading both operands from shared memory
// through matrix descriptors. The operands arrive by 16-byte cp.async into 128-byte-swizzled tiles
// (the swizzle wgmma reads: chunk c of 128-byte row r at c ^ (r & 7)), WG_STAGES deep; wgmma runs
// WG_WAITN groups behind its issue, so the copies of the step after next overlap the tensor cores.
//
// Operands are K-major (k contiguous: x rows, W rows for x W^T) or MN-major (m or n contiguous:
// W stored (k, n) for the dX products, dy and x for the weight gradient): wgmma reads an MN-major
// tile through its transpose bit. An MN-major tile is stored as 64-column slabs of (64 k rows x
// 128 bytes), 8 KiB apart (the descriptor's leading byte offset); 8-row groups are 1 KiB apart
// (the stride byte offset) in both layouts.
//
// scatter2scatter_wgmma_kernel3 is persistent over (expert row tile, column tile) exactly like
// scatter2scatter_bf16_kernel2 (moe_mma.cu, included first); group_xty_wgmma_kernel3 is the
// weight gradient dW[e] += dy_e^T x_e over the expert's rows, float32 accumulation, each element
// owned by one block (deterministic). Only the sm_90a pass compiles the bodies; the sm_80 cubin
// and the compute_90 PTX carry a trap (MoeOps launches these only on compute capability 9.0).
// Requirements as variant 2: contiguous dimensions multiples of 8 elements, 16-byte-aligned bases.

#define WG_BM 128
#define WG_BK 64  // one 128-byte swizzle row of bf16
#define WG_SLAB 8192  // bytes of one 64-column slab of an MN-major (64 k x 64 mn) tile

#if defined(__CUDA_ARCH_FEAT_SM90_ALL) || defined(MOE_WG_HOST_CHECK)
#define WG_ON 1
#endif

__host__ __device__ constexpr int wg_smem_bytes(int bn, int stages) {
  return stages * (WG_BM + bn) * WG_BK * 2 + 1024;  // + slack to align the stages to 1 KiB
}

#ifdef WG_ON
// sm_90 shared-memory matrix descriptor, 128-byte swizzle.
__device__ __forceinline__ uint64_t wg_desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)(lbo >> 4) << 16) |
         ((uint64_t)(sbo >> 4) << 32) | ((uint64_t)1 << 62);
}

// Byte offset of 16-byte chunk c (0..7) of 128-byte row r in a swizzled tile.
__device__ __forceinline__ uint32_t wg_swz(int r, int c) { return r * 128 + ((c ^ (r & 7)) << 4); }

// TA / TB: 0 K-major, 1 MN-major (transposed). d += A B.
template <int TA, int TB>
__device__ __forceinline__ void wg_mma_n128(float (&d)[64], uint64_t a, uint64_t b) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
      "%64, %65, 1, 1, 1, %66, %67;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(a), "l"(b), "n"(TA), "n"(TB));
}

template <int TA, int TB>
__device__ __forceinline__ void wg_mma_n256(float (&d)[128], uint64_t a, uint64_t b) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, "
      "%128, %129, 1, 1, 1, %130, %131;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "l"(a), "l"(b), "n"(TA), "n"(TB));
}


template <int BN, int TA, int TB>
__device__ __forceinline__ void wg_mma(float (&d)[BN / 2], uint64_t a, uint64_t b) {
  if constexpr (BN == 256) {
    wg_mma_n256<TA, TB>(d, a, b);
  } else {
    wg_mma_n128<TA, TB>(d, a, b);
  }
}

// Keeps the compiler from moving accumulator reads or writes across the asynchronous wgmma.
template <int N>
__device__ __forceinline__ void wg_fence_acc(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; i++) asm volatile("" : "+f"(d[i])::"memory");
}

// R (rows) x 64 (k) K-major tile, 16-byte chunks; src(r, k) gives the address or null (zeros).
template <int R, typename Src>
__device__ __forceinline__ void wg_load_k(uint32_t dst, const void* base, Src src) {
  static_assert((R * 8) % 256 == 0, "whole chunks per thread");
#pragma unroll
  for (int i = 0; i < R * 8 / 256; i++) {
    int idx = threadIdx.x + 256 * i, r = idx / 8, c = idx % 8;
    const __nv_bfloat16* p = src(r, c * 8);
    mm_cp16(dst + wg_swz(r, c), p != nullptr ? (const void*)p : base, p != nullptr);
  }
}

// 64 (k) x R (mn) MN-major tile as R / 64 slabs; src(k, mn) gives the address or null (zeros).
template <int R, typename Src>
__device__ __forceinline__ void wg_load_mn(uint32_t dst, const void* base, Src src) {
  constexpr int CH = R / 8;
  static_assert((WG_BK * CH) % 256 == 0, "whole chunks per thread");
#pragma unroll
  for (int i = 0; i < WG_BK * CH / 256; i++) {
    int idx = threadIdx.x + 256 * i, k = idx / CH, mn = (idx % CH) * 8;
    const __nv_bfloat16* p = src(k, mn);
    mm_cp16(dst + (mn / 64) * WG_SLAB + wg_swz(k, (mn % 64) / 8),
            p != nullptr ? (const void*)p : base, p != nullptr);
  }
}

// The pipelined main loop: load(aSlot, bSlot, kt) issues the copies of k step kt. lboB is the
// B descriptor's leading byte offset (MN-major B wider than 64 columns).
template <int BN, int STAGES, int WAITN, int TA, int TB, typename Load>
__device__ __forceinline__ void wg_mainloop(float (&d)[BN / 2], uint32_t smem, int kTiles,
                                            uint32_t lboB, Load load) {
  constexpr int A_BYTES = WG_BM * WG_BK * 2, STAGE = (WG_BM + BN) * WG_BK * 2;
  constexpr int DIST = STAGES - 1 - WAITN;  // k steps loaded ahead
  static_assert(DIST >= 1, "at least one step in flight");
  int wg = threadIdx.x / 128;
#pragma unroll
  for (int i = 0; i < BN / 2; i++) d[i] = 0.f;
#pragma unroll
  for (int s = 0; s < DIST; s++) {
    if (s < kTiles) load(smem + s * STAGE, smem + s * STAGE + A_BYTES, s);
    mm_commit();
  }
  for (int kt = 0; kt < kTiles; kt++) {
    mm_wait<DIST - 1>();  // this thread's copies of step kt have landed
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // visible to wgmma
    __syncthreads();  // everyone's; every warpgroup is done with step kt - 1 - WAITN
    int next = kt + DIST;
    if (next < kTiles) {
      uint32_t st = smem + (next % STAGES) * STAGE;
      load(st, st + A_BYTES, next);
    }
    mm_commit();
    uint32_t sA = smem + (kt % STAGES) * STAGE, sB = sA + A_BYTES;
    // MN-major: leading byte offset lboB between 64-column slabs, 8-row groups 1 KiB apart (the
    // lab also tries lboB = 1024, the two offsets swapped)
    uint32_t sboMN = lboB == WG_SLAB ? 1024 : WG_SLAB;
    uint64_t da = TA ? wg_desc(sA + wg * WG_SLAB, lboB, sboMN) : wg_desc(sA + wg * 64 * 128, 16, 1024);
    uint64_t db = TB ? wg_desc(sB, lboB, sboMN) : wg_desc(sB, 16, 1024);
    wg_fence_acc(d);
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
    for (int kk = 0; kk < WG_BK / 16; kk++) {
      // the next 16 k: 32 bytes along a K-major row, two 8-row groups (2 KiB) of an MN-major tile
      uint64_t a = da + (TA ? kk * (2048 >> 4) : kk * (32 >> 4));
      uint64_t b = db + (TB ? kk * (2048 >> 4) : kk * (32 >> 4));
      wg_mma<BN, TA, TB>(d, a, b);
    }
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(WAITN) : "memory");
    wg_fence_acc(d);
  }
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
  wg_fence_acc(d);
  mm_wait<0>();
}

// Hands each accumulator pair (tile row r, columns c and c + 1) to out(r, c, v0, v1).
template <int BN, typename Out>
__device__ __forceinline__ void wg_epilogue(const float (&d)[BN / 2], Out out) {
  int tid = threadIdx.x, lane = tid & 31;
  int r0 = (tid / 128) * 64 + ((tid & 127) / 32) * 16 + lane / 4;
#pragma unroll
  for (int j = 0; j < BN / 8; j++)
#pragma unroll
    for (int h = 0; h < 2; h++)
      out(r0 + 8 * h, 8 * j + 2 * (lane & 3), d[4 * j + 2 * h], d[4 * j + 2 * h + 1]);
}

template <int BN, int STAGES, int WAITN, bool TRANSW>
__device__ __forceinline__ void wg_s2s_tile(const __nv_bfloat16* x, const __nv_bfloat16* w,
                                            const void* bias, int bdt, void* y, int ydt,
                                            const int* sortedScattered, int e, int rStart,
                                            int rows, int n0, int inDim, int outDim, int fanOut,
                                            int groupedIn, int groupedOut, uint32_t lboB,
                                            uint32_t smem) {
  // this thread's A chunks: rows tid / 8 + 32 i of the tile, chunk tid % 8, every k step
  const __nv_bfloat16* arow[4];
#pragma unroll
  for (int i = 0; i < 4; i++) {
    int r = threadIdx.x / 8 + 32 * i;
    arow[i] = nullptr;
    if (r < rows) {
      int p = rStart + r;
      long long src = groupedIn ? p : sortedScattered[p] / fanOut;
      arow[i] = x + src * inDim;
    }
  }
  const __nv_bfloat16* we = w + (long long)e * inDim * outDim;
  int c = threadIdx.x % 8;
  auto load = [&](uint32_t sA, uint32_t sB, int kt) {
    int k0 = kt * WG_BK;
#pragma unroll
    for (int i = 0; i < 4; i++) {
      int r = threadIdx.x / 8 + 32 * i;
      bool ok = arow[i] != nullptr && k0 + c * 8 < inDim;
      mm_cp16(sA + wg_swz(r, c), ok ? (const void*)(arow[i] + k0 + c * 8) : (const void*)x, ok);
    }
    if (TRANSW) {  // B (n, k) = rows of W[e]
      wg_load_k<BN>(sB, w, [&](int n, int k) -> const __nv_bfloat16* {
        return (n0 + n < outDim && k0 + k < inDim) ? we + (long long)(n0 + n) * inDim + k0 + k
                                                   : nullptr;
      });
    } else {  // B (k, n) = W[e] as stored
      wg_load_mn<BN>(sB, w, [&](int k, int n) -> const __nv_bfloat16* {
        return (k0 + k < inDim && n0 + n < outDim) ? we + (long long)(k0 + k) * outDim + n0 + n
                                                   : nullptr;
      });
    }
  };
  float d[BN / 2];
  wg_mainloop<BN, STAGES, WAITN, 0, TRANSW ? 0 : 1>(d, smem, (inDim + WG_BK - 1) / WG_BK, lboB,
                                                    load);
  bool pairs = ydt == DT_BF16 && bias == nullptr;
  wg_epilogue<BN>(d, [&](int r, int cc, float v0, float v1) {
    int n = n0 + cc;
    if (r >= rows || n >= outDim) return;
    int p = rStart + r;
    long long o = (long long)(groupedOut ? p : sortedScattered[p]) * outDim + n;
    if (pairs) {  // outDim is even (a multiple of 8)
      *reinterpret_cast<__nv_bfloat162*>((__nv_bfloat16*)y + o) = __floats2bfloat162_rn(v0, v1);
      return;
    }
    if (bias != nullptr) {
      long long bi = (long long)e * outDim + n;
      v0 += ldf(bias, bi, bdt);
      v1 += ldf(bias, bi + 1, bdt);
    }
    stf(y, o, ydt, v0);
    stf(y, o + 1, ydt, v1);
  });
}

template <int BN, int STAGES, int WAITN>
__device__ __forceinline__ void wg_s2s(const __nv_bfloat16* x, const __nv_bfloat16* w,
                                       const void* bias, int bdt, void* y, int ydt,
                                       const int* sortedExpert, const int* sortedScattered, int M,
                                       int E, int inDim, int outDim, int transW, int fanOut,
                                       int groupedIn, int groupedOut, int lboB) {
  extern __shared__ __align__(128) unsigned char wg_smem[];
  constexpr int SMEM = wg_smem_bytes(BN, STAGES);
  int* tileStart = reinterpret_cast<int*>(wg_smem + SMEM);  // (E + 1) row tiles before e
  int* rowEnd = tileStart + E + 1;                          // (E) end of e's rows
  moe_build_tiles<WG_BM>(sortedExpert, M, E, tileStart, rowEnd);
  int rowTiles = tileStart[E], nTiles = (outDim + BN - 1) / BN;
  long long total = (long long)rowTiles * nTiles;
  uint32_t smem = (mm_smem_addr(wg_smem) + 1023) & ~1023u;
  for (long long t = blockIdx.x; t < total; t += gridDim.x) {
    MoeTile tl = moe_tile<WG_BM, BN>(t, tileStart, rowEnd, E, rowTiles, nTiles);
    int e = tl.e, rStart = tl.rStart, rows = tl.rows;
    __syncthreads();  // both warpgroups are done with the previous tile's stages
    if (transW) {
      wg_s2s_tile<BN, STAGES, WAITN, true>(x, w, bias, bdt, y, ydt, sortedScattered, e, rStart,
                                           rows, tl.n0, inDim, outDim, fanOut, groupedIn,
                                           groupedOut, lboB, smem);
    } else {
      wg_s2s_tile<BN, STAGES, WAITN, false>(x, w, bias, bdt, y, ydt, sortedScattered, e, rStart,
                                            rows, tl.n0, inDim, outDim, fanOut, groupedIn,
                                            groupedOut, lboB, smem);
    }
  }
}

// dW[e] (O, I) += dy_e^T x_e: A = dy^T (M-major: dy rows are k), B = x (N-major). Block (i tile,
// o tile, e).
template <int BN, int STAGES, int WAITN>
__device__ __forceinline__ void wg_xty(const __nv_bfloat16* x, const __nv_bfloat16* dy,
                                       const int* offsets, void* dw, int wdt, int I, int O,
                                       int lboB) {
  extern __shared__ __align__(128) unsigned char wg_smem[];
  int e = blockIdx.z;
  int p0 = e == 0 ? 0 : offsets[e - 1], p1 = offsets[e];
  if (p1 <= p0) return;
  int o0 = blockIdx.y * WG_BM, i0 = blockIdx.x * BN;
  uint32_t smem = (mm_smem_addr(wg_smem) + 1023) & ~1023u;
  auto load = [&](uint32_t sA, uint32_t sB, int kt) {
    int k0 = p0 + kt * WG_BK;
    wg_load_mn<WG_BM>(sA, dy, [&](int k, int o) -> const __nv_bfloat16* {
      return (k0 + k < p1 && o0 + o < O) ? dy + (long long)(k0 + k) * O + o0 + o : nullptr;
    });
    wg_load_mn<BN>(sB, x, [&](int k, int i) -> const __nv_bfloat16* {
      return (k0 + k < p1 && i0 + i < I) ? x + (long long)(k0 + k) * I + i0 + i : nullptr;
    });
  };
  float d[BN / 2];
  wg_mainloop<BN, STAGES, WAITN, 1, 1>(d, smem, (p1 - p0 + WG_BK - 1) / WG_BK, lboB, load);
  wg_epilogue<BN>(d, [&](int r, int c, float v0, float v1) {
    int o = o0 + r, i = i0 + c;
    if (o >= O || i >= I) return;  // I is a multiple of 8: i + 1 < I too
    long long at = ((long long)e * O + o) * I + i;
    if (wdt == DT_F32) {
      float2* q = reinterpret_cast<float2*>((float*)dw + at);
      float2 v = *q;
      v.x += v0;
      v.y += v1;
      *q = v;
    } else {
      addf(dw, at, wdt, v0);
      addf(dw, at + 1, wdt, v1);
    }
  });
}
#endif  // WG_ON

#ifdef WG_ON
#define WG_BODY(...) __VA_ARGS__
#else
#define WG_BODY(...) __trap()
#endif

// Shipped configurations (kernels/lab/moe/README.md): "n256" 128 x 256 tiles, 4 stages, one block
// per SM, wgmma one group behind; "n128" 128 x 128 tiles, 3 stages, two blocks per SM, wgmma
// waited each step. lboB: 8192 (WG_SLAB); a kernel argument so the lab can try the descriptor
// alternatives without a rebuild. Dynamic shared memory wg_smem_bytes(BN, STAGES) + (2E + 1) ints
// for scatter2scatter, wg_smem_bytes(BN, STAGES) for groupXtY.
#define WG_S2S_ARGS                                                                            \
  const __nv_bfloat16 *x, const __nv_bfloat16 *w, const void *bias, int bdt, void *y, int ydt, \
      const int *sortedExpert, const int *sortedScattered, int M, int E, int inDim, int outDim, \
      int transW, int fanOut, int groupedIn, int groupedOut, int lboB
#define WG_S2S_PASS                                                                           \
  x, w, bias, bdt, y, ydt, sortedExpert, sortedScattered, M, E, inDim, outDim, transW, fanOut, \
      groupedIn, groupedOut, lboB
#define WG_XTY_ARGS                                                                      \
  const __nv_bfloat16 *x, const __nv_bfloat16 *dy, const int *offsets, void *dw, int wdt, \
      int I, int O, int lboB
#define WG_XTY_PASS x, dy, offsets, dw, wdt, I, O, lboB

MT_KERNEL void __launch_bounds__(256, 1) scatter2scatter_wgmma_n256_kernel3(WG_S2S_ARGS) {
  WG_BODY(wg_s2s<256, 4, 1>(WG_S2S_PASS));
}
MT_KERNEL void __launch_bounds__(256, 2) scatter2scatter_wgmma_n128_kernel3(WG_S2S_ARGS) {
  WG_BODY(wg_s2s<128, 3, 0>(WG_S2S_PASS));
}
MT_KERNEL void __launch_bounds__(256, 1) group_xty_wgmma_n256_kernel3(WG_XTY_ARGS) {
  WG_BODY(wg_xty<256, 4, 1>(WG_XTY_PASS));
}
MT_KERNEL void __launch_bounds__(256, 2) group_xty_wgmma_n128_kernel3(WG_XTY_ARGS) {
  WG_BODY(wg_xty<128, 3, 0>(WG_XTY_PASS));
}
