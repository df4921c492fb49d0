// bf16 grouped products of ScatterMoE, variant 5 (kernels/lab/moe): sm_90a, warp-specialised.
// Each block is three warpgroups: warpgroups 0 and 1 are consumers (wgmma m64nBNk16 on rows
// 64 g .. 64 g + 63 of a 128 x BN tile, float32 accumulators, as variant 3), warpgroup 2 is the
// producer. Shared memory holds WS_STAGES stages of (A 128 x 64, B BN x 64) in the 128-byte
// swizzle of moe_wgmma.cu; every stage has a "full" and an "empty" mbarrier. The producer waits
// for a stage to be empty, then one thread arms its full barrier with the byte count and issues
// TMA (cp.async.bulk.tensor) for the weight tile; gathered token rows (rows scattered in x) come
// by 16-byte cp.async from the 128 producer threads, each finishing with
// cp.async.mbarrier.arrive.noinc on the same full barrier. Rows that are contiguous (grouped
// input) come by TMA as well. Consumers wait for full, run the four wgmma of the k step, keep one
// wgmma group in flight and release the stage before (one arrive per consumer warp on empty).
// setmaxnreg moves registers from the producer (80) to the consumers (208): the block is launched
// with 384 x 168 registers and the consumers can only take what the producer gives back
// (128 x 80 + 256 x 208 <= 384 x 168; the first build asked for 216, more than was released,
// and setmaxnreg.inc waited forever: the lab and the GPU tests hung, H200 2026-12-02 17:19 UTC).
//
// Persistent over the same (expert row tile, column tile) order as variant 3 (each warpgroup
// walks the tile list on its own; no communication beyond the stage barriers), so the producer
// loads the next tile's first stages while the consumers run the epilogue of this one.
//
// group_xty_ws: dW[e] += dy_e^T x_e with both operands MN-major by TMA (64 x 64 boxes, one per
// 64-column slab), persistent over (expert, o tile, i tile); the last k step of an expert whose
// row count is not a multiple of 64 is copied by cp.async with zero fill instead (TMA would read
// the next expert's rows). float32 read-modify-write epilogue, each element owned by one tile.
//
// Tensor maps (host, cuTensorMapEncodeTiled, bf16, 128-byte swizzle, zero out-of-bounds fill):
//   weight, x W^T  (W (E, out, in)):  dims {in, out, E},  box {64, BN, 1}
//   weight, x W    (W (E, in, out)):  dims {out, in, E},  box {64, 64, 1}
//   rows, grouped in (x (M, in)):     dims {in, M},       box {64, 128}
//   dW operands (dy (M, O), x (M, I)): dims {O, M} / {I, M}, box {64, 64}
// Requirements as variant 3 (contiguous dimensions multiples of 8, 16-byte aligned bases).

#include <cuda.h>  // CUtensorMap (a 128-byte opaque struct; no driver calls in device code)
#include "swiglu.cuh"

#define WS_THREADS 384

__host__ __device__ constexpr int ws_smem_bytes(int bn, int stages) {
  return wg_smem_bytes(bn, stages) + 2 * stages * 8;  // + the full and empty barriers
}

#ifdef WG_ON
__device__ __forceinline__ void ws_bar_init(uint32_t bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void ws_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void ws_arrive_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
}
// Waits for the phase of parity `parity` to complete. A wait past 20 s (a pipeline bug, never a
// slow step) traps, so a deadlock fails the launch instead of hanging the process. Because of the
// trap, ptxas compiles the consumers' code within the 168 registers the kernel starts with, not
// the 208 of setmaxnreg.inc (they fit; a build ending the waits in brkpt instead, which fails the
// launch the same way and lets ptxas use the 208, timed the same: kernels/lab/moe, variant 21).
__device__ __forceinline__ void ws_wait(uint32_t bar, uint32_t parity) {
  uint32_t done;
  uint64_t start = 0;
  for (;;) {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        " selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
    if (done) return;
    uint64_t now;
    asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(now));
    if (start == 0) {
      start = now;
    } else if (now - start > 20000000000ull) {
      __trap();
    }
  }
}
// The arrive fires when this thread's earlier cp.async copies have landed (count set at init).
__device__ __forceinline__ void ws_cp_arrive(uint32_t bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void ws_tma2(uint32_t dst, const CUtensorMap* tm, int c0, int c1,
                                        uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst),
      "l"(tm), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
}
__device__ __forceinline__ void ws_tma3(uint32_t dst, const CUtensorMap* tm, int c0, int c1,
                                        int c2, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(dst),
      "l"(tm), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
      : "memory");
}

// Cluster helpers (variant 9: two CTAs of a cluster share the weight tile by TMA multicast).
__device__ __forceinline__ uint32_t ws_cluster_rank() {
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
}
__device__ __forceinline__ void ws_cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::
                   : "memory");
}
// Arrives on the barrier at the same shared-memory offset in CTA `rank` of the cluster, with the
// default (.release.cta) semantics: the stage was read by wgmma, which wgmma.wait_group has
// already completed. (.release.cluster put a MEMBAR before every arrive: ncu, H200 2026-12-02
// 19:19 UTC, "Stall Membar" 5.4 of the first variant 9, tensor pipe 52% against variant 5's 85%.)
__device__ __forceinline__ void ws_arrive_remote(uint32_t bar, uint32_t rank) {
  asm volatile(
      "{\n .reg .b32 ra;\n mapa.shared::cluster.u32 ra, %0, %1;\n"
      " mbarrier.arrive.shared::cluster.b64 _, [ra];\n}\n" ::"r"(bar),
      "r"(rank)
      : "memory");
}
// TMA into the same shared-memory offset of every CTA in `mask`, completing on each one's barrier
// at the offset of `bar`.
__device__ __forceinline__ void ws_tma3_mc(uint32_t dst, const CUtensorMap* tm, int c0, int c1,
                                           int c2, uint32_t bar, uint16_t mask) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      ".multicast::cluster [%0], [%1, {%2, %3, %4}], [%5], %6;\n" ::"r"(dst),
      "l"(tm), "r"(c0), "r"(c1), "r"(c2), "r"(bar), "h"(mask)
      : "memory");
}

__device__ __forceinline__ void ws_tma2_mc(uint32_t dst, const CUtensorMap* tm, int c0, int c1,
                                           uint32_t bar, uint16_t mask) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      ".multicast::cluster [%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(dst),
      "l"(tm), "r"(c0), "r"(c1), "r"(bar), "h"(mask)
      : "memory");
}

// Barriers: full[s] at bars + 8 s, empty[s] at bars + 8 (STAGES + s). fullCount arrivals fill a
// stage (1: the TMA thread alone; 129: plus the 128 producer threads' cp.async arrivals); a stage
// is empty after one arrive per consumer warp (8) of each of the CL CTAs that write into it.
template <int STAGES, int CL = 1>
__device__ __forceinline__ void ws_init_bars(uint32_t bars, int fullCount) {
  if (threadIdx.x == 0) {
#pragma unroll
    for (int s = 0; s < STAGES; s++) {
      ws_bar_init(bars + 8 * s, fullCount);
      ws_bar_init(bars + 8 * (STAGES + s), 8 * CL);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  if (CL > 1) {
    ws_cluster_sync();  // the peer's barriers exist before anything arrives on them
  } else {
    __syncthreads();
  }
}

// One k step of the consumers: wait for stage s, four wgmma, one group kept in flight; releases
// the stage of the step before (prevS >= 0).
template <int BN, int TA, int TB, bool CP, int CL = 1>
__device__ __forceinline__ void ws_consume(float (&d)[BN / 2], uint32_t sA, uint32_t full,
                                           uint32_t parity, uint32_t prevEmpty, bool release) {
  constexpr int A_BYTES = WG_BM * WG_BK * 2;
  int wg = threadIdx.x / 128;
  ws_wait(full, parity);
  if (CP) asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // cp.async data
  uint32_t sB = sA + A_BYTES;
  uint64_t da = TA ? wg_desc(sA + wg * WG_SLAB, WG_SLAB, 1024) : wg_desc(sA + wg * 64 * 128, 16, 1024);
  uint64_t db = TB ? wg_desc(sB, WG_SLAB, 1024) : wg_desc(sB, 16, 1024);
  wg_fence_acc(d);
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
  for (int kk = 0; kk < WG_BK / 16; kk++) {
    uint64_t a = da + (TA ? kk * (2048 >> 4) : kk * (32 >> 4));
    uint64_t b = db + (TB ? kk * (2048 >> 4) : kk * (32 >> 4));
    wg_mma<BN, TA, TB>(d, a, b);
  }
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
  asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
  wg_fence_acc(d);
  if (release && (threadIdx.x & 31) == 0) {
    ws_arrive(prevEmpty);
    if (CL > 1) ws_arrive_remote(prevEmpty, ws_cluster_rank() ^ 1);
  }
}

// Stores the tile: thread rows r0 and r0 + 8 (output row offsets computed once), column pairs
// 8 j + 2 (lane & 3). Loops kept small so they unroll fully (a partly unrolled loop indexes the
// accumulators at run time, which puts them in local memory).
template <int BN>
__device__ __forceinline__ void ws_s2s_epilogue(const float (&d)[BN / 2], const MoeTile& tl,
                                                const void* bias, int bdt, void* y, int ydt,
                                                const int* sortedScattered, int outDim,
                                                int groupedOut) {
  int tid = threadIdx.x, lane = tid & 31;
  int r0 = (tid / 128) * 64 + ((tid & 127) / 32) * 16 + lane / 4;
  long long row[2];
#pragma unroll
  for (int h = 0; h < 2; h++) {
    int r = r0 + 8 * h, p = tl.rStart + r;
    row[h] = r < tl.rows ? (long long)(groupedOut ? p : sortedScattered[p]) * outDim : -1;
  }
  int c0 = tl.n0 + 2 * (lane & 3);
  if (ydt == DT_BF16 && bias == nullptr) {
    __nv_bfloat16* yb = (__nv_bfloat16*)y;
#pragma unroll
    for (int j = 0; j < BN / 8; j++) {
      int n = c0 + 8 * j;
#pragma unroll
      for (int h = 0; h < 2; h++)
        if (row[h] >= 0 && n < outDim)
          *reinterpret_cast<__nv_bfloat162*>(yb + row[h] + n) =
              __floats2bfloat162_rn(d[4 * j + 2 * h], d[4 * j + 2 * h + 1]);
    }
    return;
  }
#pragma unroll
  for (int j = 0; j < BN / 8; j++) {
    int n = c0 + 8 * j;
#pragma unroll
    for (int h = 0; h < 2; h++) {
      if (row[h] < 0 || n >= outDim) continue;
      float v0 = d[4 * j + 2 * h], v1 = d[4 * j + 2 * h + 1];
      if (bias != nullptr) {
        long long bi = (long long)tl.e * outDim + n;
        v0 += ldf(bias, bi, bdt);
        v1 += ldf(bias, bi + 1, bdt);
      }
      stf(y, row[h] + n, ydt, v0);
      stf(y, row[h] + n + 1, ydt, v1);
    }
  }
}

// Variant 16: ws_s2s_epilogue for bf16 y without bias through shared memory. Each consumer warp
// owns 16 rows of the tile and a 2 KiB buffer (16 rows of 64 columns, the 16-byte chunks of row r
// XORed with r & 7); per 64-column round it writes its accumulators there by stmatrix (four
// 8 x 8 matrices per instruction, the accumulator fragment's own layout) and reads them back as
// 16-byte row chunks, so each store writes four full 128-byte row pieces (16 st.global.v4 per
// thread per tile instead of 64 scattered 4-byte stores, each of which fills a quarter sector of
// 8 rows). Only __syncwarp between rounds: no other warp touches the buffer. Same values and
// rounding as ws_s2s_epilogue (one bf16 rounding per element); partial tiles by per-lane row and
// 8-column checks (outDim is a multiple of 8).
#define WS_ST_OUT_BYTES (8 * 16 * 128)  // eight consumer warps x 16 rows x 128 bytes
template <int BN>
__device__ __forceinline__ void ws_s2s_epilogue_st(const float (&d)[BN / 2], const MoeTile& tl,
                                                   __nv_bfloat16* y, const int* sortedScattered,
                                                   int outDim, int groupedOut, uint32_t out) {
  int tid = threadIdx.x, lane = tid & 31;
  uint32_t buf = out + (tid / 32) * (16 * 128);
  int w0 = (tid / 128) * 64 + ((tid & 127) / 32) * 16;  // the warp's first row of the tile
  long long row[4];  // rows lane / 8 + 4 i of the warp's 16: output element offsets, or -1
#pragma unroll
  for (int i = 0; i < 4; i++) {
    int r = w0 + lane / 8 + 4 * i, p = tl.rStart + r;
    row[i] = r < tl.rows ? (long long)(groupedOut ? p : sortedScattered[p]) * outDim : -1;
  }
  // stmatrix .x4: lanes 8 m .. 8 m + 7 address the rows of matrix m = (rows 8 (m & 1) .., column
  // block m / 2 of the pair), matching the registers {row r, block j}, {r + 8, j}, {r, j + 1},
  // {r + 8, j + 1}
  int mr = (lane & 7) + 8 * ((lane >> 3) & 1), mc = lane >> 4;
#pragma unroll
  for (int q = 0; q < BN / 64; q++) {
    __syncwarp();  // the previous round's reads are done
#pragma unroll
    for (int jj = 0; jj < 8; jj += 2) {
      int j = 8 * q + jj;
      __nv_bfloat162 v0 = __floats2bfloat162_rn(d[4 * j], d[4 * j + 1]),
                     v1 = __floats2bfloat162_rn(d[4 * j + 2], d[4 * j + 3]),
                     v2 = __floats2bfloat162_rn(d[4 * j + 4], d[4 * j + 5]),
                     v3 = __floats2bfloat162_rn(d[4 * j + 6], d[4 * j + 7]);
      uint32_t addr = buf + mr * 128 + (((jj + mc) ^ (mr & 7)) << 4);
      asm volatile(
          "stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr),
          "r"(*reinterpret_cast<uint32_t*>(&v0)), "r"(*reinterpret_cast<uint32_t*>(&v1)),
          "r"(*reinterpret_cast<uint32_t*>(&v2)), "r"(*reinterpret_cast<uint32_t*>(&v3))
          : "memory");
    }
    __syncwarp();
    int c = lane & 7, n = tl.n0 + 64 * q + 8 * c;
#pragma unroll
    for (int i = 0; i < 4; i++) {
      int rr = lane / 8 + 4 * i;
      uint4 v;
      asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n"
                   : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                   : "r"(buf + rr * 128 + ((c ^ (rr & 7)) << 4))
                   : "memory");
      if (row[i] >= 0 && n < outDim) *reinterpret_cast<uint4*>(y + row[i] + n) = v;
    }
  }
}

// Variant 10: SwiGLU fused into the epilogues of the expert MLP's products (GLU argument of
// ws_s2s; 0 = none). Rounding is the unfused path's at every step (h, a, the ungated and the
// gated dA are rounded to bf16 where the unfused passes store them, and swiglu.cuh does the
// math), so h, a and dH are the unfused values bit for bit; only the gate gradient's sum runs in
// another order (per tile, then over the tiles in order: deterministic).
//
// GLU 1, the first product h = x [W1; W3]^T (gathered x, grouped output): a tile is 128 columns of
// F, its B stage the 128 gate rows n0.. and the 128 up rows F + n0.. of the weight (two TMA boxes
// of 64 x 128), so accumulator column j of the gate half and of the up half are the same output
// column in one thread: the epilogue writes h (M, 2F) and a = silu(g) * u (M, F).
// GLU 2, the down product's dX (dA = dy W2, dy rows gathered from token order): per element the ungated dA, the gate
// of the row's token slot, the forward's h; writes dH (M, 2F) of the gated dA, and per row and
// tile the tile's part of dot(dA_ungated, a) (the gate's gradient, a recomputed from h) into
// partial (M, ceil(F / BN)); gate_partials_reduce_kernel sums them into dGates.
struct WsGlu {
  const __nv_bfloat16* h;  // GLU 2: the forward's h (M, 2F)
  __nv_bfloat16* act;      // GLU 1: a (M, F)
  const float* gates;      // GLU 2: F32 (M) by token slot
  float* partial;          // GLU 2: F32 (M, ceil(F / BN))
  const CUtensorMap* tmH;  // variant 11: h (M, 2F); GLU 1 stores it as {2F, M} in 64 x 64 boxes,
                           // GLU 2 loads it as {F, 2, M} in {64, 1, 64} boxes
  const CUtensorMap* tmAct;  // variant 11, GLU 1: a (M, F) as {F, M} in 64 x 64 boxes
  const CUtensorMap* tmDh;   // variant 11, GLU 2: dH (M, 2F) as {F, 2, M} in {64, 1, 64} boxes
  // variant 59: the start groups (ws_stagger; every scatter2scatter kernel through TMA passes them
  // here, the plain ones with no other field)
  int staggerCycles = 0, staggerPhases = 1;
};

// Variant 59, the start groups: the producer of block b (of cluster b / CL) starts
// (b / CL * phases / (grid / CL)) x cycles clock cycles late, so that the persistent CTAs, whose
// tiles all take about as long, reach their epilogues (the tile's bytes to and from DRAM) in
// `phases` groups a fraction of a tile apart instead of all at once; its consumers wait for its
// stages as ever. Both CTAs of a cluster start together. cycles <= 0 or phases <= 1: no delay.
template <int CL = 1>
__device__ __forceinline__ void ws_stagger(int cycles, int phases) {
  if (cycles <= 0 || phases <= 1) return;
  long long g = (long long)(blockIdx.x / CL) * phases / (gridDim.x / CL);
  long long until = clock64() + g * cycles;
  while (clock64() < until) __nanosleep(128);
}

// GLU 1's staging for TMA stores: 16 KiB per consumer warpgroup (its 64 rows x 128 columns as two
// 64 x 64 boxes in the 128-byte swizzle), after the stages.
#define WS_GLU_OUT_BYTES (2 * 64 * 128 * 2)

__device__ __forceinline__ void ws_bar_wg(int id) {  // named barrier over one warpgroup
  asm volatile("bar.sync %0, 128;\n" ::"r"(id) : "memory");
}
__device__ __forceinline__ void ws_tma_store2(const CUtensorMap* tm, uint32_t src, int c0, int c1) {
  asm volatile(
      "cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%2, %3}], [%1];\n" ::"l"(tm),
      "r"(src), "r"(c0), "r"(c1)
      : "memory");
}
__device__ __forceinline__ void ws_tma_store3(const CUtensorMap* tm, uint32_t src, int c0, int c1,
                                              int c2) {
  asm volatile(
      "cp.async.bulk.tensor.3d.global.shared::cta.bulk_group [%0, {%2, %3, %4}], [%1];\n" ::"l"(tm),
      "r"(src), "r"(c0), "r"(c1), "r"(c2)
      : "memory");
}
__device__ __forceinline__ void ws_store_commit() {
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
}
// The staging buffer may be written again once the earlier stores have read it.
__device__ __forceinline__ void ws_store_wait_read() {
  asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
}
__device__ __forceinline__ void ws_store_wait_read1() {  // all but the latest group have read
  asm volatile("cp.async.bulk.wait_group.read 1;\n" ::: "memory");
}
__device__ __forceinline__ void ws_store_wait_all() {
  asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory");
}

// Variant 56: from a column pair's gate and up values (rounded as h stores them), the pair's p, q and
// a as bf16x2 words: swiglu_factors_kernel's values (one sigmoid each, a = (g s) u as swiglu_fwd).
__device__ __forceinline__ void ws_glu_factors(float2 g, float2 u, uint32_t (&pk)[3]) {
  float s0 = sigmoidf_(g.x), s1 = sigmoidf_(g.y), p0, q0, p1, q1;
  swiglu_factors_s(g.x, u.x, s0, p0, q0);
  swiglu_factors_s(g.y, u.y, s1, p1, q1);
  __nv_bfloat162 p = __floats2bfloat162_rn(p0, p1), q = __floats2bfloat162_rn(q0, q1),
                 a = __floats2bfloat162_rn(g.x * s0 * u.x, g.y * s1 * u.y);
  pk[0] = *reinterpret_cast<uint32_t*>(&p);
  pk[1] = *reinterpret_cast<uint32_t*>(&q);
  pk[2] = *reinterpret_cast<uint32_t*>(&a);
}

// Thread rows r0, r0 + 8 and column pairs 8 j + 2 (lane & 3) of the tile, as ws_s2s_epilogue.
// FAC (variant 56): h's two halves hold the backward's factors p and q (swiglu_factors_s) instead
// of the gate and up values.
template <int BN, bool FAC = false>
__device__ __forceinline__ void ws_glu_fwd_epilogue(const float (&d)[BN / 2], const MoeTile& tl,
                                                    __nv_bfloat16* h, __nv_bfloat16* act, int F) {
  int tid = threadIdx.x, lane = tid & 31;
  int r0 = (tid / 128) * 64 + ((tid & 127) / 32) * 16 + lane / 4;
  int c0 = tl.n0 + 2 * (lane & 3);
  constexpr int HALF = BN / 16;  // column pairs of the gate half per thread
#pragma unroll
  for (int hh = 0; hh < 2; hh++) {
    int r = r0 + 8 * hh;
    if (r >= tl.rows) continue;
    long long p = tl.rStart + r;
    __nv_bfloat16* hr = h + p * 2 * F;
    __nv_bfloat16* ar = act + p * F;
#pragma unroll
    for (int j = 0; j < HALF; j++) {
      int n = c0 + 8 * j;
      if (n >= F) continue;
      __nv_bfloat162 g2 = __floats2bfloat162_rn(d[4 * j + 2 * hh], d[4 * j + 2 * hh + 1]);
      __nv_bfloat162 u2 =
          __floats2bfloat162_rn(d[4 * (j + HALF) + 2 * hh], d[4 * (j + HALF) + 2 * hh + 1]);
      float2 g = __bfloat1622float2(g2), u = __bfloat1622float2(u2);
      if constexpr (FAC) {
        uint32_t pk[3];
        ws_glu_factors(g, u, pk);
        *reinterpret_cast<uint32_t*>(hr + n) = pk[0];
        *reinterpret_cast<uint32_t*>(hr + F + n) = pk[1];
        *reinterpret_cast<uint32_t*>(ar + n) = pk[2];
      } else {
        *reinterpret_cast<__nv_bfloat162*>(hr + n) = g2;
        *reinterpret_cast<__nv_bfloat162*>(hr + F + n) = u2;
        *reinterpret_cast<__nv_bfloat162*>(ar + n) =
            __floats2bfloat162_rn(swiglu_fwd(g.x, u.x), swiglu_fwd(g.y, u.y));
      }
    }
  }
}

// GLU 1 on a full tile (128 rows, 128 columns of F inside F): each warpgroup's 64 rows go out
// through its staging buffer by TMA store in three rounds (the gate half of h, the up half, a), so
// the global writes run while the warpgroup goes on to the next tile's main loop; the values are
// ws_glu_fwd_epilogue's. Partial tiles (an expert's last rows, the last columns of F) take that
// function instead: a box would write into the next expert's rows or into the up half.
// Variant 15 (DB): six rounds of one 64 x 64 box each, alternating between the two 8 KiB halves
// of the buffer, so a round waits only for the store two rounds back (wait_group.read 1), not for
// the one just issued. Same values.
// FAC (variant 56, with DB): the six rounds store p, q and a where variant 15 stores the gate
// half, the up half and a, box by box: a thread rounds its gate and up values to bf16 pairs (64
// words; the accumulators then dead) and turns a box's 16 column pairs into p, q and a (48 words,
// one sigmoid a pair) before the box's three rounds. (The first build turned all 32
// pairs into 96 words before the first round: 1.5B's fwd1 7% slower than kernel15, H100.)
template <int BN, bool DB = false, bool FAC = false>
__device__ __forceinline__ void ws_glu_fwd_epilogue_tma(const float (&d)[BN / 2], const MoeTile& tl,
                                                        uint32_t out, const WsGlu& glu, int F) {
  int tid = threadIdx.x, lane = tid & 31, wg = tid / 128;
  uint32_t buf = out + wg * (WS_GLU_OUT_BYTES / 2);
  int rr0 = ((tid & 127) / 32) * 16 + lane / 4;  // row within the warpgroup's 64
  bool leader = (tid & 127) == 0;
  constexpr int HALF = BN / 16;  // column pairs of the gate half per thread
  constexpr int PAIRS = DB ? 8 : HALF;  // column pairs a thread writes per round
  // FAC: three rounds (p, q, a) a 64-column box of the tile's BN / 2 (variant 66: BN 128, one box)
  constexpr int ROUNDS = FAC ? 3 * (HALF / 8) : DB ? 6 : 3;
  static_assert(!FAC || DB, "variant 56 is variant 15's rounds");
  static_assert(BN == 256 || (FAC && BN == 128), "128-column tiles: variant 66's factors only");
  uint32_t pk[FAC ? 8 : 1][2][3];  // FAC: [column pair of the box][row][p, q, a]
  uint32_t gu[FAC ? HALF : 1][2][2];  // FAC: the gate and up values rounded as h, bf16x2
  if constexpr (FAC) {  // the accumulators are dead after this
#pragma unroll
    for (int j = 0; j < HALF; j++) {
#pragma unroll
      for (int hh = 0; hh < 2; hh++) {
        __nv_bfloat162 g = __floats2bfloat162_rn(d[4 * j + 2 * hh], d[4 * j + 2 * hh + 1]);
        __nv_bfloat162 u =
            __floats2bfloat162_rn(d[4 * (j + HALF) + 2 * hh], d[4 * (j + HALF) + 2 * hh + 1]);
        gu[j][hh][0] = *reinterpret_cast<uint32_t*>(&g);
        gu[j][hh][1] = *reinterpret_cast<uint32_t*>(&u);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < ROUNDS; r++) {
    // t: the gate half of h, the up half, a; j0: the round's first column pair (box j0 / 8).
    // FAC: box-major (p, q, a of the first 64 columns, then of the last 64), each box's 8 x 2
    // pairs turned into p, q and a (48 words) before its first round; the two halves of the
    // staging still alternate (slot r & 1)
    int t = FAC ? r % 3 : DB ? r / 2 : r, j0 = FAC ? 8 * (r / 3) : DB ? 8 * (r & 1) : 0;
    if constexpr (FAC) {
      if (r % 3 == 0) {
#pragma unroll
        for (int jj = 0; jj < 8; jj++) {
#pragma unroll
          for (int hh = 0; hh < 2; hh++) {
            int j = j0 + jj;
            float2 g = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&gu[j][hh][0]));
            float2 u = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&gu[j][hh][1]));
            ws_glu_factors(g, u, pk[jj][hh]);
          }
        }
      }
    }
    if (leader) {
      if (DB && (ROUNDS % 2 == 0 || r > 0)) {
        ws_store_wait_read1();  // the store that read this half two rounds back
      } else {  // (an odd count of rounds: the call before ended on this half)
        ws_store_wait_read();
      }
    }
    ws_bar_wg(1 + wg);
#pragma unroll
    for (int hh = 0; hh < 2; hh++) {
      int rr = rr0 + 8 * hh;
#pragma unroll
      for (int jj = 0; jj < PAIRS; jj++) {
        int j = j0 + jj;
        __nv_bfloat162 v;
        if constexpr (FAC) {
          v = *reinterpret_cast<const __nv_bfloat162*>(&pk[jj][hh][t]);
        } else if (t == 0) {
          v = __floats2bfloat162_rn(d[4 * j + 2 * hh], d[4 * j + 2 * hh + 1]);
        } else if (t == 1) {
          v = __floats2bfloat162_rn(d[4 * (j + HALF) + 2 * hh], d[4 * (j + HALF) + 2 * hh + 1]);
        } else {
          float2 g = __bfloat1622float2(__floats2bfloat162_rn(d[4 * j + 2 * hh], d[4 * j + 2 * hh + 1]));
          float2 u = __bfloat1622float2(
              __floats2bfloat162_rn(d[4 * (j + HALF) + 2 * hh], d[4 * (j + HALF) + 2 * hh + 1]));
          v = __floats2bfloat162_rn(swiglu_fwd(g.x, u.x), swiglu_fwd(g.y, u.y));
        }
        // column 8 j + 2 (lane & 3) of the tile: box j / 8, 16-byte chunk j % 8 of row rr
        // (FAC: the slot r & 1, chunk jj)
        uint32_t addr =
            buf + (FAC ? (r & 1) : j / 8) * WG_SLAB + wg_swz(rr, FAC ? jj : j % 8) + 4 * (lane & 3);
        asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr),
                     "r"(*reinterpret_cast<uint32_t*>(&v))
                     : "memory");
      }
    }
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // visible to the TMA unit
    ws_bar_wg(1 + wg);
    if (leader) {
      const CUtensorMap* tm = t == 2 ? glu.tmAct : glu.tmH;
      int col = tl.n0 + (t == 1 ? F : 0) + 8 * j0, row = tl.rStart + 64 * wg;
      uint32_t src = buf + (FAC ? (r & 1) : j0 / 8) * WG_SLAB;
      ws_tma_store2(tm, src, col, row);
      if (!DB) ws_tma_store2(tm, src + WG_SLAB, col + 64, row);
      ws_store_commit();
    }
  }
}

// Variant 39 (HL, GLU 1): variant 15's six rounds with the TMA stores issued by the producer
// warpgroup's TMA thread (ws_hl_fwd_epilogue), as variant 37 does for dX2: in variant 15 the
// leader waited for the store two rounds back and each round took two named barriers over the
// warpgroup. Here a consumer warp waits on empty[wg][b] (the helper arrives once the store that
// read buffer b has read it), writes its rows, fences them for the TMA unit and arrives on
// written[wg][b] (lane 0 after __syncwarp, count 4); the helper waits for the four warps, stores
// the box and releases the buffer one round later (wait_group.read 2: the round just issued may
// still read). Each buffer is used three times a full tile, so both sides keep the full tiles'
// count's parity (k). Barriers after the staging: empty[w][b] then written[w][b], 64 bytes.
// The last round's buffer is released when the helper next serves a tile (pend), not by waiting
// for its store at the end of this one: the producer goes back to its stages at once (in the
// first build that wait held back the next tile's fifth stage; 1.5B fwd1 +20% on an H100).
__device__ __forceinline__ void ws_store_wait_read2() {  // all but the latest two groups have read
  asm volatile("cp.async.bulk.wait_group.read 2;\n" ::: "memory");
}
__device__ __forceinline__ uint32_t ws_hl_fwd_bar(uint32_t out, int w, int b, bool written) {
  return out + WS_GLU_OUT_BYTES + 8 * ((written ? 4 : 0) + 2 * w + b);
}
// the helper: a full tile's six rounds, both warpgroups; k the parity of the full tiles before it
template <int BN>
__device__ __forceinline__ void ws_hl_fwd_epilogue(const MoeTile& tl, uint32_t out, const WsGlu& glu,
                                                   int F, uint32_t k, bool& pend) {
  if (pend) {  // the previous full tile's last round (buffer 1) has long been read
    ws_store_wait_read();
    for (int w = 0; w < 2; w++) ws_arrive(ws_hl_fwd_bar(out, w, 1, false));
  }
  pend = true;
#pragma unroll 1
  for (int q = 0; q < 6; q++) {
    int t = q / 2, b = q & 1;  // t: the gate half of h, the up half, a; b: the buffer (64-col box)
#pragma unroll 1
    for (int w = 0; w < 2; w++) {
      ws_wait(ws_hl_fwd_bar(out, w, b, true), (k + q / 2) & 1);
      const CUtensorMap* tm = t == 2 ? glu.tmAct : glu.tmH;
      ws_tma_store2(tm, out + w * (WS_GLU_OUT_BYTES / 2) + b * WG_SLAB,
                    tl.n0 + (t == 1 ? F : 0) + 64 * b, tl.rStart + 64 * w);
      ws_store_commit();
    }
    if (q > 0) {  // the previous round's two stores have read their buffers
      ws_store_wait_read2();
      for (int w = 0; w < 2; w++) ws_arrive(ws_hl_fwd_bar(out, w, b ^ 1, false));
    }
  }
}
// a consumer warpgroup's side: variant 15's values and layout
template <int BN>
__device__ __forceinline__ void ws_glu_fwd_epilogue_hl(const float (&d)[BN / 2], const MoeTile& tl,
                                                       uint32_t out, int F, uint32_t k) {
  int tid = threadIdx.x, lane = tid & 31, wg = tid / 128;
  uint32_t buf = out + wg * (WS_GLU_OUT_BYTES / 2);
  int rr0 = ((tid & 127) / 32) * 16 + lane / 4;  // row within the warpgroup's 64
  constexpr int HALF = BN / 16;                  // column pairs of the gate half per thread
#pragma unroll
  for (int r = 0; r < 6; r++) {
    int t = r / 2, b = r & 1, j0 = 8 * b;
    ws_wait(ws_hl_fwd_bar(out, wg, b, false), ((k + r / 2) & 1) ^ 1);
#pragma unroll
    for (int hh = 0; hh < 2; hh++) {
      int rr = rr0 + 8 * hh;
#pragma unroll
      for (int jj = 0; jj < 8; jj++) {
        int j = j0 + jj;
        __nv_bfloat162 v;
        if (t == 0) {
          v = __floats2bfloat162_rn(d[4 * j + 2 * hh], d[4 * j + 2 * hh + 1]);
        } else if (t == 1) {
          v = __floats2bfloat162_rn(d[4 * (j + HALF) + 2 * hh], d[4 * (j + HALF) + 2 * hh + 1]);
        } else {
          float2 g = __bfloat1622float2(__floats2bfloat162_rn(d[4 * j + 2 * hh], d[4 * j + 2 * hh + 1]));
          float2 u = __bfloat1622float2(
              __floats2bfloat162_rn(d[4 * (j + HALF) + 2 * hh], d[4 * (j + HALF) + 2 * hh + 1]));
          v = __floats2bfloat162_rn(swiglu_fwd(g.x, u.x), swiglu_fwd(g.y, u.y));
        }
        uint32_t addr = buf + b * WG_SLAB + wg_swz(rr, jj) + 4 * (lane & 3);
        asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr),
                     "r"(*reinterpret_cast<uint32_t*>(&v))
                     : "memory");
      }
    }
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // visible to the TMA unit
    __syncwarp();
    if (lane == 0) ws_arrive(ws_hl_fwd_bar(out, wg, b, true));
  }
}

// GLU 2 on one column pair of a row: d0, d1 the ungated dA (float32 accumulators), g2 / u2 the
// forward's h (bf16 pairs), gate the row's gate; adds dA_ungated . a to dot and returns dH's gate
// and up pairs. Every rounding is the unfused ops' (see above).
__device__ __forceinline__ void ws_glu_bwd_pair(float d0, float d1, uint32_t g2, uint32_t u2,
                                                float gate, float& dot, uint32_t& dg2,
                                                uint32_t& du2) {
  // the ungated dA as the unfused product stores it
  float2 du = __bfloat1622float2(__floats2bfloat162_rn(d0, d1));
  float2 g = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&g2));
  float2 u = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u2));
  float s0 = sigmoidf_(g.x), s1 = sigmoidf_(g.y);
  // a as swiglu_fwd rounds it (g * s * u)
  float2 a = __bfloat1622float2(__floats2bfloat162_rn(g.x * s0 * u.x, g.y * s1 * u.y));
  dot = fmaf(du.x, a.x, dot);
  dot = fmaf(du.y, a.y, dot);
  float2 da = __bfloat1622float2(__floats2bfloat162_rn(du.x * gate, du.y * gate));
  float dg0, du0, dg1, du1;
  swiglu_bwd_s(da.x, g.x, u.x, s0, dg0, du0);
  swiglu_bwd_s(da.y, g.y, u.y, s1, dg1, du1);
  __nv_bfloat162 rg = __floats2bfloat162_rn(dg0, dg1), ru = __floats2bfloat162_rn(du0, du1);
  dg2 = *reinterpret_cast<uint32_t*>(&rg);
  du2 = *reinterpret_cast<uint32_t*>(&ru);
}

// The four lanes of a row hold its columns: sums their dots (every lane takes part) and writes the
// row's partial for this tile.
template <int BN>
__device__ __forceinline__ void ws_glu_bwd_partials(float (&dot)[2], const bool (&ok)[2], int r0,
                                                    const MoeTile& tl, const WsGlu& glu, int F) {
  int lane = threadIdx.x & 31, nTiles = (F + BN - 1) / BN;
#pragma unroll
  for (int hh = 0; hh < 2; hh++) {
    float v = dot[hh];
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    v += __shfl_xor_sync(0xffffffffu, v, 2);
    if (ok[hh] && (lane & 3) == 0)
      glu.partial[(long long)(tl.rStart + r0 + 8 * hh) * nTiles + tl.n0 / BN] = v;
  }
}

// Variant 11's GLU 2 (every tile): per warpgroup, BN / 64 rounds of 64 columns: the gate and the up
// columns of its 64 rows of h come by TMA (two {64, 1, 64} boxes of h as {F, 2, M}: zeros past
// F and M) into its staging buffer, each thread turns its elements into dH's in place
// (ws_glu_bwd_pair), and the two boxes leave by TMA store into dH (the same view), so the tile's h
// reads are 16 KiB bulk loads and its dH writes run on while the next round (or tile) goes on.
// A tile with fewer than 128 rows (an expert's last) is copied out by the warpgroup's threads
// instead, row by row: a box would write into the next expert's rows. The barriers follow the
// staging (out + WS_GLU_OUT_BYTES); a tile uses each an even number of times, so every tile starts
// on phase 0 (no state kept across tiles: the main loop has no register to spare).
// Variant 13 (DB): variant 11's epilogue in BN / 32 rounds of 32 columns through two buffers of
// 8 KiB per warpgroup (the gate and the up box of a round, {32, 1, 64} of h as {F, 2, M} in the
// 64-byte swizzle), so round q + 1's h load flies while round q computes and stores; round 0's
// load is issued two k steps before the main loop ends (ws_glu_bwd_load from ws_s2s). Buffer b
// has barrier b of the warpgroup (after the staging, 16 bytes a warpgroup); a tile uses each four
// times, so every tile starts on phase 0. The same values as variant 11, bit for bit.
__device__ __forceinline__ uint32_t ws_swz64(int r, int chunk) {  // 64-byte rows, 16-byte chunks
  return r * 64 + ((chunk ^ (r >> 1)) & 3) * 16;
}
// GLU 2's rounds: W columns each, boxes of BOX bytes (the gate or the up columns of 64 rows)
template <bool DB>
struct WsGluRound {
  static constexpr int W = DB ? 32 : 64, BOX = 64 * W * 2;
  // round q's buffer and barrier of warpgroup wg (DB: two of each, alternating)
  static __device__ __forceinline__ uint32_t buf(uint32_t out, int wg, int q) {
    return out + wg * (WS_GLU_OUT_BYTES / 2) + (DB ? (q & 1) * 2 * BOX : 0);
  }
  static __device__ __forceinline__ uint32_t bar(uint32_t out, int wg, int q) {
    return out + WS_GLU_OUT_BYTES + (DB ? 16 * wg + 8 * (q & 1) : 8 * wg);
  }
};
// the leader thread of a consumer warpgroup: round q's gate and up boxes of h into the round's
// buffer, once the stores that read that buffer before have read it
template <bool DB>
__device__ __forceinline__ void ws_glu_bwd_load(const MoeTile& tl, uint32_t out, const WsGlu& glu,
                                                int q) {
  using Rd = WsGluRound<DB>;
  int wg = threadIdx.x / 128, row = tl.rStart + 64 * wg, n = tl.n0 + Rd::W * q;
  uint32_t buf = Rd::buf(out, wg, q), bar = Rd::bar(out, wg, q);
  ws_store_wait_read();
  ws_arrive_tx(bar, 2 * Rd::BOX);
  ws_tma3(buf, glu.tmH, n, 0, row, bar);
  ws_tma3(buf + Rd::BOX, glu.tmH, n, 1, row, bar);
}
// Variants 62 and 63: round q of the 64 rows from row, columns from n0 + W q, into staging slot
// sl's buffer and barrier (ws_s2s_pp_fac: a warpgroup's slot, or the one both share); no wait
template <bool DB>
__device__ __forceinline__ void ws_glu_bwd_load_at(int row, int n0, uint32_t out, int sl,
                                                   const WsGlu& glu, int q) {
  using Rd = WsGluRound<DB>;
  uint32_t buf = Rd::buf(out, sl, q), bar = Rd::bar(out, sl, q);
  ws_arrive_tx(bar, 2 * Rd::BOX);
  ws_tma3(buf, glu.tmH, n0 + Rd::W * q, 0, row, bar);
  ws_tma3(buf + Rd::BOX, glu.tmH, n0 + Rd::W * q, 1, row, bar);
}

// Variant 25 (B4): each row's round loads its CH column pairs of h first, then computes them, then
// stores them, instead of a load, its math and its store per pair: the shared-memory accesses are
// volatile asm, so a pair's loads could not move above the previous pair's stores and every pair's
// math (about 30 dependent instructions, two MUFU) ran one after the other. The same operations on
// the same values in the same order (the dot too): dH and the partial dots bit for bit.
// FAC (variant 56, with DB and B4): the rows are gated already (dy grouped with its gates) and the
// buffer holds the forward's factors p and q instead of h: dH = [dA p | dA q] (dA rounded to bf16,
// as the plain product stores it; swiglu_backward_factors_kernel's values), no gates, no dot.
// PP (variants 62 and 63, ws_s2s_pp_fac): the tile comes shifted by 64 wg rows, so that "the
// warpgroup's 64 rows" are the tile's, and the rounds use staging slot slot (a warpgroup's, or the
// one both share); without PP the warpgroup's own slot, as ever.
template <int BN, bool DB = false, bool B4 = false, bool FAC = false, bool PP = false>
__device__ __forceinline__ void ws_glu_bwd_epilogue_tma(const float (&d)[BN / 2], const MoeTile& tl,
                                                        uint32_t out, const WsGlu& glu,
                                                        __nv_bfloat16* dh,
                                                        const int* sortedScattered, int F,
                                                        int slot = 0) {
  using Rd = WsGluRound<DB>;
  constexpr int W = Rd::W, BOX = Rd::BOX, CH = W / 8, R = BN / W;  // CH: 16-byte chunks a box row
  static_assert(R % (DB ? 4 : 2) == 0, "each barrier used an even number of times per tile");
  static_assert(!PP || DB, "variants 62 and 63 take variant 13's rounds");
  int tid = threadIdx.x, lane = tid & 31, wg = tid / 128, wt = tid & 127;
  int sl = PP ? slot : wg;
  int rr0 = (wt / 32) * 16 + lane / 4;  // row within the warpgroup's 64
  int row = tl.rStart + 64 * wg, rows = min(max(tl.rows - 64 * wg, 0), 64);
  bool leader = wt == 0, ok[2] = {rr0 < rows, rr0 + 8 < rows};
  float gate[2], dot[2] = {0.f, 0.f};
  static_assert(!FAC || (DB && B4), "variant 56 is variant 25's rounds");
  if constexpr (!FAC) {
#pragma unroll
    for (int hh = 0; hh < 2; hh++)
      gate[hh] = ok[hh] ? glu.gates[sortedScattered[row + rr0 + 8 * hh]] : 0.f;
  }
  // 16-byte chunk c of row r of a box: the 64-byte swizzle (DB) or the 128-byte one
  auto swz = [](int r, int c) { return DB ? ws_swz64(r, c) : wg_swz(r, c); };
#pragma unroll  // the accumulators are registers: every index a constant
  for (int q = 0; q < R; q++) {
    int n = tl.n0 + W * q;
    uint32_t buf = Rd::buf(out, sl, q);
    // DB: the next round's load flies during this one (round 0's came in the main loop)
    if (leader && (!DB || q + 1 < R)) {
      if constexpr (PP) {
        ws_store_wait_read();
        ws_glu_bwd_load_at<DB>(row, tl.n0, out, sl, glu, q + 1);
      } else {
        ws_glu_bwd_load<DB>(tl, out, glu, DB ? q + 1 : q);
      }
    }
    ws_wait(Rd::bar(out, sl, q), DB ? (q >> 1) & 1 : q & 1);
#pragma unroll
    for (int hh = 0; hh < 2; hh++) {
      int rr = rr0 + 8 * hh;
      // NB pairs at a time: their h loads, then their math, then their dH stores (variant 25:
      // the row's CH pairs; variant 13: one)
      constexpr int NB = B4 ? CH : 1;
#pragma unroll
      for (int j0 = 0; j0 < CH; j0 += NB) {
        uint32_t g2[NB], u2[NB], dg2[NB], du2[NB];
#pragma unroll
        for (int i = 0; i < NB; i++) {
          // column 8 (j0 + i) + 2 (lane & 3) of the round: 16-byte chunk j0 + i of row rr
          uint32_t ga = buf + swz(rr, j0 + i) + 4 * (lane & 3), ua = ga + BOX;
          asm volatile("ld.shared.b32 %0, [%1];\n" : "=r"(g2[i]) : "r"(ga) : "memory");
          asm volatile("ld.shared.b32 %0, [%1];\n" : "=r"(u2[i]) : "r"(ua) : "memory");
        }
#pragma unroll
        for (int i = 0; i < NB; i++) {
          int j = CH * q + j0 + i;
          if constexpr (FAC) {
            float2 da = __bfloat1622float2(__floats2bfloat162_rn(d[4 * j + 2 * hh], d[4 * j + 2 * hh + 1]));
            float2 p = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&g2[i]));
            float2 q = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u2[i]));
            __nv_bfloat162 rg = __floats2bfloat162_rn(da.x * p.x, da.y * p.y),
                           ru = __floats2bfloat162_rn(da.x * q.x, da.y * q.y);
            dg2[i] = *reinterpret_cast<uint32_t*>(&rg);
            du2[i] = *reinterpret_cast<uint32_t*>(&ru);
          } else {
            ws_glu_bwd_pair(d[4 * j + 2 * hh], d[4 * j + 2 * hh + 1], g2[i], u2[i], gate[hh],
                            dot[hh], dg2[i], du2[i]);
          }
        }
#pragma unroll
        for (int i = 0; i < NB; i++) {
          uint32_t ga = buf + swz(rr, j0 + i) + 4 * (lane & 3), ua = ga + BOX;
          asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(ga), "r"(dg2[i]) : "memory");
          asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(ua), "r"(du2[i]) : "memory");
        }
      }
    }
    if (rows == 64) {
      asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // visible to the TMA unit
      ws_bar_wg(1 + wg);
      if (leader) {
        ws_tma_store3(glu.tmDh, buf, n, 0, row);
        ws_tma_store3(glu.tmDh, buf + BOX, n, 1, row);
        ws_store_commit();
      }
    } else {
      ws_bar_wg(1 + wg);
      // 16-byte chunks: (half, row, chunk) = i / (64 CH), i / CH % 64, i % CH
#pragma unroll 1
      for (int i = wt; i < 2 * 64 * CH; i += 128) {
        int half = i / (64 * CH), rr = (i / CH) % 64, c = i % CH;
        if (rr < rows && n + 8 * c < F) {
          uint4 v;
          uint32_t sa = buf + half * BOX + swz(rr, c);
          asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n"
                       : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                       : "r"(sa)
                       : "memory");
          *reinterpret_cast<uint4*>(dh + (long long)(row + rr) * 2 * F + half * F + n + 8 * c) = v;
        }
      }
      ws_bar_wg(1 + wg);  // the buffer is read before a later round's load overwrites it
    }
  }
  if constexpr (!FAC) ws_glu_bwd_partials<BN>(dot, ok, 64 * wg + rr0, tl, glu, F);
}

// Variant 37 (HL = NB buffers a warpgroup): dX2's epilogue rounds with every TMA issue and wait
// off the consumer warps. In variants 13 and 25 the leader thread of each consumer warpgroup waited
// for its previous store to read the buffer and issued the next load at the start of every round,
// and a named barrier made the warpgroup's four warps wait for the slowest before each store (the
// epilogue probe, session 34: about a fifth of the epilogue's clocks). Here the producer
// warpgroup's TMA thread serves the rounds (ws_hl_preload / ws_hl_epilogue): it loads each round's
// gate and up boxes of h into one of the warpgroup's NB buffers (a {64 / NB, 1, 64} box of h as
// {F, 2, M}: NB 2 the 64-byte swizzle, NB 4 the 32-byte one), waits for the four warps' `written`
// arrivals, stores dH by TMA, and reloads the buffer for round q + NB once the store has read it.
// A consumer warp waits only for its round's data: it computes its 16 rows in place (variant 25's
// batches), fences them for the TMA unit and arrives once per warp (lane 0 after __syncwarp). A
// tile whose warpgroup has fewer than 64 rows (an expert's last) is copied out by each warp's
// lanes from the warp's own rows (no other warp's writes to wait for), and the helper skips its
// store. Barriers after the staging: full[w][b] (count 1, the helper's expect_tx) then
// written[w][b] (count 4), 32 NB bytes; a tile uses each BN / W / NB = 4 times, so every tile
// starts on phase 0. The same operations on the same values as variant 25: bit for bit.
// With four buffers the helper reloads round q - 1's buffer after issuing round q's stores
// (wait_group.read 2: round q's two stores may still read), so no store's read is waited for
// right after its issue: in the first build (reload of round q's buffer at once, wait_group.read 0
// every round) one thread waited out 16 store reads a tile in turn, and dX2 ran 30% slower than
// variant 25 (H100). A tile's first rounds are loaded a k step after its serve point, when the
// previous tile's last stores have read their buffers.
template <int NB>
struct WsGluRing {
  static_assert(NB == 2 || NB == 4, "two buffers of 32 columns or four of 16 a warpgroup");
  static constexpr int W = 64 / NB, BOX = 64 * W * 2, BAR_BYTES = 2 * 2 * NB * 8;
  static __device__ __forceinline__ uint32_t buf(uint32_t out, int wg, int q) {
    return out + wg * (WS_GLU_OUT_BYTES / 2) + (q % NB) * 2 * BOX;
  }
  static __device__ __forceinline__ uint32_t full(uint32_t out, int wg, int q) {
    return out + WS_GLU_OUT_BYTES + 8 * (wg * NB + q % NB);
  }
  static __device__ __forceinline__ uint32_t written(uint32_t out, int wg, int q) {
    return out + WS_GLU_OUT_BYTES + 8 * (2 * NB + wg * NB + q % NB);
  }
  // 16-byte chunk c of row r of a box: the 64-byte swizzle (rows of 64 bytes) or the 32-byte one
  static __device__ __forceinline__ uint32_t swz(int r, int c) {
    return NB == 2 ? ws_swz64(r, c) : r * 32 + ((c ^ (r >> 2)) & 1) * 16;
  }
};
// the helper: round q's gate and up boxes of warpgroup w's 64 rows of h into the round's buffer
template <int NB>
__device__ __forceinline__ void ws_hl_load(const MoeTile& tl, uint32_t out, const WsGlu& glu, int w,
                                           int q) {
  using Rg = WsGluRing<NB>;
  uint32_t buf = Rg::buf(out, w, q), bar = Rg::full(out, w, q);
  int row = tl.rStart + 64 * w, n = tl.n0 + Rg::W * q;
  ws_arrive_tx(bar, 2 * Rg::BOX);
  ws_tma3(buf, glu.tmH, n, 0, row, bar);
  ws_tma3(buf + Rg::BOX, glu.tmH, n, 1, row, bar);
}
// the helper: a tile's first NB rounds, once the previous tile's stores have read the buffers
template <int NB>
__device__ __forceinline__ void ws_hl_preload(const MoeTile& tl, uint32_t out, const WsGlu& glu) {
  ws_store_wait_read();
#pragma unroll 1
  for (int q = 0; q < NB; q++)
#pragma unroll 1
    for (int w = 0; w < 2; w++) ws_hl_load<NB>(tl, out, glu, w, q);
}
// the helper: a tile's rounds in order, both warpgroups; the stores of the last NB rounds are
// still reading when it returns (the next preload waits for them)
template <int BN, int NB>
__device__ __forceinline__ void ws_hl_epilogue(const MoeTile& tl, uint32_t out, const WsGlu& glu) {
  using Rg = WsGluRing<NB>;
  constexpr int R = BN / Rg::W;
#pragma unroll 1
  for (int q = 0; q < R; q++) {
#pragma unroll 1
    for (int w = 0; w < 2; w++) {
      ws_wait(Rg::written(out, w, q), (q / NB) & 1);
      if (tl.rows - 64 * w >= 64) {
        uint32_t buf = Rg::buf(out, w, q);
        int row = tl.rStart + 64 * w, n = tl.n0 + Rg::W * q;
        ws_tma_store3(glu.tmDh, buf, n, 0, row);
        ws_tma_store3(glu.tmDh, buf + Rg::BOX, n, 1, row);
        ws_store_commit();
      }
    }
    if (NB == 2 && q + NB < R) {  // two buffers: round q's own, at once
      ws_store_wait_read();
#pragma unroll 1
      for (int w = 0; w < 2; w++) ws_hl_load<NB>(tl, out, glu, w, q + NB);
    }
    if (NB > 2 && q > 0 && q - 1 + NB < R) {  // round q - 1's, a round later
      ws_store_wait_read2();
#pragma unroll 1
      for (int w = 0; w < 2; w++) ws_hl_load<NB>(tl, out, glu, w, q - 1 + NB);
    }
  }
}
// a consumer warpgroup's side of variant 37's epilogue
template <int BN, int NB>
__device__ __forceinline__ void ws_glu_bwd_epilogue_hl(const float (&d)[BN / 2], const MoeTile& tl,
                                                       uint32_t out, const WsGlu& glu,
                                                       __nv_bfloat16* dh,
                                                       const int* sortedScattered, int F) {
  using Rg = WsGluRing<NB>;
  constexpr int W = Rg::W, BOX = Rg::BOX, CH = W / 8, R = BN / W;
  static_assert(R % (2 * NB) == 0, "each barrier used an even number of times per tile");
  int tid = threadIdx.x, lane = tid & 31, wg = tid / 128, wt = tid & 127;
  int w16 = (wt / 32) * 16, rr0 = w16 + lane / 4;  // the warp's first row, the thread's
  int row = tl.rStart + 64 * wg, rows = min(max(tl.rows - 64 * wg, 0), 64);
  bool ok[2] = {rr0 < rows, rr0 + 8 < rows};
  float gate[2], dot[2] = {0.f, 0.f};
#pragma unroll
  for (int hh = 0; hh < 2; hh++)
    gate[hh] = ok[hh] ? glu.gates[sortedScattered[row + rr0 + 8 * hh]] : 0.f;
#pragma unroll  // the accumulators are registers: every index a constant
  for (int q = 0; q < R; q++) {
    uint32_t buf = Rg::buf(out, wg, q);
    ws_wait(Rg::full(out, wg, q), (q / NB) & 1);
#pragma unroll
    for (int hh = 0; hh < 2; hh++) {
      int rr = rr0 + 8 * hh;
      uint32_t g2[CH], u2[CH], dg2[CH], du2[CH];
#pragma unroll
      for (int i = 0; i < CH; i++) {  // column 8 i + 2 (lane & 3) of the round: chunk i of row rr
        uint32_t ga = buf + Rg::swz(rr, i) + 4 * (lane & 3), ua = ga + BOX;
        asm volatile("ld.shared.b32 %0, [%1];\n" : "=r"(g2[i]) : "r"(ga) : "memory");
        asm volatile("ld.shared.b32 %0, [%1];\n" : "=r"(u2[i]) : "r"(ua) : "memory");
      }
#pragma unroll
      for (int i = 0; i < CH; i++) {
        int j = CH * q + i;
        ws_glu_bwd_pair(d[4 * j + 2 * hh], d[4 * j + 2 * hh + 1], g2[i], u2[i], gate[hh],
                            dot[hh], dg2[i], du2[i]);
      }
#pragma unroll
      for (int i = 0; i < CH; i++) {
        uint32_t ga = buf + Rg::swz(rr, i) + 4 * (lane & 3), ua = ga + BOX;
        asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(ga), "r"(dg2[i]) : "memory");
        asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(ua), "r"(du2[i]) : "memory");
      }
    }
    if (rows == 64) {
      asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // visible to the TMA unit
    } else {
      __syncwarp();
      // the warp's 16 rows: 16-byte chunks (half, row, chunk) = i / (16 CH), i / CH % 16, i % CH
      int n = tl.n0 + W * q;
#pragma unroll
      for (int i = lane; i < 2 * 16 * CH; i += 32) {
        int half = i / (16 * CH), rr = w16 + (i / CH) % 16, c = i % CH;
        if (rr < rows && n + 8 * c < F) {
          uint4 v;
          uint32_t sa = buf + half * BOX + Rg::swz(rr, c);
          asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n"
                       : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                       : "r"(sa)
                       : "memory");
          *reinterpret_cast<uint4*>(dh + (long long)(row + rr) * 2 * F + half * F + n + 8 * c) = v;
        }
      }
    }
    __syncwarp();
    if (lane == 0) ws_arrive(Rg::written(out, wg, q));
  }
  ws_glu_bwd_partials<BN>(dot, ok, 64 * wg + rr0, tl, glu, F);
}

// Variant 11's GLU 2: the tile's h (its rows, the gate and the up columns n0 .. n0 + BN - 1: 2 x 128
// runs of at most 512 bytes) asked into L2 by bulk prefetches, one run per consumer thread, eight
// k steps before the tile's main loop ends (at its start, the lines waited beside the weight tiles
// for 64 k steps on the 4096-wide shapes: 2.6% slower, H200 2026-12-03 12:40 UTC); h's row pitch
// and both halves' offsets are multiples of 16 bytes (F % 8 == 0).
template <int BN>
__device__ __forceinline__ void ws_glu_prefetch_h(const MoeTile& tl, const __nv_bfloat16* h, int F) {
  int tid = threadIdx.x, r = tid >> 1, half = tid & 1;  // 256 consumer threads: 128 rows x 2
  if (r >= tl.rows) return;
  int cols = min(BN, F - tl.n0);
  const __nv_bfloat16* src = h + (long long)(tl.rStart + r) * 2 * F + half * F + tl.n0;
  asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(src), "r"(cols * 2) : "memory");
}

// h comes by read-only loads issued GLU_BATCH column pairs at a time for both rows before any
// math (a loop that loaded, computed and stored one pair at a time waited for each load: the first
// build's epilogue cost more than the passes it replaced, H200 2026-12-03 10:22 UTC).
#define GLU_BATCH 8
template <int BN>
__device__ __forceinline__ void ws_glu_bwd_epilogue(const float (&d)[BN / 2], const MoeTile& tl,
                                                    const WsGlu& glu, __nv_bfloat16* dh,
                                                    const int* sortedScattered, int F) {
  int tid = threadIdx.x, lane = tid & 31;
  int r0 = (tid / 128) * 64 + ((tid & 127) / 32) * 16 + lane / 4;
  int c0 = tl.n0 + 2 * (lane & 3);
  bool ok[2];
  float gate[2], dot[2] = {0.f, 0.f};
  const unsigned int* hr[2];
  __nv_bfloat16* dr[2];
#pragma unroll
  for (int hh = 0; hh < 2; hh++) {
    int r = r0 + 8 * hh;
    ok[hh] = r < tl.rows;
    long long p = tl.rStart + (ok[hh] ? r : 0);
    gate[hh] = ok[hh] ? glu.gates[sortedScattered[p]] : 0.f;
    hr[hh] = reinterpret_cast<const unsigned int*>(glu.h + p * 2 * F);
    dr[hh] = dh + p * 2 * F;
  }
#pragma unroll
  for (int j0 = 0; j0 < BN / 8; j0 += GLU_BATCH) {
    unsigned int gv[2][GLU_BATCH], uv[2][GLU_BATCH];
#pragma unroll
    for (int hh = 0; hh < 2; hh++)
#pragma unroll
      for (int j = 0; j < GLU_BATCH; j++) {
        int n = c0 + 8 * (j0 + j);
        bool in = ok[hh] && n < F;
        gv[hh][j] = in ? __ldg(hr[hh] + n / 2) : 0u;
        uv[hh][j] = in ? __ldg(hr[hh] + (F + n) / 2) : 0u;
      }
#pragma unroll
    for (int hh = 0; hh < 2; hh++)
#pragma unroll
      for (int j = 0; j < GLU_BATCH; j++) {
        int jj = j0 + j, n = c0 + 8 * jj;
        if (!ok[hh] || n >= F) continue;
        uint32_t dg2, du2;
        ws_glu_bwd_pair(d[4 * jj + 2 * hh], d[4 * jj + 2 * hh + 1], gv[hh][j], uv[hh][j],
                        gate[hh], dot[hh], dg2, du2);
        *reinterpret_cast<uint32_t*>(dr[hh] + n) = dg2;
        *reinterpret_cast<uint32_t*>(dr[hh] + F + n) = du2;
      }
  }
  ws_glu_bwd_partials<BN>(dot, ok, r0, tl, glu, F);
}

// CL = 2 (variant 9): a cluster of two CTAs takes 256-row tiles of one expert, CTA r rows
// 128 r .. 128 r + 127 (none where the expert ends first: it still loads and releases its stages),
// the same weight tile: each CTA loads half of it by TMA multicast into both CTAs' stage, so a
// stage's empty barrier waits for the consumers of both CTAs. The x W^T weight map's box is then
// {64, BN / 2, 1}.
// GLU (variant 10): outDim is F; the tile walk is over F in tiles of NT columns.
// V11 (variant 11, GLU only): full tiles go through a staging buffer in shared memory after the
// stages: GLU 1 stores h and a from it by TMA (ws_glu_fwd_epilogue_tma); GLU 2 loads h into it and
// stores dH from it by TMA (ws_glu_bwd_epilogue_tma, on two more barriers after the staging) and
// asks L2 for the tile's h (ws_glu_prefetch_h) eight k steps before its main loop ends.
// A producer thread's share of a k step's gathered rows: 16-byte chunk c = pt % 8 of the stage's
// rows pt / 8 + 16 i (i < N) from x's rows src[i] (-1: zeros), by cp.async.
template <int N>
__device__ __forceinline__ void ws_gather_rows(uint32_t sA, const __nv_bfloat16* x,
                                               const int (&src)[N], int pt, int c, int k0,
                                               int inDim) {
#pragma unroll
  for (int i = 0; i < N; i++) {
    int r = pt / 8 + 16 * i;
    bool ok = src[i] >= 0 && k0 + c * 8 < inDim;
    mm_cp16(sA + wg_swz(r, c),
            ok ? (const void*)(x + (long long)src[i] * inDim + k0 + c * 8) : (const void*)x, ok);
  }
}

template <int BN, int STAGES, bool TRANSW, bool GATHER, int CL = 1, int GLU = 0, bool V11 = false,
          bool V13 = false, bool ST = false, bool V25 = false, int HL = 0, bool FAC = false>
__device__ __forceinline__ void ws_s2s(const CUtensorMap* tmW, const CUtensorMap* tmX,
                                       const __nv_bfloat16* x, const void* bias, int bdt, void* y,
                                       int ydt, const int* sortedExpert,
                                       const int* sortedScattered, int M, int E, int inDim,
                                       int outDim, int fanOut, int groupedOut,
                                       WsGlu glu = WsGlu{}) {
  static_assert(GLU == 0 || (BN == 256 && CL == 1), "the SwiGLU epilogues take 128 x 256 tiles");
  static_assert(GLU != 1 || TRANSW, "SwiGLU forward: x W^T");
  static_assert(GLU != 2 || !TRANSW, "SwiGLU backward: dy W");
  constexpr int NT = GLU == 1 ? BN / 2 : BN;  // output columns of a tile
  static_assert(!V11 || GLU != 0, "variant 11 changes the SwiGLU epilogues only");
  // V13: variant 11's epilogue rounds double-buffered (variant 13 for GLU 2, variant 15 for GLU 1)
  static_assert(!V13 || V11, "variants 13 and 15 double-buffer variant 11's epilogues");
  // ST (variant 16): the plain product's epilogue through per-warp buffers (ws_s2s_epilogue_st)
  static_assert(!ST || (GLU == 0 && CL == 1), "variant 16 changes the plain epilogue only");
  // HL (variant 37): variant 25's dX2 epilogue served by the producer's TMA thread, HL buffers
  // HL (variant 39, GLU 1): variant 15's stores issued by the same thread
  // FAC (variant 56): h holds the SwiGLU backward's factors; GLU 2 then takes grouped, gated rows
  static_assert(!FAC || (V13 && HL == 0 && (GLU == 1 || (V25 && !GATHER))),
                "variant 56 changes variants 15 and 25");
  static_assert(HL == 0 || (V13 && (GLU == 1 || (GLU == 2 && V25))),
                "variants 37 and 39 serve variant 25's and variant 15's rounds");
  // staging after the stages (and for GLU 2 its barriers: two, V13 four)
  constexpr int OUT = ST     ? WS_ST_OUT_BYTES
                      : !V11 ? 0
                      : GLU == 1 ? WS_GLU_OUT_BYTES + (HL ? 64 : 0)
                      : HL       ? WS_GLU_OUT_BYTES + WsGluRing<HL ? HL : 2>::BAR_BYTES
                                 : WS_GLU_OUT_BYTES + (V13 ? 32 : 16);
  extern __shared__ __align__(128) unsigned char wg_smem[];
  constexpr int A_BYTES = WG_BM * WG_BK * 2, B_BYTES = BN * WG_BK * 2, STAGE = A_BYTES + B_BYTES;
  uint32_t bars = mm_smem_addr(wg_smem) + wg_smem_bytes(BN, STAGES) + OUT;
  int* tileStart = reinterpret_cast<int*>(wg_smem + ws_smem_bytes(BN, STAGES) + OUT);
  int* rowEnd = tileStart + E + 1;
  moe_build_tiles<WG_BM * CL>(sortedExpert, M, E, tileStart, rowEnd);
  ws_init_bars<STAGES, CL>(bars, GATHER ? 129 : 1);
  if (GLU == 1 && HL) {  // variant 39: empty[w][b] (the helper), then written[w][b] (a warp each)
    if (threadIdx.x == 0) {
      uint32_t hbar = ((mm_smem_addr(wg_smem) + 1023) & ~1023u) + STAGES * STAGE + WS_GLU_OUT_BYTES;
      for (int i = 0; i < 8; i++) ws_bar_init(hbar + 8 * i, i < 4 ? 1 : 4);
      asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
  }
  if (GLU == 2 && V11) {  // the staging's barriers, one per consumer warpgroup
    if (threadIdx.x == 0) {
      uint32_t hbar = ((mm_smem_addr(wg_smem) + 1023) & ~1023u) + STAGES * STAGE + WS_GLU_OUT_BYTES;
      if (HL) {  // full[w][b] (the helper's expect_tx), then written[w][b] (a warp each)
        for (int i = 0; i < 4 * HL; i++) ws_bar_init(hbar + 8 * i, i < 2 * HL ? 1 : 4);
      } else {
        for (int i = 0; i < (V13 ? 4 : 2); i++) ws_bar_init(hbar + 8 * i, 1);
      }
      asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
  }
  int rowTiles = tileStart[E], nTiles = (outDim + NT - 1) / NT;
  long long total = (long long)rowTiles * nTiles;
  uint32_t smem = (mm_smem_addr(wg_smem) + 1023) & ~1023u;
  int kTiles = (inDim + WG_BK - 1) / WG_BK;
  // the tile walk: one per CTA, or one per cluster (both CTAs the same tiles)
  int rank = CL > 1 ? (int)ws_cluster_rank() : 0;
  long long first = CL > 1 ? blockIdx.x / CL : blockIdx.x, step = CL > 1 ? gridDim.x / CL : gridDim.x;
  auto myTile = [&](long long t) {
    MoeTile tl = moe_tile<WG_BM * CL, NT>(t, tileStart, rowEnd, E, rowTiles, nTiles);
    if (CL > 1) {
      tl.rStart += WG_BM * rank;
      tl.rows = min(max(tl.rows - WG_BM * rank, 0), WG_BM);
    }
    return tl;
  };
  if (threadIdx.x >= 256) {  // producer warpgroup
    // HL: the helper's rounds need 88 (128 x 88 + 256 x 208 = 384 x 168, the whole file)
    if constexpr (HL > 0) {
      asm volatile("setmaxnreg.dec.sync.aligned.u32 88;\n" ::: "memory");
    } else {
      asm volatile("setmaxnreg.dec.sync.aligned.u32 80;\n" ::: "memory");
    }
    ws_stagger<CL>(glu.staggerCycles, glu.staggerPhases);
    int pt = threadIdx.x - 256, c = pt % 8;
    uint32_t it = 0;
    long long prevT = -1;  // HL: the tile whose epilogue the helper serves next
    uint32_t hk = 0;       // HL, GLU 1: the parity of the full tiles served
    bool hpend = false;    // HL, GLU 1: the last full tile's last buffer not yet released
    auto hlServe = [&](const MoeTile& p) {
      if constexpr (GLU == 1) {
        if (p.rows == WG_BM && p.n0 + NT <= outDim) {
          ws_hl_fwd_epilogue<BN>(p, smem + STAGES * STAGE, glu, outDim, hk, hpend);
          hk ^= 1;
        }
      } else if constexpr (HL > 0) {
        ws_hl_epilogue<BN, HL>(p, smem + STAGES * STAGE, glu);
      }
    };
    for (long long t = first; t < total; t += step) {
      MoeTile tl = myTile(t);
      int src[8];  // x row of tile rows pt / 8 + 16 i, or -1
      if (GATHER) {
#pragma unroll
        for (int i = 0; i < 8; i++) {
          int r = pt / 8 + 16 * i;
          src[i] = r < tl.rows ? sortedScattered[tl.rStart + r] / fanOut : -1;
        }
      }
      for (int kt = 0; kt < kTiles; kt++, it++) {
        int s = it % STAGES;
        uint32_t full = bars + 8 * s, sA = smem + s * STAGE, sB = sA + A_BYTES;
        ws_wait(bars + 8 * (STAGES + s), ((it / STAGES) & 1) ^ 1);
        int k0 = kt * WG_BK;
        if (pt == 0) {
          ws_arrive_tx(full, GATHER ? B_BYTES : B_BYTES + A_BYTES);
          if (CL > 1) {  // this CTA's half of the weight tile, into both CTAs
            if (TRANSW) {
              ws_tma3_mc(sB + rank * (BN / 2) * 128, tmW, k0, tl.n0 + rank * (BN / 2), tl.e, full,
                         3);
            } else {
#pragma unroll
              for (int j = rank; j < BN / 64; j += 2)
                ws_tma3_mc(sB + j * WG_SLAB, tmW, tl.n0 + 64 * j, k0, tl.e, full, 3);
            }
          } else if (GLU == 1) {  // gate rows n0.., up rows F + n0.. (64 x 128 boxes)
            ws_tma3(sB, tmW, k0, tl.n0, tl.e, full);
            ws_tma3(sB + (BN / 2) * 128, tmW, k0, outDim + tl.n0, tl.e, full);
          } else if (TRANSW) {
            ws_tma3(sB, tmW, k0, tl.n0, tl.e, full);
          } else {
#pragma unroll
            for (int j = 0; j < BN / 64; j++) ws_tma3(sB + j * WG_SLAB, tmW, tl.n0 + 64 * j, k0, tl.e, full);
          }
          if (!GATHER) ws_tma2(sA, tmX, k0, tl.rStart, full);
        }
        if (GATHER) {
          ws_gather_rows<8>(sA, x, src, pt, c, k0, inDim);
          ws_cp_arrive(full);
        }
        // HL: once the stages that can be ahead of the previous tile's epilogue are issued, the TMA
        // thread serves that epilogue's rounds, then loads this tile's first rounds of h
        if constexpr (HL > 0) {
          // serve at the stage before the first one the previous tile's epilogue holds back; load
          // this tile's first rounds of h one stage later (or at once where this is its last)
          // (the helper's warp waits for it at __syncwarp: lanes spinning on the next stage's
          // mbarrier in the same warp would take its issue turns; they have nothing to issue
          // before the serve is done anyway, their stage's barrier needs lane 0's arrival)
          int serveKt = min(STAGES, kTiles) - 1;
          if (pt < 32 && kt == serveKt) {
            if (pt == 0 && prevT >= 0) hlServe(myTile(prevT));
            prevT = t;
            __syncwarp();
          }
          if (GLU == 2 && pt < 32 && kt == min(serveKt + 1, kTiles - 1)) {
            if (pt == 0) ws_hl_preload<HL>(tl, smem + STAGES * STAGE, glu);
            __syncwarp();
          }
        }
      }
    }
    if constexpr (HL > 0) {  // the last tile's epilogue; its stores land before the block ends
      if (pt < 32) {
        if (pt == 0) {
          if (prevT >= 0) hlServe(myTile(prevT));
          ws_store_wait_all();
        }
        __syncwarp();
      }
    }
    asm volatile("cp.async.wait_all;\n" ::: "memory");  // no copy outlives its thread
  } else {  // consumer warpgroups 0 and 1
    asm volatile("setmaxnreg.inc.sync.aligned.u32 208;\n" ::: "memory");
    uint32_t it = 0, fk = 0;  // fk: HL, GLU 1: the parity of the full tiles done
    for (long long t = first; t < total; t += step) {
      MoeTile tl = myTile(t);
      float d[BN / 2];
#pragma unroll
      for (int i = 0; i < BN / 2; i++) d[i] = 0.f;
      for (int kt = 0; kt < kTiles; kt++, it++) {
        int s = it % STAGES, sp = (it + STAGES - 1) % STAGES;
        if (GLU == 2 && V11 && kt == max(kTiles - 8, 0)) ws_glu_prefetch_h<BN>(tl, glu.h, outDim);
        if (GLU == 2 && V13 && !HL && kt == max(kTiles - 2, 0) && (threadIdx.x & 127) == 0)
          ws_glu_bwd_load<true>(tl, smem + STAGES * STAGE, glu, 0);
        ws_consume<BN, 0, TRANSW ? 0 : 1, GATHER, CL>(d, smem + s * STAGE, bars + 8 * s,
                                                 (it / STAGES) & 1, bars + 8 * (STAGES + sp),
                                                 kt > 0);
      }
      asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
      wg_fence_acc(d);
      if ((threadIdx.x & 31) == 0) {
        uint32_t last = bars + 8 * (STAGES + (it + STAGES - 1) % STAGES);
        ws_arrive(last);
        if (CL > 1) ws_arrive_remote(last, rank ^ 1);
      }
      if constexpr (GLU == 1) {
        if (HL && tl.rows == WG_BM && tl.n0 + NT <= outDim) {
          ws_glu_fwd_epilogue_hl<BN>(d, tl, smem + STAGES * STAGE, outDim, fk);
          fk ^= 1;
        } else if (V11 && tl.rows == WG_BM && tl.n0 + NT <= outDim) {
          ws_glu_fwd_epilogue_tma<BN, V13, FAC>(d, tl, smem + STAGES * STAGE, glu, outDim);
        } else {
          ws_glu_fwd_epilogue<BN, FAC>(d, tl, (__nv_bfloat16*)y, glu.act, outDim);
        }
      } else if constexpr (GLU == 2) {
        if constexpr (HL > 0) {
          ws_glu_bwd_epilogue_hl<BN, HL>(d, tl, smem + STAGES * STAGE, glu, (__nv_bfloat16*)y,
                                            sortedScattered, outDim);
        } else if constexpr (V11) {
          ws_glu_bwd_epilogue_tma<BN, V13, V25, FAC>(d, tl, smem + STAGES * STAGE, glu,
                                                (__nv_bfloat16*)y, sortedScattered, outDim);
        } else {
          ws_glu_bwd_epilogue<BN>(d, tl, glu, (__nv_bfloat16*)y, sortedScattered, outDim);
        }
      } else if (ST && ydt == DT_BF16 && bias == nullptr) {
        ws_s2s_epilogue_st<BN>(d, tl, (__nv_bfloat16*)y, sortedScattered, outDim, groupedOut,
                               smem + STAGES * STAGE);
      } else {
        ws_s2s_epilogue<BN>(d, tl, bias, bdt, y, ydt, sortedScattered, outDim, groupedOut);
      }
    }
    if (V11 && !HL && (threadIdx.x & 127) == 0) ws_store_wait_all();  // the last TMA stores land
  }
  // neither CTA leaves while the other may still multicast into it or arrive on its barriers
  if (CL > 1) ws_cluster_sync();
}

// Variants 62 and 63 (GLU 2): kernel56's dX2 (the down product's dX over dy's rows grouped with
// their gates, dH = [dA p | dA q], variant 56) on ping-pong consumers without clusters, after SonicMoE's
// Hopper kernels (Guo et al. 2025, arXiv 2512.14080). Each consumer warpgroup owns its tiles of 64
// rows x 256 columns (one m64n256k16 chain, 128 float32 accumulators a thread as in the cooperative
// 128 x 256 tile) and the two take turns over the block's tiles, so one tile's epilogue (the
// factors in, dH out: 128 KiB a tile against the main loop's 40 KiB a k step from L2) runs while
// the other warpgroup's main loop keeps the tensor cores busy; in the cooperative kernel both
// warpgroups reach their epilogues together and the tensor cores idle through them (dX2 at 2.05x
// its dense twin on 1.5B, H100 session 52, against 1.02-1.27x for the products with light
// epilogues). Variants 27 and 28 (session 30) did this in clusters of two sharing the weight
// stage; they lost 6-20%, with the two CTAs waiting on each other's stage releases. Here each CTA
// loads its own weight tile: from L2, 40 KiB a 64 x 256 x 64 step against 48 KiB a 128 x 256 x 64
// one, 1.67x the operand bytes per FLOP (session 32: 9.4 TB/s of TMA fill left the tensor pipe
// 95% busy; the cooperative products draw 5-9 TB/s).
//
// The producer's TMA thread fills stage i of the block with the A box (64 grouped rows x 64 k,
// tmX's {64, 64} box) and the four 64 x 64 slabs of W's 256 columns (40 KiB); stage i belongs to
// the block's tile i / kTiles, which warpgroup (i / kTiles) & 1 consumes, and is empty after that
// warpgroup's four warps arrive. The main loops take turns (named barriers 3 and 4: tile li's
// waits start once the other warpgroup has passed all of tile li - 1's), without which a
// warpgroup back from its epilogue could wait on a stage whose barrier is a phase behind, whose
// parity the phase before already satisfied (variant 27's first build, H200 2026-12-04). The
// epilogue is kernel56's (ws_glu_bwd_epilogue_tma DB, B4, FAC) handed the tile shifted by 64 wg
// rows, so its "warpgroup's 64 rows" are the tile's; each value the same operations on the same
// values as kernel56 (an m64n256k16 chain over the same k steps for every row): bit for bit.
// - Variant 62 (SHARED false): four stages (160 KiB), each warpgroup its own staging (16 KiB: two
//   double-buffered rounds' boxes) and barriers; round 0's factors load two k steps before the
//   warpgroup's main loop ends, as in kernel56.
// - Variant 63 (SHARED true): five stages (200 KiB: 2,560 tensor cycles ahead against variant
//   62's 2,048), one staging slot for both warpgroups. The epilogues take turns too (named
//   barriers 5 and 6): the warpgroup leaving its epilogue has its leader load the next tile's
//   round 0 into the slot once round 6's stores have read their buffer, then wait for round 7's
//   stores to read theirs, and then lets the other in. The slot's two barriers are used four
//   times a tile, so every epilogue starts on phase 0.
// Variant 64 (GLU 1): kernel56's first product the same way (x [W1; W3]^T with the factors and a
// stored by variant 56's forward epilogue, ws_glu_fwd_epilogue_tma, or the threads' stores for
// partial tiles): a warpgroup's tile is 64 rows x 128 columns of F (its B stage the 128 gate and
// the 128 up rows, two TMA boxes, as kernel15), x's 64 rows gathered by 16-byte cp.async from the
// producer's 128 threads (four rows each a stage); four stages, a staging slot a warpgroup (five
// stages and two slots do not fit; its epilogue has no barrier to share a slot by).
// Variant 66 (WM 128, GLU 1): variant 64 with 128 rows x 64 output columns a warpgroup, the same way.
// Variant 65 (WM 128, GLU 2): variant 62 with 128 x 128 tiles a warpgroup, two chunks of 64 rows
// (two m64n128k16 chains, 64 accumulators a thread each), kernel56's epilogue once per chunk with
// BN 128 (four rounds; chunk 1's round 0 loaded as chunk 0 ends), six stages of 32 KiB.
// Shared memory (ws_pp_smem_bytes): 1 KiB of alignment slack, the stages, the staging (16 KiB a
// slot) and 32 bytes for its barriers, the stages' full and empty barriers (16 STAGES bytes), then
// (2E + 1) ints of tile table.
__host__ __device__ constexpr int ws_pp_smem_bytes(int stages, int wm, bool shared) {
  return 1024 + stages * (wm + (wm == 64 ? 256 : 128)) * WG_BK * 2 +
         (shared ? 1 : 2) * (WS_GLU_OUT_BYTES / 2) + 32 + 16 * stages;
}
template <int GLU, int WM, int STAGES, bool SHARED>
__device__ __forceinline__ void ws_s2s_pp_fac(const CUtensorMap* tmW, const CUtensorMap* tmX,
                                              const __nv_bfloat16* x, __nv_bfloat16* y,
                                              const int* sortedExpert, const int* sortedScattered,
                                              int M, int E, int inDim, int F, int fanOut,
                                              WsGlu glu) {
  static_assert(GLU == 1 || GLU == 2, "the first product's SwiGLU or the down product's dX");
  static_assert(!SHARED || (GLU == 2 && WM == 64), "one staging slot: dX2's 64-row tiles only");
  static_assert(WM == 64 || WM == 128, "a warpgroup's tile: 64 x 256 or 128 x 128");
  // a warpgroup's tile: WM rows (CH chunks of 64, one accumulator chain each) x BN columns of the
  // product (NT output columns: GLU 1's are the gate and up halves)
  constexpr int BN = WM == 64 ? 256 : 128, NT = GLU == 1 ? BN / 2 : BN, CH = WM / 64;
  constexpr bool GATHER = GLU == 1;  // x's rows by cp.async from the producer's threads
  constexpr int A_BYTES = WM * WG_BK * 2, B_BYTES = BN * WG_BK * 2, STAGE = A_BYTES + B_BYTES;
  constexpr int STAGING = (SHARED ? 1 : 2) * (WS_GLU_OUT_BYTES / 2);
  extern __shared__ __align__(128) unsigned char wg_smem[];
  uint32_t base = mm_smem_addr(wg_smem), smem = (base + 1023) & ~1023u;
  // the staging after the stages: slot sl's two buffers at out + 16 KiB sl (WsGluRound::buf), its
  // two barriers at out + WS_GLU_OUT_BYTES + 16 sl (WsGluRound::bar). Variant 62: slots 0 and 1
  // from the staging's start; variant 63: slot 1 of an `out` 16 KiB before the staging, so its
  // buffers are the staging's 16 KiB and its barriers follow them (after 16 unused bytes)
  uint32_t staging = smem + STAGES * STAGE, out = SHARED ? staging - WS_GLU_OUT_BYTES / 2 : staging;
  uint32_t bars = staging + STAGING + 32;  // full[s] at 8 s, empty[s] at 8 (STAGES + s)
  int* tileStart = reinterpret_cast<int*>(wg_smem + (bars - base) + 16 * STAGES);
  int* rowEnd = tileStart + E + 1;
  moe_build_tiles<WM>(sortedExpert, M, E, tileStart, rowEnd);
  if (threadIdx.x == 0) {
#pragma unroll
    for (int s = 0; s < STAGES; s++) {
      ws_bar_init(bars + 8 * s, GATHER ? 129 : 1);  // the TMA thread (+ 128 cp.async arrivals)
      ws_bar_init(bars + 8 * (STAGES + s), 4);    // the consuming warpgroup's warps
    }
    if (GLU == 2)
      for (int i = SHARED ? 2 : 0; i < 4; i++) ws_bar_init(out + WS_GLU_OUT_BYTES + 8 * i, 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  int rowTiles = tileStart[E], nTiles = (F + NT - 1) / NT, kTiles = (inDim + WG_BK - 1) / WG_BK;
  long long total = (long long)rowTiles * nTiles, first = blockIdx.x, step = gridDim.x;
  auto myTile = [&](long long t) {
    return moe_tile<WM, NT>(t, tileStart, rowEnd, E, rowTiles, nTiles);
  };
  if (threadIdx.x >= 256) {  // producer warpgroup: its first thread issues the TMA loads
    asm volatile("setmaxnreg.dec.sync.aligned.u32 80;\n" ::: "memory");
    int pt = threadIdx.x - 256, c = pt % 8;
    if (pt == 0 || GATHER) {  // GLU 2: the other threads have nothing to do
      ws_stagger<1>(glu.staggerCycles, glu.staggerPhases);
      uint32_t it = 0;
      for (long long t = first; t < total; t += step) {
        MoeTile tl = myTile(t);
        int src[WM / 16];  // GATHER: the x row of tile rows pt / 8 + 16 i, or -1
#pragma unroll
        for (int i = 0; i < WM / 16; i++) {
          int r = pt / 8 + 16 * i;
          src[i] = GATHER && r < tl.rows ? sortedScattered[tl.rStart + r] / fanOut : -1;
        }
        for (int kt = 0; kt < kTiles; kt++, it++) {
          int s = it % STAGES, k0 = kt * WG_BK;
          uint32_t full = bars + 8 * s, sA = smem + s * STAGE, sB = sA + A_BYTES;
          ws_wait(bars + 8 * (STAGES + s), ((it / STAGES) & 1) ^ 1);
          if (pt == 0) {
            ws_arrive_tx(full, GATHER ? B_BYTES : STAGE);
            if constexpr (GLU == 1) {  // gate rows n0.., up rows F + n0.. (64 x NT boxes)
              ws_tma3(sB, tmW, k0, tl.n0, tl.e, full);
              ws_tma3(sB + (BN / 2) * 128, tmW, k0, F + tl.n0, tl.e, full);
            } else {
#pragma unroll
              for (int j = 0; j < BN / 64; j++)
                ws_tma3(sB + j * WG_SLAB, tmW, tl.n0 + 64 * j, k0, tl.e, full);
              ws_tma2(sA, tmX, k0, tl.rStart, full);
            }
          }
          if constexpr (GATHER) {
            ws_gather_rows<WM / 16>(sA, x, src, pt, c, k0, inDim);
            ws_cp_arrive(full);
          }
        }
      }
      if (GATHER) asm volatile("cp.async.wait_all;\n" ::: "memory");  // no copy outlives its thread
    }
  } else {  // consumer warpgroups 0 and 1, alternate tiles
    asm volatile("setmaxnreg.inc.sync.aligned.u32 208;\n" ::: "memory");
    int wg = threadIdx.x / 128, wt = threadIdx.x & 127, sl = SHARED ? 1 : wg;
    long long nT = first < total ? (total - first + step - 1) / step : 0;  // this block's tiles
    for (long long li = wg; li < nT; li += 2) {
      // the main loops take turns: tile li's waits start once tile li - 1's have all passed
      if (li >= 1) asm volatile("bar.sync %0, 256;\n" ::"r"(3 + wg) : "memory");
      MoeTile tl = myTile(first + li * step);
      // chunk ch (rows 64 ch ..) as kernel56's epilogue sees "the warpgroup's 64 rows"
      auto chunk = [&](int ch) {
        MoeTile te = tl;
        te.rStart = tl.rStart + 64 * ch - 64 * wg;
        te.rows = min(max(tl.rows - 64 * ch, 0), 64) + 64 * wg;
        return te;
      };
      float d[CH][BN / 2];
#pragma unroll
      for (int ch = 0; ch < CH; ch++)
#pragma unroll
        for (int i = 0; i < BN / 2; i++) d[ch][i] = 0.f;
      uint32_t it = (uint32_t)(li * kTiles);
      for (int kt = 0; kt < kTiles; kt++, it++) {
        int s = it % STAGES, sp = (it + STAGES - 1) % STAGES;
        if (GLU == 2 && kt == max(kTiles - 8, 0)) {  // ask L2 for the tile's factors: WM rows x 2 halves
#pragma unroll
          for (int ch = 0; ch < CH; ch++) {
            int r = (wt >> 1) + 64 * ch, half = wt & 1;
            if (r < tl.rows) {
              const __nv_bfloat16* src =
                  glu.h + (long long)(tl.rStart + r) * 2 * F + half * F + tl.n0;
              asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(src),
                           "r"(min(BN, F - tl.n0) * 2)
                           : "memory");
            }
          }
        }
        // round 0 of the epilogue (variant 63: the tile before's epilogue loads it, but for the
        // block's first tile)
        if (GLU == 2 && kt == max(kTiles - 2, 0) && wt == 0 && (!SHARED || li == 0)) {
          ws_store_wait_read();  // the slot's last stores (the tile before's) have read it
          ws_glu_bwd_load_at<true>(tl.rStart, tl.n0, out, sl, glu, 0);
        }
        // the k step (ws_consume's, over this warpgroup's own 64-row A box): four wgmma, one
        // group kept in flight, the step before's stage released
        uint32_t sA = smem + s * STAGE;
        ws_wait(bars + 8 * s, (it / STAGES) & 1);
        if (GATHER) asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // cp.async data
        // B: GLU 1 K-major (x W^T: the weight's rows), GLU 2 MN-major slabs (dy W)
        uint64_t da = wg_desc(sA, 16, 1024),
                 db = GLU == 1 ? wg_desc(sA + A_BYTES, 16, 1024) : wg_desc(sA + A_BYTES, WG_SLAB, 1024);
#pragma unroll
        for (int ch = 0; ch < CH; ch++) wg_fence_acc(d[ch]);
        asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
        for (int kk = 0; kk < WG_BK / 16; kk++)
#pragma unroll
          for (int ch = 0; ch < CH; ch++)  // chunk ch's A rows: 64 ch .. of the box
            wg_mma<BN, 0, GLU == 1 ? 0 : 1>(d[ch], da + ((ch * 64 * 128) >> 4) + kk * (32 >> 4),
                                            db + kk * (GLU == 1 ? 32 >> 4 : 2048 >> 4));
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
#pragma unroll
        for (int ch = 0; ch < CH; ch++) wg_fence_acc(d[ch]);
        if (kt > 0 && (threadIdx.x & 31) == 0) ws_arrive(bars + 8 * (STAGES + sp));
      }
      // every stage of this tile has been waited for: the other warpgroup's main loop may go
      if (li + 1 < nT) asm volatile("bar.arrive %0, 256;\n" ::"r"(3 + (wg ^ 1)) : "memory");
      asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#pragma unroll
      for (int ch = 0; ch < CH; ch++) wg_fence_acc(d[ch]);
      if ((threadIdx.x & 31) == 0) ws_arrive(bars + 8 * (STAGES + (it + STAGES - 1) % STAGES));
      if (SHARED && li >= 1) asm volatile("bar.sync %0, 256;\n" ::"r"(5 + wg) : "memory");
      if constexpr (GLU == 1) {  // variant 56's forward epilogue a chunk: full ones by TMA store
        if (tl.rows == WM && tl.n0 + NT <= F) {
          // Variant 66: the epilogue's first step rounds the accumulators to bf16 pairs (the
          // values h would hold); chunk 1's are rounded now and kept as 32 words, not 64 floats,
          // through chunk 0's epilogue (ptxas spilled 32 bytes otherwise), then handed over as
          // floats again: the epilogue's rounding of a bf16 value is the value, so each output is
          // the same bit for bit
          uint32_t d1[CH > 1 ? BN / 4 : 1];
          if constexpr (CH > 1) {
#pragma unroll
            for (int i = 0; i < BN / 4; i++) {
              __nv_bfloat162 v = __floats2bfloat162_rn(d[1][2 * i], d[1][2 * i + 1]);
              d1[i] = *reinterpret_cast<uint32_t*>(&v);
            }
          }
          ws_glu_fwd_epilogue_tma<BN, true, true>(d[0], chunk(0), out, glu, F);
          if constexpr (CH > 1) {
            float dc[BN / 2];
#pragma unroll
            for (int i = 0; i < BN / 4; i++) {
              float2 v = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&d1[i]));
              dc[2 * i] = v.x;
              dc[2 * i + 1] = v.y;
            }
            ws_glu_fwd_epilogue_tma<BN, true, true>(dc, chunk(1), out, glu, F);
          }
        } else {  // a partial tile (an expert's last rows, F's last columns): the threads' stores
#pragma unroll
          for (int ch = 0; ch < CH; ch++) ws_glu_fwd_epilogue<BN, true>(d[ch], chunk(ch), y, glu.act, F);
        }
      } else {
#pragma unroll
        for (int ch = 0; ch < CH; ch++) {
          if (ch > 0) {  // chunk ch's round 0 (chunk 0's came in the main loop); none: no rows
            if (tl.rows <= 64 * ch) break;
            if (wt == 0) {
              ws_store_wait_read1();  // the chunk before's round 2 has read buffer 0
              ws_glu_bwd_load_at<true>(tl.rStart + 64 * ch, tl.n0, out, sl, glu, 0);
            }
          }
          ws_glu_bwd_epilogue_tma<BN, true, true, true, true>(d[ch], chunk(ch), out, glu, y, nullptr,
                                                              F, sl);
        }
      }
      if (SHARED && li + 1 < nT) {
        if (wt == 0) {  // the next tile's round 0 into buffer 0, once round 6's stores read it
          MoeTile tn = myTile(first + (li + 1) * step);
          ws_store_wait_read1();
          ws_glu_bwd_load_at<true>(tn.rStart, tn.n0, out, sl, glu, 0);
          ws_store_wait_read();  // round 7's stores have read buffer 1
        }
        __syncwarp();
        asm volatile("bar.arrive %0, 256;\n" ::"r"(5 + (wg ^ 1)) : "memory");
      }
    }
    if (wt == 0) ws_store_wait_all();  // the last TMA stores land
  }
}

// Variant 14's float32 dW epilogue: each consumer warpgroup's 64 x 256 accumulators leave in eight
// rounds of 32 columns through two 8 KiB buffers (a {32, 64, 1} box of dW (E, O, I) as {I, O, E},
// float32 rows of 128 bytes in the 128-byte swizzle), each added into dW by one TMA reduction
// (cp.reduce.async.bulk.tensor .add): 16 coalesced 8 KiB adds per tile instead of 16,384 scattered
// red.global.add.v2 from the threads, and the box clips at O and I (no partial-tile case). A round
// waits only for the reduction two rounds back to have read its buffer. Each element still gets one
// add per launch: the same dW bit for bit as variant 7's.
#define WS_XTY_OUT_BYTES (2 * 2 * 64 * 32 * 4)  // two 8 KiB buffers per consumer warpgroup
__device__ __forceinline__ void ws_tma_reduce_add3(const CUtensorMap* tm, uint32_t src, int c0,
                                                   int c1, int c2) {
  asm volatile(
      "cp.reduce.async.bulk.tensor.3d.global.shared::cta.add.tile.bulk_group"
      " [%0, {%2, %3, %4}], [%1];\n" ::"l"(tm),
      "r"(src), "r"(c0), "r"(c1), "r"(c2)
      : "memory");
}
// acc 0 (variant 48): each round is stored (a plain TMA store of the same box) instead of added,
// for a dW the launch overwrites (a step's first micro-batch): no read of the old dW, no reduction.
template <int BN>
__device__ __forceinline__ void ws_xty_epilogue_tma(const float (&d)[BN / 2], uint32_t out,
                                                    const CUtensorMap* tmDw, int e, int o0,
                                                    int i0, int acc) {
  int tid = threadIdx.x, lane = tid & 31, wg = tid / 128;
  uint32_t bufs = out + wg * (WS_XTY_OUT_BYTES / 2);
  int rr0 = ((tid & 127) / 32) * 16 + lane / 4;  // row within the warpgroup's 64
  bool leader = (tid & 127) == 0;
#pragma unroll  // the accumulators are registers: every index a constant
  for (int q = 0; q < BN / 32; q++) {
    uint32_t buf = bufs + (q & 1) * (WS_XTY_OUT_BYTES / 4);
    if (leader) ws_store_wait_read1();  // the reduction from this buffer two rounds back
    ws_bar_wg(1 + wg);
#pragma unroll
    for (int hh = 0; hh < 2; hh++) {
      int rr = rr0 + 8 * hh;
#pragma unroll
      for (int jj = 0; jj < 4; jj++) {
        int j = 4 * q + jj;
        // columns 8 jj + 2 (lane & 3) .. + 1 of the round: bytes 32 jj + 8 (lane & 3) of row rr
        uint32_t addr = buf + wg_swz(rr, 2 * jj + ((lane & 3) >> 1)) + 8 * (lane & 1);
        asm volatile("st.shared.v2.f32 [%0], {%1, %2};\n" ::"r"(addr), "f"(d[4 * j + 2 * hh]),
                     "f"(d[4 * j + 2 * hh + 1])
                     : "memory");
      }
    }
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // visible to the TMA unit
    ws_bar_wg(1 + wg);
    if (leader) {
      if (acc) {
        ws_tma_reduce_add3(tmDw, buf, i0 + 32 * q, o0 + 64 * wg, e);
      } else {
        ws_tma_store3(tmDw, buf, i0 + 32 * q, o0 + 64 * wg, e);
      }
      ws_store_commit();
    }
  }
}

// dW[e] (O, I) += dy_e^T x_e, persistent over (expert, o tile, i tile), grouped by MM_GROUP_M o
// tiles. RED (variant 7, float32 dW): the epilogue adds by red.global.add.v2.f32 (sm_90)
// instead of a load, add and store: the consumers issue the 64 KiB of
// their tile and go on to the next tile's first stage, the add happens in L2. Each element still
// has one writer per launch, so the result is the same as the read-modify-write's.
// TMAR (variant 14, float32 dW only): ws_xty_epilogue_tma adds the tile by TMA reductions from a
// staging buffer after the stages (WS_XTY_OUT_BYTES more shared memory; the barriers follow it).
// CL = 2 (variant 42, TMAR only): clusters of two CTAs walk units of two adjacent o tiles of one i
// tile (CTA r the o tile 2 u + r; none past O: it still loads its half of x and releases its
// stages), and share the x tile: each CTA loads its own dy^T tile (16 KiB a k step) and two of the
// four 64-column slabs of x by TMA multicast into both CTAs' stage (32 KiB of L2 reads a CTA per
// k step instead of 48: the step's operand traffic was at L2's limit, lab README "Session 38"), so
// a stage's empty barrier waits for the consumer warps of both CTAs (variant 9's mechanism, the
// remote arrive without .release.cluster). An expert's partial last k step stays a local
// cp.async in each CTA (both take it: the two walk the same units). The same dW bit for bit.
// acc (TMAR only): 1 adds the tile into dW; 0 (variant 48) stores it, dW = dy^T x, and an expert
// without rows still has its tiles stored (zeros), so every element of dW is written. The float32
// accumulators start at +0 and a sum with +0 in it is never -0, so a stored tile is the bits the
// addition into a zeroed dW gives.
template <int BN, int STAGES, bool RED, bool TMAR = false, int CL = 1>
__device__ __forceinline__ void ws_xty(const CUtensorMap* tmDy, const CUtensorMap* tmX,
                                       const __nv_bfloat16* x, const __nv_bfloat16* dy,
                                       const int* offsets, void* dw, int wdt, int E, int I, int O,
                                       const CUtensorMap* tmDw = nullptr, int acc = 1,
                                       int staggerCycles = 0, int staggerPhases = 1) {
  static_assert(!TMAR || BN == 256, "variant 14: 128 x 256 tiles");
  static_assert(CL == 1 || (CL == 2 && TMAR), "variant 42: variant 14 in clusters of two");
  extern __shared__ __align__(128) unsigned char wg_smem[];
  constexpr int A_BYTES = WG_BM * WG_BK * 2, B_BYTES = BN * WG_BK * 2, STAGE = A_BYTES + B_BYTES;
  constexpr int OUT = TMAR ? WS_XTY_OUT_BYTES : 0;
  uint32_t bars = mm_smem_addr(wg_smem) + wg_smem_bytes(BN, STAGES) + OUT;
  ws_init_bars<STAGES, CL>(bars, 129);
  // units of CL adjacent o tiles (one per CTA of a cluster), grouped by MM_GROUP_M / CL units
  constexpr int GROUP = MM_GROUP_M / CL;
  int oUnits = (O + CL * WG_BM - 1) / (CL * WG_BM), iTiles = (I + BN - 1) / BN;
  long long per = (long long)oUnits * iTiles, total = per * E;
  uint32_t smem = (mm_smem_addr(wg_smem) + 1023) & ~1023u;
  int rank = CL > 1 ? (int)ws_cluster_rank() : 0;
  long long first = blockIdx.x / CL, step = gridDim.x / CL;  // both CTAs of a cluster the same units
  // unit t -> (e, o0, i0): o units grouped by GROUP within an expert
  auto tile = [&](long long t, int& e, int& o0, int& i0) {
    e = (int)(t / per);
    int w = (int)(t % per), perGroup = GROUP * iTiles;
    int first = w / perGroup * GROUP, size = min(oUnits - first, GROUP);
    int within = w % perGroup;
    o0 = ((first + within % size) * CL + rank) * WG_BM;
    i0 = within / size * BN;
  };
  if (threadIdx.x >= 256) {  // producer
    asm volatile("setmaxnreg.dec.sync.aligned.u32 80;\n" ::: "memory");
    ws_stagger<CL>(staggerCycles, staggerPhases);  // variant 59
    int pt = threadIdx.x - 256;
    uint32_t it = 0;
    for (long long t = first; t < total; t += step) {
      int e, o0, i0;
      tile(t, e, o0, i0);
      int p0 = e == 0 ? 0 : offsets[e - 1], p1 = offsets[e];
      int kTiles = (p1 - p0 + WG_BK - 1) / WG_BK;
      for (int kt = 0; kt < kTiles; kt++, it++) {
        int s = it % STAGES;
        uint32_t full = bars + 8 * s, sA = smem + s * STAGE, sB = sA + A_BYTES;
        ws_wait(bars + 8 * (STAGES + s), ((it / STAGES) & 1) ^ 1);
        int k0 = p0 + kt * WG_BK;
        if (k0 + WG_BK <= p1) {  // whole step: TMA
          if (pt == 0) {
            bool own = CL == 1 || o0 < O;  // a cluster's second o tile past O loads no dy
            ws_arrive_tx(full, (own ? A_BYTES : 0) + B_BYTES);
            if (own) {
#pragma unroll
              for (int j = 0; j < WG_BM / 64; j++)
                ws_tma2(sA + j * WG_SLAB, tmDy, o0 + 64 * j, k0, full);
            }
            if (CL > 1) {  // this CTA's half of the x tile, into both CTAs
#pragma unroll
              for (int j = rank; j < BN / 64; j += 2)
                ws_tma2_mc(sB + j * WG_SLAB, tmX, i0 + 64 * j, k0, full, 3);
            } else {
#pragma unroll
              for (int j = 0; j < BN / 64; j++)
                ws_tma2(sB + j * WG_SLAB, tmX, i0 + 64 * j, k0, full);
            }
          }
        } else {  // the expert's last rows: zero-filled cp.async, nothing of the next expert
          if (pt == 0) ws_arrive(full);
#pragma unroll 1
          for (int i = 0; i < WG_BK * WG_BM / 8 / 128; i++) {
            int idx = pt + 128 * i, k = idx / (WG_BM / 8), mn = (idx % (WG_BM / 8)) * 8;
            bool ok = k0 + k < p1 && o0 + mn < O;
            mm_cp16(sA + (mn / 64) * WG_SLAB + wg_swz(k, (mn % 64) / 8),
                    ok ? (const void*)(dy + (long long)(k0 + k) * O + o0 + mn) : (const void*)dy,
                    ok);
          }
#pragma unroll 1
          for (int i = 0; i < WG_BK * BN / 8 / 128; i++) {
            int idx = pt + 128 * i, k = idx / (BN / 8), mn = (idx % (BN / 8)) * 8;
            bool ok = k0 + k < p1 && i0 + mn < I;
            mm_cp16(sB + (mn / 64) * WG_SLAB + wg_swz(k, (mn % 64) / 8),
                    ok ? (const void*)(x + (long long)(k0 + k) * I + i0 + mn) : (const void*)x, ok);
          }
        }
        ws_cp_arrive(full);
      }
    }
    asm volatile("cp.async.wait_all;\n" ::: "memory");
  } else {  // consumers
    asm volatile("setmaxnreg.inc.sync.aligned.u32 208;\n" ::: "memory");
    uint32_t it = 0;
    for (long long t = first; t < total; t += step) {
      int e, o0, i0;
      tile(t, e, o0, i0);
      int p0 = e == 0 ? 0 : offsets[e - 1], p1 = offsets[e];
      int kTiles = (p1 - p0 + WG_BK - 1) / WG_BK;
      if (kTiles <= 0 && (!TMAR || acc)) continue;  // variant 48 stores the zero tile
      float d[BN / 2];
#pragma unroll
      for (int i = 0; i < BN / 2; i++) d[i] = 0.f;
      for (int kt = 0; kt < kTiles; kt++, it++) {
        int s = it % STAGES, sp = (it + STAGES - 1) % STAGES;
        ws_consume<BN, 1, 1, true, CL>(d, smem + s * STAGE, bars + 8 * s, (it / STAGES) & 1,
                                       bars + 8 * (STAGES + sp), kt > 0);
      }
      asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
      wg_fence_acc(d);
      if ((threadIdx.x & 31) == 0 && kTiles > 0) {  // a tile without k steps holds no stage
        uint32_t last = bars + 8 * (STAGES + (it + STAGES - 1) % STAGES);
        ws_arrive(last);
        if (CL > 1) ws_arrive_remote(last, rank ^ 1);
      }
      if constexpr (TMAR) {  // float32 dW (the host launches variant 14 for nothing else)
        if (CL == 1 || o0 < O)
          ws_xty_epilogue_tma<BN>(d, smem + STAGES * STAGE, tmDw, e, o0, i0, acc);
        continue;
      }
      int tid = threadIdx.x, lane = tid & 31;
      int r0 = o0 + (tid / 128) * 64 + ((tid & 127) / 32) * 16 + lane / 4;
      int c0 = i0 + 2 * (lane & 3);
      if (wdt == DT_F32) {
#pragma unroll
        for (int h = 0; h < 2; h++) {
          int o = r0 + 8 * h;
          if (o >= O) continue;
          float* q = (float*)dw + ((long long)e * O + o) * I;
#pragma unroll
          for (int j = 0; j < BN / 8; j++) {
            int i = c0 + 8 * j;  // I is a multiple of 8: i + 1 < I too
            if (i >= I) continue;
            if (RED) {
              asm volatile("red.global.add.v2.f32 [%0], {%1, %2};\n" ::"l"(q + i),
                           "f"(d[4 * j + 2 * h]), "f"(d[4 * j + 2 * h + 1])
                           : "memory");
            } else {
              float2 v = *reinterpret_cast<float2*>(q + i);
              v.x += d[4 * j + 2 * h];
              v.y += d[4 * j + 2 * h + 1];
              *reinterpret_cast<float2*>(q + i) = v;
            }
          }
        }
      } else {
#pragma unroll
        for (int h = 0; h < 2; h++) {
          int o = r0 + 8 * h;
          if (o >= O) continue;
          long long at = ((long long)e * O + o) * I;
#pragma unroll
          for (int j = 0; j < BN / 8; j++) {
            int i = c0 + 8 * j;
            if (i >= I) continue;
            addf(dw, at + i, wdt, d[4 * j + 2 * h]);
            addf(dw, at + i + 1, wdt, d[4 * j + 2 * h + 1]);
          }
        }
      }
    }
    if (TMAR && (threadIdx.x & 127) == 0) ws_store_wait_all();  // the last reductions land
  }
  // neither CTA leaves while the other may still multicast into it or arrive on its barriers
  if (CL > 1) ws_cluster_sync();
}
#endif  // WG_ON

// Shipped configurations: "ws256" 128 x 256 tiles, 4 stages; "ws128" 128 x 128 tiles, 6 stages;
// one block of 384 threads per SM. Dynamic shared memory ws_smem_bytes(BN, STAGES) + (2E + 1)
// ints for scatter2scatter, ws_smem_bytes(BN, STAGES) for groupXtY. tmA: the x map when the rows
// are grouped (groupedIn), else unused (any valid map). transW and groupedIn pick the kernel.
// staggerCycles, staggerPhases: variant 59's start groups (ws_stagger; 0, 1: none).
#define WS_S2S_ARGS                                                                           \
  const __grid_constant__ CUtensorMap tmW, const __grid_constant__ CUtensorMap tmA,           \
      const __nv_bfloat16 *x, const void *bias, int bdt, void *y, int ydt,                    \
      const int *sortedExpert, const int *sortedScattered, int M, int E, int inDim, int outDim, \
      int fanOut, int groupedOut, int staggerCycles, int staggerPhases
#define WS_S2S_PASS                                                                          \
  &tmW, &tmA, x, bias, bdt, y, ydt, sortedExpert, sortedScattered, M, E, inDim, outDim, fanOut, \
      groupedOut,                                                                            \
      WsGlu{nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, staggerCycles,    \
            staggerPhases}
#define WS_XTY_ARGS                                                                      \
  const __grid_constant__ CUtensorMap tmDy, const __grid_constant__ CUtensorMap tmX,     \
      const __nv_bfloat16 *x, const __nv_bfloat16 *dy, const int *offsets, void *dw, int wdt, \
      int E, int I, int O
#define WS_XTY_PASS &tmDy, &tmX, x, dy, offsets, dw, wdt, E, I, O

#define WS_S2S_KERNEL(name, BN, ST, TW, GA)                                      \
  MT_KERNEL void __launch_bounds__(WS_THREADS, 1) name(WS_S2S_ARGS) {            \
    WG_BODY((ws_s2s<BN, ST, TW, GA>(WS_S2S_PASS)));                              \
  }
// t: x W^T (transW), n: x W; g: gathered rows (cp.async), c: contiguous rows (TMA)
WS_S2S_KERNEL(scatter2scatter_ws256_tg_kernel5, 256, 4, true, true)
WS_S2S_KERNEL(scatter2scatter_ws256_tc_kernel5, 256, 4, true, false)
WS_S2S_KERNEL(scatter2scatter_ws256_ng_kernel5, 256, 4, false, true)
WS_S2S_KERNEL(scatter2scatter_ws256_nc_kernel5, 256, 4, false, false)
WS_S2S_KERNEL(scatter2scatter_ws128_tg_kernel5, 128, 6, true, true)
WS_S2S_KERNEL(scatter2scatter_ws128_tc_kernel5, 128, 6, true, false)
WS_S2S_KERNEL(scatter2scatter_ws128_ng_kernel5, 128, 6, false, true)
WS_S2S_KERNEL(scatter2scatter_ws128_nc_kernel5, 128, 6, false, false)
// variant 16: 128 x 256 with the epilogue through shared memory (ws_s2s_epilogue_st) where y is
// bf16 without bias (else variant 5's); shared memory ws_smem_bytes(256, 4) + WS_ST_OUT_BYTES +
// (2E + 1) ints
#define WS_S2S_ST_KERNEL(name, TW, GA)                                           \
  MT_KERNEL void __launch_bounds__(WS_THREADS, 1) name(WS_S2S_ARGS) {            \
    WG_BODY((ws_s2s<256, 4, TW, GA, 1, 0, false, false, true>(WS_S2S_PASS)));    \
  }
WS_S2S_ST_KERNEL(scatter2scatter_ws256_tg_st_kernel16, true, true)
WS_S2S_ST_KERNEL(scatter2scatter_ws256_tc_st_kernel16, true, false)
WS_S2S_ST_KERNEL(scatter2scatter_ws256_ng_st_kernel16, false, true)
WS_S2S_ST_KERNEL(scatter2scatter_ws256_nc_st_kernel16, false, false)

MT_KERNEL void __launch_bounds__(WS_THREADS, 1) group_xty_ws256_kernel5(WS_XTY_ARGS) {
  WG_BODY((ws_xty<256, 4, false>(WS_XTY_PASS)));
}
MT_KERNEL void __launch_bounds__(WS_THREADS, 1) group_xty_ws128_kernel5(WS_XTY_ARGS) {
  WG_BODY((ws_xty<128, 6, false>(WS_XTY_PASS)));
}
// variant 7: the same with the reduction epilogue (float32 dW; other dtypes as variant 5)
MT_KERNEL void __launch_bounds__(WS_THREADS, 1) group_xty_ws256_red_kernel7(WS_XTY_ARGS) {
  WG_BODY((ws_xty<256, 4, true>(WS_XTY_PASS)));
}
MT_KERNEL void __launch_bounds__(WS_THREADS, 1) group_xty_ws128_red_kernel7(WS_XTY_ARGS) {
  WG_BODY((ws_xty<128, 6, true>(WS_XTY_PASS)));
}
// variant 14: variant 7's 128 x 256 kernel for float32 dW with the tile added by TMA reductions
// (ws_xty_epilogue_tma); tmDw: dW (E, O, I) float32 as {I, O, E} in {32, 64, 1} boxes (128-byte
// swizzle). Shared memory ws_smem_bytes(256, 4) + WS_XTY_OUT_BYTES.
// The float32 dW kernels' arguments (variants 14, 42): WS_XTY_ARGS with the dW map after the
// operands', then acc and variant 59's start groups (ws_stagger).
#define WS_XTY_TMAR_ARGS                                                                   \
  const __grid_constant__ CUtensorMap tmDy, const __grid_constant__ CUtensorMap tmX,       \
      const __grid_constant__ CUtensorMap tmDw, const __nv_bfloat16 *x,                    \
      const __nv_bfloat16 *dy, const int *offsets, void *dw, int wdt, int E, int I, int O, \
      int acc, int staggerCycles, int staggerPhases
MT_KERNEL void __launch_bounds__(WS_THREADS, 1) group_xty_ws256_tmar_kernel14(WS_XTY_TMAR_ARGS) {
  WG_BODY((ws_xty<256, 4, true, true>(WS_XTY_PASS, &tmDw, acc, staggerCycles, staggerPhases)));
}

// variant 42: kernel14 in clusters of two CTAs over two adjacent o tiles sharing the x tile by TMA
// multicast (ws_xty CL = 2); same arguments, maps, shared memory and values. The grid is twice
// the co-resident clusters (cuOccupancyMaxActiveClusters), at most twice the units.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define WS_CLUSTER2 __cluster_dims__(2, 1, 1)
#else
#define WS_CLUSTER2  // clusters need sm_90; the sm_80 build of the kernel traps (WG_BODY)
#endif
MT_KERNEL void WS_CLUSTER2 __launch_bounds__(WS_THREADS, 1)
    group_xty_ws256_tmar_mc_kernel42(WS_XTY_TMAR_ARGS) {
  WG_BODY((ws_xty<256, 4, true, true, 2>(WS_XTY_PASS, &tmDw, acc, staggerCycles, staggerPhases)));
}

// Variant 10 (the SwiGLU epilogues above), 128 x 256 tiles, 4 stages, on the expert MLP's two
// products that touch SwiGLU, both gathering their input rows (x, and dy (M / fanOut, D) in token
// order: no grouped copy of dy). tmW: W (E, 2F, D) as {D, 2F, E} in 64 x 128 boxes (glu) or W2
// (E, D, F) as {F, D, E} in 64 x 64 boxes (glubwd). h, a, dH bf16 and grouped; F a multiple of 8.
// Shared memory: ws_smem_bytes(256, 4) + (2E + 1) ints as variant 5.
MT_KERNEL void __launch_bounds__(WS_THREADS, 1)
    scatter2scatter_ws256_tg_glu_kernel10(const __grid_constant__ CUtensorMap tmW,
                                          const __nv_bfloat16* x, __nv_bfloat16* h,
                                          __nv_bfloat16* a, const int* sortedExpert,
                                          const int* sortedScattered, int M, int E, int inDim,
                                          int F, int fanOut) {
  WG_BODY((ws_s2s<256, 4, true, true, 1, 1>(&tmW, &tmW, x, nullptr, DT_BF16, h, DT_BF16,
                                             sortedExpert, sortedScattered, M, E, inDim, F, fanOut,
                                             1, WsGlu{nullptr, a, nullptr, nullptr})));
}

MT_KERNEL void __launch_bounds__(WS_THREADS, 1)
    scatter2scatter_ws256_ng_glubwd_kernel10(const __grid_constant__ CUtensorMap tmW,
                                             const __nv_bfloat16* dy, const __nv_bfloat16* h,
                                             __nv_bfloat16* dh, const float* gates, float* partial,
                                             const int* sortedExpert, const int* sortedScattered,
                                             int M, int E, int inDim, int F, int fanOut) {
  WG_BODY((ws_s2s<256, 4, false, true, 1, 2>(&tmW, &tmW, dy, nullptr, DT_BF16, dh, DT_BF16,
                                              sortedExpert, sortedScattered, M, E, inDim, F, fanOut,
                                              1, WsGlu{h, nullptr, gates, partial})));
}

// Variant 11: variant 10 with full tiles through a staging buffer after the stages: glu stores h
// and a from it by TMA (WS_GLU_OUT_BYTES more shared memory), glubwd loads h into it and stores dH
// from it by TMA (WS_GLU_OUT_BYTES + 16 more) and asks L2 for each tile's h before its main loop
// ends. glu: tmH h (M, 2F) as {2F, M}, tmAct a (M, F) as {F, M}, both in 64 x 64 boxes; glubwd:
// tmH h and tmDh dH (M, 2F) as {F, 2, M} in {64, 1, 64} boxes. Same arguments otherwise, same
// values bit for bit.
// Variants 11, 13 and 15 take the same arguments (the fwd kernels one set, the backward ones
// another); V13: the double-buffered rounds (variant 15 forward, 13 backward). The forward ones
// end in variant 59's start delay (WsGlu's staggerCycles, staggerPhases).
#define WS_GLU_TMA_ARGS                                                                          \
  const __grid_constant__ CUtensorMap tmW, const __grid_constant__ CUtensorMap tmH,              \
      const __grid_constant__ CUtensorMap tmAct, const __nv_bfloat16 *x, __nv_bfloat16 *h,       \
      __nv_bfloat16 *a, const int *sortedExpert, const int *sortedScattered, int M, int E,       \
      int inDim, int F, int fanOut, int staggerCycles, int staggerPhases
#define WS_GLU_TMA_BODY(V13, ...)                                                            \
  WG_BODY((ws_s2s<256, 4, true, true, 1, 1, true, V13, false, false, ##__VA_ARGS__>(         \
      &tmW, &tmW, x, nullptr, DT_BF16, h, DT_BF16, sortedExpert, sortedScattered, M, E, inDim, F, \
      fanOut, 1,                                                                             \
      WsGlu{nullptr, a, nullptr, nullptr, &tmH, &tmAct, nullptr, staggerCycles, staggerPhases})))
#define WS_GLUBWD_TMA_ARGS                                                                       \
  const __grid_constant__ CUtensorMap tmW, const __grid_constant__ CUtensorMap tmH,              \
      const __grid_constant__ CUtensorMap tmDh, const __nv_bfloat16 *dy, const __nv_bfloat16 *h, \
      __nv_bfloat16 *dh, const float *gates, float *partial, const int *sortedExpert,            \
      const int *sortedScattered, int M, int E, int inDim, int F, int fanOut
#define WS_GLUBWD_TMA_BODY(V13, V25, ...)                                                    \
  WG_BODY((ws_s2s<256, 4, false, true, 1, 2, true, V13, false, V25, ##__VA_ARGS__>(          \
      &tmW, &tmW, dy, nullptr, DT_BF16, dh, DT_BF16, sortedExpert, sortedScattered, M, E, inDim, \
      F, fanOut, 1, WsGlu{h, nullptr, gates, partial, &tmH, nullptr, &tmDh})))
MT_KERNEL void __launch_bounds__(WS_THREADS, 1)
    scatter2scatter_ws256_tg_glu_kernel11(WS_GLU_TMA_ARGS) {
  WS_GLU_TMA_BODY(false);
}

// Variant 15: kernel11's glu with the six store rounds double-buffered (ws_glu_fwd_epilogue_tma
// DB); same arguments, maps and values.
MT_KERNEL void __launch_bounds__(WS_THREADS, 1)
    scatter2scatter_ws256_tg_glu_kernel15(WS_GLU_TMA_ARGS) {
  WS_GLU_TMA_BODY(true);
}

MT_KERNEL void __launch_bounds__(WS_THREADS, 1)
    scatter2scatter_ws256_ng_glubwd_kernel11(WS_GLUBWD_TMA_ARGS) {
  WS_GLUBWD_TMA_BODY(false, false);
}

// Variant 13: variant 11's glubwd with the epilogue's rounds double-buffered (32 columns, two 8 KiB
// buffers per warpgroup, WS_GLU_OUT_BYTES + 32 more shared memory) and round 0's h load issued two
// k steps before the main loop ends. tmH, tmDh: h and dH (M, 2F) as {F, 2, M} in {32, 1, 64} boxes
// with the 64-byte swizzle. Same arguments and values as kernel11.
MT_KERNEL void __launch_bounds__(WS_THREADS, 1)
    scatter2scatter_ws256_ng_glubwd_kernel13(WS_GLUBWD_TMA_ARGS) {
  WS_GLUBWD_TMA_BODY(true, false);
}

// Variant 25 (auto's dX2 from session 29): kernel13 with each row's round as all its loads, then
// all its math, then all its stores (ws_glu_bwd_epilogue_tma B4). Same arguments, maps, shared memory and
// values.
MT_KERNEL void __launch_bounds__(WS_THREADS, 1)
    scatter2scatter_ws256_ng_glubwd_kernel25(WS_GLUBWD_TMA_ARGS) {
  WS_GLUBWD_TMA_BODY(true, true);
}

// Variant 39 (session 37; family v54 since session 48): kernel15 with its six store rounds issued by the producer warpgroup's TMA
// thread (ws_hl_fwd_epilogue): the consumer warps take no named barrier. Same arguments and maps;
// shared memory ws_smem_bytes(256, 4) + WS_GLU_OUT_BYTES + 64 + (2E + 1) ints. Same values, bit for
// bit.
MT_KERNEL void __launch_bounds__(WS_THREADS, 1)
    scatter2scatter_ws256_tg_glu_kernel39(WS_GLU_TMA_ARGS) {
  WS_GLU_TMA_BODY(true, 2);
}

// Variant 56 (family v56): the SwiGLU backward's factors saved in place of h. The forward is
// kernel15 storing p and q (swiglu_factors_s) where it stored the gate and the up half (same
// arguments and maps; h then holds the factors). The backward is kernel25 over dy's rows grouped
// with their gates (tmX: (M, D) as {D, M} in 64 x 128 boxes, by TMA like the contiguous products)
// with dH = [dA p | dA q] in its epilogue: no gather, no sigmoid, no gates' partial dots (their
// gradient comes from the forward's ungated rows, combineGatesBackward). tmH: the factors as
// kernel25's h; shared memory as kernel25.
// The backward takes variant 59's start delay last, as the forward kernels 11, 15, 39 and 56 do
// (WsGlu's staggerCycles, staggerPhases; 0, 1: none).
MT_KERNEL void __launch_bounds__(WS_THREADS, 1)
    scatter2scatter_ws256_tg_glu_fac_kernel56(WS_GLU_TMA_ARGS) {
  WS_GLU_TMA_BODY(true, 0, true);
}
#define WS_GLUBWD_FAC_ARGS                                                                      \
  const __grid_constant__ CUtensorMap tmW, const __grid_constant__ CUtensorMap tmX,             \
      const __grid_constant__ CUtensorMap tmH, const __grid_constant__ CUtensorMap tmDh,        \
      const __nv_bfloat16 *dy, const __nv_bfloat16 *pq, __nv_bfloat16 *dh,                      \
      const int *sortedExpert, const int *sortedScattered, int M, int E, int inDim, int F,      \
      int staggerCycles, int staggerPhases
MT_KERNEL void __launch_bounds__(WS_THREADS, 1)
    scatter2scatter_ws256_nc_glubwd_fac_kernel56(WS_GLUBWD_FAC_ARGS) {
  WG_BODY((ws_s2s<256, 4, false, false, 1, 2, true, true, false, true, 0, true>(
      &tmW, &tmX, dy, nullptr, DT_BF16, dh, DT_BF16, sortedExpert, sortedScattered, M, E, inDim, F,
      1, 1, WsGlu{pq, nullptr, nullptr, nullptr, &tmH, nullptr, &tmDh, staggerCycles, staggerPhases})));
}

// Variants 62 and 63 (lab settings, MOETUNE_MOE_PINGPONG): kernel56's dX2 on ping-pong consumers
// (ws_s2s_pp_fac): 64 x 256 tiles a warpgroup, no clusters; 62 with four stages and a staging slot
// a warpgroup, 63 with five stages and one slot the epilogues take in turn. Kernel56's arguments
// and maps but tmX's box: dY's grouped rows in 64 x 64 boxes. Shared memory ws_pp_smem_bytes(4,
// 64, false) or ws_pp_smem_bytes(5, 64, true), + (2E + 1) ints. The same values as kernel56, bit
// for bit.
#define WS_GLUBWD_PP_BODY(WM, STAGES, SHARED)                                                       \
  WG_BODY((ws_s2s_pp_fac<2, WM, STAGES, SHARED>(                                                \
      &tmW, &tmX, dy, dh, sortedExpert, sortedScattered, M, E, inDim, F, 1,                     \
      WsGlu{pq, nullptr, nullptr, nullptr, &tmH, nullptr, &tmDh, staggerCycles, staggerPhases})))
MT_KERNEL void __launch_bounds__(WS_THREADS, 1)
    scatter2scatter_ws256_nc_glubwd_fac_pp_kernel62(WS_GLUBWD_FAC_ARGS) {
  WS_GLUBWD_PP_BODY(64, 4, false);
}
MT_KERNEL void __launch_bounds__(WS_THREADS, 1)
    scatter2scatter_ws256_nc_glubwd_fac_pp_kernel63(WS_GLUBWD_FAC_ARGS) {
  WS_GLUBWD_PP_BODY(64, 5, true);
}

// Variant 65 (MOETUNE_MOE_PINGPONG=v65): variants 62's ping-pong with 128 x 128 tiles a warpgroup
// (two m64n128k16 chains, kernel56's epilogue once per 64-row chunk with BN 128: four rounds)
// in six stages of 32 KiB: 32 KiB from L2 a 128 x 128 x 64 step against variant 62's 40 KiB a
// 64 x 256 x 64 one (1.33x the cooperative tile's bytes per FLOP, not 1.67x), 3,072 tensor cycles
// of stages ahead. Kernel56's arguments and maps (dY's rows in 64 x 128 boxes); shared memory
// ws_pp_smem_bytes(6, 128, false) + (2E + 1) ints. The same values as kernel56, bit for bit.
MT_KERNEL void __launch_bounds__(WS_THREADS, 1)
    scatter2scatter_ws128_nc_glubwd_fac_pp_kernel65(WS_GLUBWD_FAC_ARGS) {
  WS_GLUBWD_PP_BODY(128, 6, false);
}

// Variant 64 (MOETUNE_MOE_PINGPONG=v64): kernel56's first product (the factors p and q stored in
// h's place, a beside) on ping-pong warpgroups (ws_s2s_pp_fac GLU 1): 64 x 128 output tiles a
// warpgroup (the 128 gate and 128 up rows of W as in kernel15), x's rows gathered by the producer's
// 128 threads, four stages, a staging slot a warpgroup. Kernel56's arguments and maps; shared
// memory ws_pp_smem_bytes(4, 64, false) + (2E + 1) ints. The same values as kernel56, bit for bit.
#define WS_GLU_PP_BODY(WM, STAGES)                                                              \
  WG_BODY((ws_s2s_pp_fac<1, WM, STAGES, false>(                                                 \
      &tmW, &tmW, x, h, sortedExpert, sortedScattered, M, E, inDim, F, fanOut,                  \
      WsGlu{nullptr, a, nullptr, nullptr, &tmH, &tmAct, nullptr, staggerCycles, staggerPhases})))
MT_KERNEL void __launch_bounds__(WS_THREADS, 1)
    scatter2scatter_ws256_tg_glu_fac_pp_kernel64(WS_GLU_TMA_ARGS) {
  WS_GLU_PP_BODY(64, 4);
}

// Variant 66 (MOETUNE_MOE_PINGPONG=v66): variant 64 with 128 x 64 output tiles a warpgroup (B the 64
// gate and 64 up rows of W, two 64 x 64 boxes; two m64n128k16 chains), six stages of 32 KiB (as
// variant 65 for dX2: 64 bytes from L2 a cycle at the full rate against 80), the epilogue once per
// 64-row chunk with BN 128 (three rounds: p, q and a of one 64-column box). tmW: W (E, 2F, D) as
// {D, 2F, E} in 64 x 64 boxes; the rest kernel56's. Shared memory ws_pp_smem_bytes(6, 128, false)
// + (2E + 1) ints. The same values as kernel56, bit for bit.
MT_KERNEL void __launch_bounds__(WS_THREADS, 1)
    scatter2scatter_ws128_tg_glu_fac_pp_kernel66(WS_GLU_TMA_ARGS) {
  WS_GLU_PP_BODY(128, 6);
}
