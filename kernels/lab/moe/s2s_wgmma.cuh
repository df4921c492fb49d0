// Variant 3 (lab only, sm_90a): the K-major scatter2scatter (x @ W^T: the two forward products)
// on wgmma m64n128k16. Two warpgroups per block, each 64 rows of a 128 x 128 tile; a 3-stage
// cp.async pipeline (gathered x rows by per-row pointers, weight rows straight) into 128-byte-
// swizzled shared tiles that the wgmma descriptors read; persistent over (expert, tile) like
// variant 2. Not warp-specialised and no TMA yet: the step before variant B of issue 10.
#pragma once
// needs moe_mma.cu (mm_cp16, mm_commit, mm_wait, MM_GROUP_M) included first, as moe_lab.cu does

#define WG_BM 128
#define WG_BN 128
#define WG_BK 64  // one 128-byte swizzle row of bf16
#define WG_STAGES 3
#define WG_TILE_BYTES (WG_BM * WG_BK * 2)
#define WG_STAGE_BYTES (2 * WG_TILE_BYTES)
#define WG_SMEM (WG_STAGES * WG_STAGE_BYTES + 1024)  // + slack to align the tiles to 1024 bytes

// Byte offset of 16-byte chunk c (0..7) of row r in a 128B-swizzled K-major tile.
__device__ __forceinline__ uint32_t wg_swz(int r, int c) {
  return r * 128 + ((c ^ (r & 7)) << 4);
}

// sm_90 shared-memory matrix descriptor: K-major, 128B swizzle, 8-row groups 1024 bytes apart.
__device__ __forceinline__ uint64_t wg_desc(uint32_t addr) {
  uint64_t d = 0;
  d |= (uint64_t)((addr & 0x3FFFF) >> 4);
  d |= (uint64_t)1 << 16;           // leading byte offset (unused for swizzled K-major)
  d |= (uint64_t)(1024 >> 4) << 32;  // stride byte offset
  d |= (uint64_t)1 << 62;           // SWIZZLE_128B
  return d;
}

__device__ __forceinline__ void wg_mma(float (&d)[64], uint64_t a, uint64_t b, int scaleD) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(a), "l"(b), "r"(scaleD));
}

template <bool TRANSW_UNUSED = true>
__device__ __forceinline__ void wg_tile(const __nv_bfloat16* x, const __nv_bfloat16* w, void* y,
                                        const int* sortedScattered, int e, int rStart, int rows,
                                        int n0, int inDim, int outDim, int fanOut, int groupedIn,
                                        int groupedOut, uint32_t smem) {
  int tid = threadIdx.x;
  // chunks: 128 rows x 8 chunks per operand = 4 per thread; rows tid / 8 + 32 i, chunk tid % 8
  const __nv_bfloat16* arow[4];
  const __nv_bfloat16* brow[4];
  const __nv_bfloat16* we = w + (long long)e * inDim * outDim;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    int r = tid / 8 + 32 * i;
    arow[i] = nullptr;
    if (r < rows) {
      int p = rStart + r;
      long long src = groupedIn ? p : sortedScattered[p] / fanOut;
      arow[i] = x + src * inDim;
    }
    brow[i] = n0 + r < outDim ? we + (long long)(n0 + r) * inDim : nullptr;
  }
  int c = tid % 8;
  auto load = [&](int stage, int kt) {
    uint32_t sA = smem + stage * WG_STAGE_BYTES, sB = sA + WG_TILE_BYTES;
    int k = kt * WG_BK + c * 8;
#pragma unroll
    for (int i = 0; i < 4; i++) {
      int r = tid / 8 + 32 * i;
      bool okA = arow[i] != nullptr && k < inDim, okB = brow[i] != nullptr && k < inDim;
      mm_cp16(sA + wg_swz(r, c), okA ? (const void*)(arow[i] + k) : (const void*)x, okA);
      mm_cp16(sB + wg_swz(r, c), okB ? (const void*)(brow[i] + k) : (const void*)w, okB);
    }
  };
  float d[64];
#pragma unroll
  for (int i = 0; i < 64; i++) d[i] = 0.f;
  int kTiles = (inDim + WG_BK - 1) / WG_BK;
  int wg = tid / 128;
#pragma unroll
  for (int s = 0; s < WG_STAGES - 1; s++) {
    if (s < kTiles) load(s, s);
    mm_commit();
  }
  for (int kt = 0; kt < kTiles; kt++) {
    mm_wait<WG_STAGES - 2>();
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();
    int next = kt + WG_STAGES - 1;
    if (next < kTiles) load(next % WG_STAGES, next);
    mm_commit();
    uint32_t sA = smem + (kt % WG_STAGES) * WG_STAGE_BYTES, sB = sA + WG_TILE_BYTES;
    uint64_t da = wg_desc(sA + wg * 64 * 128), db = wg_desc(sB);
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
    for (int kk = 0; kk < 4; kk++) wg_mma(d, da + 2 * kk, db + 2 * kk, 1);  // +32 bytes along k
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
  }
  mm_wait<0>();
  int lane = tid & 31, warp = (tid & 127) / 32;
#pragma unroll
  for (int j = 0; j < 16; j++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      int r = wg * 64 + warp * 16 + lane / 4 + 8 * h, n = n0 + 8 * j + 2 * (lane & 3);
      if (r >= rows || n >= outDim) continue;
      int p = rStart + r;
      long long o = (long long)(groupedOut ? p : sortedScattered[p]) * outDim + n;
      *reinterpret_cast<__nv_bfloat162*>((__nv_bfloat16*)y + o) =
          __floats2bfloat162_rn(d[4 * j + 2 * h], d[4 * j + 2 * h + 1]);
    }
}

// x @ W[e]^T with W (E, outDim, inDim), bf16 y; inDim and outDim multiples of 8. Persistent.
// Dynamic shared memory WG_SMEM + (2E + 1) ints.
extern "C" __global__ void __launch_bounds__(256, 2)
scatter2scatter_wgmma_kernel3(const __nv_bfloat16* x, const __nv_bfloat16* w, void* y,
                              const int* sortedExpert, const int* sortedScattered, int M, int E,
                              int inDim, int outDim, int fanOut, int groupedIn, int groupedOut) {
  extern __shared__ __align__(128) unsigned char wg_smem[];
  int* tileStart = reinterpret_cast<int*>(wg_smem + WG_SMEM);
  int* rowEnd = tileStart + E + 1;
  for (int e = threadIdx.x; e < E; e += blockDim.x) {
    int lo = 0, hi = M;
    while (lo < hi) {
      int mid = (lo + hi) >> 1;
      if (sortedExpert[mid] <= e) lo = mid + 1; else hi = mid;
    }
    rowEnd[e] = lo;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int t = 0, start = 0;
    tileStart[0] = 0;
    for (int e = 0; e < E; e++) {
      t += (rowEnd[e] - start + WG_BM - 1) / WG_BM;
      tileStart[e + 1] = t;
      start = rowEnd[e];
    }
  }
  __syncthreads();
  int rowTiles = tileStart[E], nTiles = (outDim + WG_BN - 1) / WG_BN;
  long long total = (long long)rowTiles * nTiles, perGroup = (long long)MM_GROUP_M * nTiles;
  uint32_t smem = (mm_smem_addr(wg_smem) + 1023) & ~1023u;
  for (long long t = blockIdx.x; t < total; t += gridDim.x) {
    int first = (int)(t / perGroup) * MM_GROUP_M;
    int size = min(rowTiles - first, MM_GROUP_M);
    int within = (int)(t % perGroup);
    int rt = first + within % size, nt = within / size;
    int lo = 0, hi = E;
    while (lo < hi) {
      int mid = (lo + hi) >> 1;
      if (tileStart[mid + 1] <= rt) lo = mid + 1; else hi = mid;
    }
    int e = lo;
    int rStart = (e == 0 ? 0 : rowEnd[e - 1]) + (rt - tileStart[e]) * WG_BM;
    int rows = min(rowEnd[e] - rStart, WG_BM);
    __syncthreads();
    wg_tile(x, w, y, sortedScattered, e, rStart, rows, nt * WG_BN, inDim, outDim, fanOut,
            groupedIn, groupedOut, smem);
  }
}
