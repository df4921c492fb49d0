// Tensor-core attention, FlashAttention-2 style, bf16 in and out with float32 accumulation, for
// head dims 64 and 128. Same visibility rules and layouts as attention.cu (see AttnSpec): q/out/dO
// (B*Tq, H, hd), k/v (B*Tk, Hkv, hd), lse f32 (B*Tq, H), optional doc ids (B*Tk).
//
// Forward: a block of 8 warps owns 128 query rows of one (batch row, head); each warp owns 16
// rows and keeps its Q fragments in registers. K/V tiles of 64 keys are double-buffered in shared
// memory with 16-byte cp.async; S = Q K^T and O += P V run on mma.sync m16n8k16 (bf16, f32
// accumulators); the softmax is online in registers (log2 domain); the log-sum-exp is saved.
//
// Backward: a block of 8 warps owns 128 keys of one (batch row, kv head); each warp owns 16 keys.
// It loops over the query heads of its group and the query tiles (64 rows) that can see its keys,
// recomputing S^T = K Q^T and P^T from the saved log-sum-exp; dP^T = V dO^T, dS^T = P^T (dP^T -
// delta); dV += P^T dO and dK += dS^T Q stay in registers (no atomics). dQ += dS K goes through
// shared memory (dS^T tile) and float32 atomics into a zeroed accumulator that
// attention_fa2_dq_convert_kernel scales and converts at the end.
//
// Shared-memory tiles keep rows of hd bf16 in 16-byte chunks, chunk c of row r stored at chunk
// c ^ (r & 7) so that ldmatrix's eight row addresses hit distinct banks.
#include "common.cuh"

namespace fa2 {

typedef __nv_bfloat16 bf16;

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return (uint32_t)__cvta_generic_to_shared(p);
}

// 16-byte global -> shared copy; valid == false zero-fills the destination.
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
  int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldsm_x4(uint32_t* r, uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t* r, uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// c += a (16x16, row) * b (16x8, col), bf16 in, f32 accumulate.
__device__ __forceinline__ void mma16816(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// mma16816's A fragment (16 x 16 bf16) from the float accumulators of two neighbouring n8 tiles
// (c0: columns 0-7, c1: 8-15) of an earlier product: how P and dS feed the next product from
// registers without a trip through shared memory.
__device__ __forceinline__ void acc_to_a(uint32_t* a, const float* c0, const float* c1) {
  a[0] = pack2(c0[0], c0[1]);
  a[1] = pack2(c0[2], c0[3]);
  a[2] = pack2(c1[0], c1[1]);
  a[3] = pack2(c1[2], c1[3]);
}

__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Element offset of (row r, 16-byte chunk c) in a swizzled tile whose rows hold W elements. Rows
// of 32 elements (4 chunks, two rows per 128 bytes) swizzle by row pair: eight consecutive rows
// at one chunk still cover all 32 banks.
template <int W>
__device__ __forceinline__ int swz(int r, int c) {
  static_assert(W == 32 || W % 64 == 0, "rows of 32 elements or a multiple of 64");
  if constexpr (W == 32) {
    return r * W + ((c ^ ((r >> 1) & 3)) << 3);
  } else {
    return r * W + ((c ^ (r & 7)) << 3);
  }
}

// Key j visible to the query at absolute position qa (doc ids already looked up; kd < 0 is pad).
__device__ __forceinline__ bool visible(int qa, int j, int Tk, int window, bool docs, int qd,
                                        int kd) {
  return j <= qa && j < Tk && (window <= 0 || qa - j < window) && (!docs || (kd >= 0 && kd == qd));
}

constexpr float LOG2E = 1.4426950408889634f;
constexpr float LN2 = 0.6931471805599453f;

// ------------------------------------------------------------------------------------ forward
//
// A block owns BM = 16 * MR * NW query rows: NW warps of MR 16-row tiles each. MR = 2 halves the
// shared-memory (ldmatrix) traffic per FLOP: each K/V fragment feeds two row tiles. QREG keeps
// the warp's Q fragments in registers (else they are re-read from a shared Q tile per key tile).

constexpr int FWD_BM = 128, FWD_BN = 64;

template <int HD, int MR, int NW, bool QREG>
constexpr int fwd_smem() {
  return (QREG ? 0 : FWD_BM * HD * 2) + 2 * 2 * FWD_BN * HD * 2 + 2 * FWD_BN * 4 + FWD_BM * 4;
}

template <int HD, int MR, int NW, bool QREG>
__device__ __forceinline__ void fwd(const bf16* __restrict__ q, const bf16* __restrict__ k,
                                    const bf16* __restrict__ v, bf16* __restrict__ out,
                                    float* __restrict__ lse, const int* __restrict__ doc,
                                    AttnDims a) {
  constexpr int BM = FWD_BM, BN = FWD_BN, CH = HD / 8, KC = HD / 16, NT = BN / 8;
  constexpr int NTH = NW * 32;
  static_assert(16 * MR * NW == BM, "a block owns FWD_BM rows");
  extern __shared__ __align__(128) unsigned char smem_raw[];
  bf16* sQ = reinterpret_cast<bf16*>(smem_raw);  // [BM][HD] unless QREG
  bf16* sK = sQ + (QREG ? 0 : BM * HD);          // [2][BN][HD]
  bf16* sV = sK + 2 * BN * HD;                    // [2][BN][HD]
  int* sDoc = reinterpret_cast<int*>(sV + 2 * BN * HD);  // [2][BN] doc ids of the key tile
  int* sQd = sDoc + 2 * BN;                              // [BM] doc ids of the block's queries
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int h = blockIdx.x % a.H, b = blockIdx.x / a.H;
  const int m0 = (gridDim.y - 1 - blockIdx.y) * BM;  // the longest (causal) tiles first
  const int hk = h / (a.H / a.Hkv);
  const int off = a.Tk - a.Tq;
  const long long qs = (long long)a.H * HD, ks = (long long)a.Hkv * HD;
  const bf16* qb = q + (long long)b * a.Tq * qs + (long long)h * HD;
  const bf16* kb = k + (long long)b * a.Tk * ks + (long long)hk * HD;
  const bf16* vb = v + (long long)b * a.Tk * ks + (long long)hk * HD;
  const int* docb = doc != nullptr ? doc + (long long)b * a.Tk : nullptr;
  const bool docs = docb != nullptr;

  const int qlast = min(m0 + BM, a.Tq) - 1;
  const int qa_min = off + m0, qa_max = off + qlast;
  const int jlo = a.window > 0 ? max(0, qa_min - a.window + 1) : 0;
  const int nb_lo = jlo / BN, nb_hi = qa_max / BN;

  // This thread's rows: block row lrow0 + 16 mr + 8 hf (hf: the accumulator's upper half).
  const int lrow0 = warp * MR * 16 + g;
  if (docs) {
    for (int r = tid; r < BM; r += NTH) sQd[r] = m0 + r < a.Tq ? docb[off + m0 + r] : 0;
  }

  uint32_t qf[QREG ? MR : 1][QREG ? KC : 1][4];
  if constexpr (QREG) {
#pragma unroll
    for (int mr = 0; mr < MR; mr++) {
#pragma unroll
      for (int kc = 0; kc < KC; kc++) {
        int c = kc * 16 + 2 * t;
        const int r0 = m0 + lrow0 + 16 * mr, r1 = r0 + 8;
        const bf16* p0 = qb + (long long)r0 * qs + c;
        const bf16* p1 = qb + (long long)r1 * qs + c;
        qf[mr][kc][0] = r0 < a.Tq ? *reinterpret_cast<const uint32_t*>(p0) : 0u;
        qf[mr][kc][1] = r1 < a.Tq ? *reinterpret_cast<const uint32_t*>(p1) : 0u;
        qf[mr][kc][2] = r0 < a.Tq ? *reinterpret_cast<const uint32_t*>(p0 + 8) : 0u;
        qf[mr][kc][3] = r1 < a.Tq ? *reinterpret_cast<const uint32_t*>(p1 + 8) : 0u;
      }
    }
  } else {
    for (int idx = tid; idx < BM * CH; idx += NTH) {
      int r = idx / CH, c = idx % CH, i = m0 + r;
      bool ok = i < a.Tq;
      cp_async16(smem_u32(sQ + swz<HD>(r, c)), qb + (ok ? (long long)i * qs + c * 8 : 0), ok);
    }
  }

  float o[MR][HD / 8][4];
  float mrow[MR][2], lrow[MR][2];
#pragma unroll
  for (int mr = 0; mr < MR; mr++) {
#pragma unroll
    for (int d = 0; d < HD / 8; d++) o[mr][d][0] = o[mr][d][1] = o[mr][d][2] = o[mr][d][3] = 0.f;
    mrow[mr][0] = mrow[mr][1] = -INFINITY;
    lrow[mr][0] = lrow[mr][1] = 0.f;
  }
  const float sl2 = a.scale * LOG2E;

  auto load_tile = [&](int nb, int buf) {
    const int n0 = nb * BN;
    for (int idx = tid; idx < BN * CH; idx += NTH) {
      int r = idx / CH, c = idx % CH, j = n0 + r;
      bool ok = j < a.Tk;
      long long go = ok ? (long long)j * ks + c * 8 : 0;
      int so = buf * BN * HD + swz<HD>(r, c);
      cp_async16(smem_u32(sK + so), kb + go, ok);
      cp_async16(smem_u32(sV + so), vb + go, ok);
    }
    if (docs && tid < BN) {
      int j = n0 + tid;
      sDoc[buf * BN + tid] = j < a.Tk ? docb[j] : -1;
    }
  };

  load_tile(nb_lo, 0);
  cp_commit();  // (with the Q tile when !QREG)
  for (int nb = nb_lo; nb <= nb_hi; nb++) {
    const int buf = (nb - nb_lo) & 1;
    if (nb < nb_hi) {
      load_tile(nb + 1, buf ^ 1);
      cp_commit();
      cp_wait<1>();
    } else {
      cp_wait<0>();
    }
    __syncthreads();
    const bf16* cK = sK + buf * BN * HD;
    const bf16* cV = sV + buf * BN * HD;
    const int n0 = nb * BN;

    // S = Q K^T (raw scores; the scale is folded into the exponent below).
    float s[MR][NT][4];
#pragma unroll
    for (int mr = 0; mr < MR; mr++)
#pragma unroll
      for (int n = 0; n < NT; n++) s[mr][n][0] = s[mr][n][1] = s[mr][n][2] = s[mr][n][3] = 0.f;
#pragma unroll
    for (int kc = 0; kc < KC; kc++) {
      uint32_t qa[MR][4];
#pragma unroll
      for (int mr = 0; mr < MR; mr++) {
        if constexpr (QREG) {
#pragma unroll
          for (int x = 0; x < 4; x++) qa[mr][x] = qf[mr][kc][x];
        } else {
          int r = (warp * MR + mr) * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
          ldsm_x4(qa[mr], smem_u32(sQ + swz<HD>(r, kc * 2 + (lane >> 4))));
        }
      }
#pragma unroll
      for (int np = 0; np < NT / 2; np++) {
        uint32_t bb[4];
        int r = np * 16 + (lane & 7) + ((lane >> 4) << 3);
        int ch = kc * 2 + ((lane >> 3) & 1);
        ldsm_x4(bb, smem_u32(cK + swz<HD>(r, ch)));
#pragma unroll
        for (int mr = 0; mr < MR; mr++) {
          mma16816(s[mr][2 * np], qa[mr], bb[0], bb[1]);
          mma16816(s[mr][2 * np + 1], qa[mr], bb[2], bb[3]);
        }
      }
    }

    const bool full =
        !docs && n0 + BN - 1 <= qa_min && (a.window <= 0 || qa_max - n0 < a.window);
    if (!full) {
#pragma unroll
      for (int mr = 0; mr < MR; mr++) {
#pragma unroll
        for (int n = 0; n < NT; n++) {
#pragma unroll
          for (int e = 0; e < 4; e++) {
            int j = n0 + n * 8 + 2 * t + (e & 1);
            const int lr = lrow0 + 16 * mr + 8 * (e >> 1);
            int kd = docs ? sDoc[buf * BN + j - n0] : 0;
            int qdv = docs ? sQd[lr] : 0;
            if (!visible(off + m0 + lr, j, a.Tk, a.window, docs, qdv, kd)) {
              s[mr][n][e] = -INFINITY;
            }
          }
        }
      }
    }
    // Online softmax in the log2 domain: p = 2^(s * scale * log2e - m).
#pragma unroll
    for (int mr = 0; mr < MR; mr++) {
#pragma unroll
      for (int hf = 0; hf < 2; hf++) {
        float mx = -INFINITY;
#pragma unroll
        for (int n = 0; n < NT; n++) mx = fmaxf(mx, fmaxf(s[mr][n][2 * hf], s[mr][n][2 * hf + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float mnew = fmaxf(mrow[mr][hf], mx * sl2);
        const float mu = mnew == -INFINITY ? 0.f : mnew;
        const float corr = ex2(mrow[mr][hf] - mu);
        mrow[mr][hf] = mnew;
        float ls = 0.f;
#pragma unroll
        for (int n = 0; n < NT; n++) {
          float p0 = ex2(fmaf(s[mr][n][2 * hf], sl2, -mu));
          float p1 = ex2(fmaf(s[mr][n][2 * hf + 1], sl2, -mu));
          s[mr][n][2 * hf] = p0;
          s[mr][n][2 * hf + 1] = p1;
          ls += p0 + p1;
        }
        lrow[mr][hf] = lrow[mr][hf] * corr + ls;
#pragma unroll
        for (int d = 0; d < HD / 8; d++) {
          o[mr][d][2 * hf] *= corr;
          o[mr][d][2 * hf + 1] *= corr;
        }
      }
    }

    // O += P V.
#pragma unroll
    for (int kk = 0; kk < BN / 16; kk++) {
      uint32_t pa[MR][4];
#pragma unroll
      for (int mr = 0; mr < MR; mr++) {
        acc_to_a(pa[mr], s[mr][2 * kk], s[mr][2 * kk + 1]);
      }
#pragma unroll
      for (int dp = 0; dp < HD / 16; dp++) {
        uint32_t bb[4];
        int r = kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
        int ch = dp * 2 + (lane >> 4);
        ldsm_x4_t(bb, smem_u32(cV + swz<HD>(r, ch)));
#pragma unroll
        for (int mr = 0; mr < MR; mr++) {
          mma16816(o[mr][2 * dp], pa[mr], bb[0], bb[1]);
          mma16816(o[mr][2 * dp + 1], pa[mr], bb[2], bb[3]);
        }
      }
    }
    __syncthreads();  // every warp is done with buf before the next iteration refills it
  }

#pragma unroll
  for (int mr = 0; mr < MR; mr++) {
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
      float l = lrow[mr][hf];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const int r = m0 + lrow0 + 16 * mr + 8 * hf;
      if (r >= a.Tq) continue;
      const float inv = l > 0.f ? 1.f / l : 0.f;
      bf16* ob = out + ((long long)b * a.Tq + r) * qs + (long long)h * HD + 2 * t;
#pragma unroll
      for (int d = 0; d < HD / 8; d++) {
        *reinterpret_cast<uint32_t*>(ob + d * 8) =
            pack2(o[mr][d][2 * hf] * inv, o[mr][d][2 * hf + 1] * inv);
      }
      if (t == 0) {
        lse[((long long)b * a.Tq + r) * a.H + h] =
            l > 0.f ? (mrow[mr][hf] + __log2f(l)) * LN2 : -INFINITY;
      }
    }
  }
}

// ----------------------------------------------------------------------------------- backward

// A block owns BN = 16 * MR * NW keys (NW warps of MR 16-key tiles) and loops over BM-query
// tiles. v1: 8 warps of 16 keys, BM = 64, one block per SM; v2: 4 warps of 16 keys, two blocks
// per SM (the same registers per warp, but the two blocks' barriers, exponentials and dQ atomics
// overlap each other's tensor-core work); v3 (hd 64): v2 at three blocks per SM; v4 (hd 64): 4
// warps of 32 keys (MR = 2: each Q/dO fragment feeds two key tiles, half the shared-memory reads
// per product) over 32-query tiles, two blocks per SM.
template <int HD, int BN, int BM>
constexpr int bwd_smem() {
  return (2 * BN * HD + 4 * BM * HD + BN * BM) * 2 + 3 * 2 * BM * 4;
}

// DQ: 0, dQ = dS K after each query tile's dS^T (two barriers per tile); 3 (v8), the same one
// tile late, right after the next tile's first barrier, from a second dS^T buffer: one barrier per
// tile, and the dQ products and atomics of tile i overlap the S/dP work of tile i + 1 across warps.
// Lab diagnostics only (kernels/lab/attention `./harness diag`, wrong dQ, timing only): 1, dQ by
// plain stores instead of atomics; 2, no dQ product.
template <int HD, int NW, int MR, int BM, int DQ = 0>
__device__ __forceinline__ void bwd(const bf16* __restrict__ dout, const bf16* __restrict__ q,
                                    const bf16* __restrict__ k, const bf16* __restrict__ v,
                                    const float* __restrict__ lse,
                                    const float* __restrict__ delta, const int* __restrict__ doc,
                                    float* __restrict__ dqacc, bf16* __restrict__ dk,
                                    bf16* __restrict__ dv, AttnDims a) {
  constexpr int BN = 16 * MR * NW, CH = HD / 8, KC = HD / 16, MT = BM / 8;
  constexpr int NTH = 32 * NW;
  static_assert(NTH >= BM, "one thread per query row loads lse, delta and the doc id");
  extern __shared__ __align__(128) unsigned char smem_raw[];
  bf16* sK = reinterpret_cast<bf16*>(smem_raw);  // [BN][HD]
  bf16* sV = sK + BN * HD;                        // [BN][HD]
  bf16* sQ = sV + BN * HD;                        // [2][BM][HD]
  bf16* sO = sQ + 2 * BM * HD;                    // [2][BM][HD] (dO)
  constexpr int NSB = DQ == 3 ? 2 : 1;            // dS^T buffers
  bf16* sS = sO + 2 * BM * HD;                    // [NSB][BN][BM] dS^T
  float* sL = reinterpret_cast<float*>(sS + NSB * BN * BM);  // [2][BM] lse * log2e (+inf: none)
  float* sD = sL + 2 * BM;                                     // [2][BM] delta
  int* sQd = reinterpret_cast<int*>(sD + 2 * BM);              // [2][BM] doc id of the query
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int hk = blockIdx.x % a.Hkv, b = blockIdx.x / a.Hkv;
  const int n0 = blockIdx.y * BN;
  const int group = a.H / a.Hkv;
  const int off = a.Tk - a.Tq;
  const long long qs = (long long)a.H * HD, ks = (long long)a.Hkv * HD;
  const bf16* kb = k + (long long)b * a.Tk * ks + (long long)hk * HD;
  const bf16* vb = v + (long long)b * a.Tk * ks + (long long)hk * HD;
  const int* docb = doc != nullptr ? doc + (long long)b * a.Tk : nullptr;
  const bool docs = docb != nullptr;

  // This thread's keys: block row wrow + 16 mr + g (+ 8 for the accumulator's upper half).
  const int wrow = warp * MR * 16;
  int kd[MR][2];
#pragma unroll
  for (int mr = 0; mr < MR; mr++) {
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
      const int j = n0 + wrow + 16 * mr + g + 8 * hf;
      kd[mr][hf] = docs ? (j < a.Tk ? docb[j] : -1) : 0;
    }
  }
  const int nlast = min(n0 + BN, a.Tk) - 1;

  // Queries that may see a key of this block: qa >= n0 and (window) qa <= nlast + window - 1.
  const int i_lo = max(0, n0 - off);
  int i_hi = a.Tq - 1;
  if (a.window > 0) i_hi = min(i_hi, nlast + a.window - 1 - off);
  const int nmb = i_lo <= i_hi ? i_hi / BM - i_lo / BM + 1 : 0;
  const int mb_lo = i_lo / BM;
  const int total = nmb * group;

  for (int idx = tid; idx < BN * CH; idx += NTH) {
    int r = idx / CH, c = idx % CH, j = n0 + r;
    bool ok = j < a.Tk;
    long long go = ok ? (long long)j * ks + c * 8 : 0;
    cp_async16(smem_u32(sK + swz<HD>(r, c)), kb + go, ok);
    cp_async16(smem_u32(sV + swz<HD>(r, c)), vb + go, ok);
  }

  auto load_q = [&](int it, int buf) {
    const int h = hk * group + it / nmb, m0 = (mb_lo + it % nmb) * BM;
    const bf16* qb = q + (long long)b * a.Tq * qs + (long long)h * HD;
    const bf16* ob = dout + (long long)b * a.Tq * qs + (long long)h * HD;
    for (int idx = tid; idx < BM * CH; idx += NTH) {
      int r = idx / CH, c = idx % CH, i = m0 + r;
      bool ok = i < a.Tq;
      long long go = ok ? (long long)i * qs + c * 8 : 0;
      int so = buf * BM * HD + swz<HD>(r, c);
      cp_async16(smem_u32(sQ + so), qb + go, ok);
      cp_async16(smem_u32(sO + so), ob + go, ok);
    }
    if (tid < BM) {
      int i = m0 + tid;
      float L = INFINITY, D = 0.f;
      int qd = 0;
      if (i < a.Tq) {
        long long row = ((long long)b * a.Tq + i) * a.H + h;
        float l = lse[row];
        L = l == -INFINITY ? INFINITY : l * LOG2E;
        D = delta[row];
        qd = docs ? docb[off + i] : 0;
      }
      sL[buf * BM + tid] = L;
      sD[buf * BM + tid] = D;
      sQd[buf * BM + tid] = qd;
    }
  };

  float dKa[MR][HD / 8][4], dVa[MR][HD / 8][4];
#pragma unroll
  for (int mr = 0; mr < MR; mr++) {
#pragma unroll
    for (int d = 0; d < HD / 8; d++) {
#pragma unroll
      for (int e = 0; e < 4; e++) dKa[mr][d][e] = dVa[mr][d][e] = 0.f;
    }
  }
  const float sl2 = a.scale * LOG2E;

  // dQ (BM x HD) of one query tile (rows from m0q, head hq) = dS K from the dS^T tile cS, split
  // over the warps, atomically added.
  auto dq_tile = [&](const bf16* cS, int m0q, int hq) {
    constexpr int QW = BM / 16;         // warps along the queries
    constexpr int DW = NW / QW;         // warps along the head dim
    constexpr int DCOLS = HD / DW;      // head-dim columns per warp
    static_assert(QW * DW == NW && DCOLS % 16 == 0, "the dQ tile splits over the warps");
    const int q0 = (warp % QW) * 16, dbase = (warp / QW) * DCOLS;
    float dqa[DCOLS / 8][4];
#pragma unroll
    for (int d = 0; d < DCOLS / 8; d++) dqa[d][0] = dqa[d][1] = dqa[d][2] = dqa[d][3] = 0.f;
#pragma unroll
    for (int kc = 0; kc < BN / 16; kc++) {
      uint32_t sa[4];
      int srow = kc * 16 + (lane & 7) + ((lane >> 4) << 3);
      int sch = (q0 >> 3) + ((lane >> 3) & 1);
      ldsm_x4_t(sa, smem_u32(cS + swz<BM>(srow, sch)));
#pragma unroll
      for (int d2 = 0; d2 < DCOLS / 16; d2++) {
        uint32_t bk[4];
        int row = kc * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
        int ch = (dbase >> 3) + d2 * 2 + (lane >> 4);
        ldsm_x4_t(bk, smem_u32(sK + swz<HD>(row, ch)));
        mma16816(dqa[2 * d2], sa, bk[0], bk[1]);
        mma16816(dqa[2 * d2 + 1], sa, bk[2], bk[3]);
      }
    }
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
      const int i = m0q + q0 + g + 8 * rr;
      if (i >= a.Tq) continue;
      float* dst = dqacc + (((long long)b * a.Tq + i) * a.H + hq) * HD + dbase + 2 * t;
#pragma unroll
      for (int d = 0; d < DCOLS / 8; d++) {
        if constexpr (DQ == 1) {
          *reinterpret_cast<float2*>(dst + d * 8) = make_float2(dqa[d][2 * rr], dqa[d][2 * rr + 1]);
          continue;
        }
#if __CUDA_ARCH__ >= 900
        atomicAdd(reinterpret_cast<float2*>(dst + d * 8),
                  make_float2(dqa[d][2 * rr], dqa[d][2 * rr + 1]));
#else
        atomicAdd(dst + d * 8, dqa[d][2 * rr]);
        atomicAdd(dst + d * 8 + 1, dqa[d][2 * rr + 1]);
#endif
      }
    }
  };

  if (total > 0) load_q(0, 0);
  cp_commit();
  for (int it = 0; it < total; it++) {
    const int buf = it & 1;
    if constexpr (DQ == 3) {
      // The copies of tile it + 1 go into the buffer of tile it - 1, which every warp left before
      // this barrier; the previous tile's dQ reads its own dS^T buffer.
      cp_wait<0>();
      __syncthreads();
      if (it + 1 < total) load_q(it + 1, buf ^ 1);
      cp_commit();
      if (it > 0) {
        dq_tile(sS + (buf ^ 1) * BN * BM, (mb_lo + (it - 1) % nmb) * BM,
                hk * group + (it - 1) / nmb);
      }
    } else {
      if (it + 1 < total) {
        load_q(it + 1, buf ^ 1);
        cp_commit();
        cp_wait<1>();
      } else {
        cp_wait<0>();
      }
      __syncthreads();
    }
    const int h = hk * group + it / nmb, m0 = (mb_lo + it % nmb) * BM;
    const bf16* cQ = sQ + buf * BM * HD;
    const bf16* cO = sO + buf * BM * HD;
    const float* cL = sL + buf * BM;
    const float* cD = sD + buf * BM;
    const int* cQd = sQd + buf * BM;

    // S^T = K Q^T and dP^T = V dO^T, 16 MR keys x BM queries per warp.
    float s[MR][MT][4], dp[MR][MT][4];
#pragma unroll
    for (int mr = 0; mr < MR; mr++) {
#pragma unroll
      for (int n = 0; n < MT; n++) {
#pragma unroll
        for (int e = 0; e < 4; e++) s[mr][n][e] = dp[mr][n][e] = 0.f;
      }
    }
#pragma unroll
    for (int kc = 0; kc < KC; kc++) {
      uint32_t ka[MR][4], va[MR][4];
#pragma unroll
      for (int mr = 0; mr < MR; mr++) {
        int arow = wrow + 16 * mr + (lane & 7) + (((lane >> 3) & 1) << 3);
        int ach = kc * 2 + (lane >> 4);
        ldsm_x4(ka[mr], smem_u32(sK + swz<HD>(arow, ach)));
        ldsm_x4(va[mr], smem_u32(sV + swz<HD>(arow, ach)));
      }
#pragma unroll
      for (int np = 0; np < MT / 2; np++) {
        uint32_t bq[4], bo[4];
        int row = np * 16 + (lane & 7) + ((lane >> 4) << 3);
        int ch = kc * 2 + ((lane >> 3) & 1);
        ldsm_x4(bq, smem_u32(cQ + swz<HD>(row, ch)));
        ldsm_x4(bo, smem_u32(cO + swz<HD>(row, ch)));
#pragma unroll
        for (int mr = 0; mr < MR; mr++) {
          mma16816(s[mr][2 * np], ka[mr], bq[0], bq[1]);
          mma16816(s[mr][2 * np + 1], ka[mr], bq[2], bq[3]);
          mma16816(dp[mr][2 * np], va[mr], bo[0], bo[1]);
          mma16816(dp[mr][2 * np + 1], va[mr], bo[2], bo[3]);
        }
      }
    }

    const int qa_min = off + m0, qa_max = off + min(m0 + BM, a.Tq) - 1;
    const bool full = !docs && nlast <= qa_min && n0 + BN <= a.Tk &&
                      (a.window <= 0 || qa_max - n0 < a.window);
#pragma unroll
    for (int mr = 0; mr < MR; mr++) {
#pragma unroll
      for (int n = 0; n < MT; n++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int c = n * 8 + 2 * t + (e & 1);
          float p = ex2(s[mr][n][e] * sl2 - cL[c]);
          if (!full) {
            const int j = n0 + wrow + 16 * mr + g + 8 * (e >> 1);
            if (!visible(off + m0 + c, j, a.Tk, a.window, docs, cQd[c], kd[mr][e >> 1])) p = 0.f;
          }
          s[mr][n][e] = p;
          dp[mr][n][e] = p * (dp[mr][n][e] - cD[c]);
        }
      }
    }

    // dV += P^T dO, dK += dS^T Q (A from registers, B = dO / Q tiles transposed).
#pragma unroll
    for (int kk = 0; kk < BM / 16; kk++) {
      uint32_t pa[MR][4], da[MR][4];
#pragma unroll
      for (int mr = 0; mr < MR; mr++) {
        acc_to_a(pa[mr], s[mr][2 * kk], s[mr][2 * kk + 1]);
        acc_to_a(da[mr], dp[mr][2 * kk], dp[mr][2 * kk + 1]);
      }
#pragma unroll
      for (int d2 = 0; d2 < HD / 16; d2++) {
        uint32_t bo[4], bq[4];
        int row = kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
        int ch = d2 * 2 + (lane >> 4);
        ldsm_x4_t(bo, smem_u32(cO + swz<HD>(row, ch)));
        ldsm_x4_t(bq, smem_u32(cQ + swz<HD>(row, ch)));
#pragma unroll
        for (int mr = 0; mr < MR; mr++) {
          mma16816(dVa[mr][2 * d2], pa[mr], bo[0], bo[1]);
          mma16816(dVa[mr][2 * d2 + 1], pa[mr], bo[2], bo[3]);
          mma16816(dKa[mr][2 * d2], da[mr], bq[0], bq[1]);
          mma16816(dKa[mr][2 * d2 + 1], da[mr], bq[2], bq[3]);
        }
      }
    }

    // dS^T -> shared (bf16), then dQ (BM x HD) = dS K split over the warps, atomically added.
    bf16* wS = sS + (DQ == 3 ? buf * BN * BM : 0);
#pragma unroll
    for (int mr = 0; mr < MR; mr++) {
      const int kr = wrow + 16 * mr + g;
#pragma unroll
      for (int n = 0; n < MT; n++) {
        *reinterpret_cast<uint32_t*>(wS + swz<BM>(kr, n) + 2 * t) =
            pack2(dp[mr][n][0], dp[mr][n][1]);
        *reinterpret_cast<uint32_t*>(wS + swz<BM>(kr + 8, n) + 2 * t) =
            pack2(dp[mr][n][2], dp[mr][n][3]);
      }
    }
    if constexpr (DQ == 0 || DQ == 1) {
      __syncthreads();
      dq_tile(sS, m0, h);
    } else if constexpr (DQ == 2) {
      __syncthreads();
    }
    // No barrier here: the next iteration's copies refill this iteration's Q/dO/lse/delta buffer,
    // which every warp left before the barrier above (the dQ product reads only sS and sK), and
    // sS is rewritten only after the next iteration's first barrier, which waits for every dQ.
  }
  if constexpr (DQ == 3) {
    if (total > 0) {
      __syncthreads();
      dq_tile(sS + ((total - 1) & 1) * BN * BM, (mb_lo + (total - 1) % nmb) * BM,
              hk * group + (total - 1) / nmb);
    }
  }
  cp_wait<0>();  // with no query tile, the K/V copies are still outstanding

#pragma unroll
  for (int mr = 0; mr < MR; mr++) {
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
      const int j = n0 + wrow + 16 * mr + g + 8 * rr;
      if (j >= a.Tk) continue;
      const long long base = ((long long)b * a.Tk + j) * ks + (long long)hk * HD + 2 * t;
#pragma unroll
      for (int d = 0; d < HD / 8; d++) {
        *reinterpret_cast<uint32_t*>(dk + base + d * 8) =
            pack2(a.scale * dKa[mr][d][2 * rr], a.scale * dKa[mr][d][2 * rr + 1]);
        *reinterpret_cast<uint32_t*>(dv + base + d * 8) =
            pack2(dVa[mr][d][2 * rr], dVa[mr][d][2 * rr + 1]);
      }
    }
  }
}

}  // namespace fa2

// Launch: grid (B*H, ceil(Tq/128)), 32 * NW threads, fa2::fwd_smem<HD, MR, NW, QREG>() bytes of
// shared memory. v1: 8 warps of 16 rows, Q in registers; v2: 4 warps of 32 rows (2 blocks/SM).
#define FA2_FWD(NAME, HD, MR, NW, QREG, MINB)                                                   \
  MT_KERNEL void __launch_bounds__(NW * 32, MINB)                                              \
      NAME(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,             \
           __nv_bfloat16* out, float* lse, const int* doc, AttnDims a) {                       \
    fa2::fwd<HD, MR, NW, QREG>(q, k, v, out, lse, doc, a);                                     \
  }
FA2_FWD(attention_fa2_forward_hd64, 64, 2, 4, true, 2)
FA2_FWD(attention_fa2_forward_hd128, 128, 2, 4, false, 2)
FA2_FWD(attention_fa2_forward_v1_hd64, 64, 1, 8, true, 1)
FA2_FWD(attention_fa2_forward_v1_hd128, 128, 1, 8, true, 1)

// Launch: grid (B*Hkv, ceil(Tk/BN)), BN = 16*MR*NW, 32*NW threads, fa2::bwd_smem<HD, BN, BM>()
// bytes of shared memory; dqacc (B*Tq, H, hd) float32 zeroed first; delta from
// attention_delta_kernel.
#define FA2_BWD(NAME, HD, NW, MR, BM, MINB)                                                       \
  MT_KERNEL void __launch_bounds__(NW * 32, MINB)                                                 \
      NAME(const __nv_bfloat16* dout, const __nv_bfloat16* q, const __nv_bfloat16* k,            \
           const __nv_bfloat16* v, const float* lse, const float* delta, const int* doc,          \
           float* dqacc, __nv_bfloat16* dk, __nv_bfloat16* dv, AttnDims a) {                      \
    fa2::bwd<HD, NW, MR, BM>(dout, q, k, v, lse, delta, doc, dqacc, dk, dv, a);                   \
  }
FA2_BWD(attention_fa2_backward_hd64, 64, 8, 1, 64, 1)
FA2_BWD(attention_fa2_backward_hd128, 128, 8, 1, 64, 1)
FA2_BWD(attention_fa2_backward_v2_hd64, 64, 4, 1, 64, 2)
FA2_BWD(attention_fa2_backward_v2_hd128, 128, 4, 1, 64, 2)
FA2_BWD(attention_fa2_backward_v3_hd64, 64, 4, 1, 64, 3)
FA2_BWD(attention_fa2_backward_v4_hd64, 64, 4, 2, 32, 2)

// v8: v1 with the dQ product one tile late (DQ = 3); bwd_smem<HD, 128, 64>() + 128 * 64 * 2 bytes.
MT_KERNEL void __launch_bounds__(256, 1)
    attention_fa2_backward_v8_hd128(const __nv_bfloat16* dout, const __nv_bfloat16* q,
                                    const __nv_bfloat16* k, const __nv_bfloat16* v,
                                    const float* lse, const float* delta, const int* doc,
                                    float* dqacc, __nv_bfloat16* dk, __nv_bfloat16* dv,
                                    AttnDims a) {
  fa2::bwd<128, 8, 1, 64, 3>(dout, q, k, v, lse, delta, doc, dqacc, dk, dv, a);
}


// dq[i] = scale * dqacc[i] in bf16, four at a time (n is a multiple of 4).
MT_KERNEL void attention_fa2_dq_convert_kernel(const float* dqacc, __nv_bfloat16* dq, long long n,
                                               float scale) {
  for (long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 4; i < n;
       i += (long long)gridDim.x * blockDim.x * 4) {
    float4 x = *reinterpret_cast<const float4*>(dqacc + i);
    uint2 y = make_uint2(fa2::pack2(scale * x.x, scale * x.y), fa2::pack2(scale * x.z, scale * x.w));
    *reinterpret_cast<uint2*>(dq + i) = y;
  }
}

// The backward's first pass: delta[row] = dot(dO[row], out[row]) (bf16, hd/8 threads of 16-byte
// loads per row) and dqacc[row] = 0 (float32), for rows = B*Tq*H rows of hd (64 or 128) elements.
MT_KERNEL void attention_fa2_delta_kernel(const __nv_bfloat16* dout, const __nv_bfloat16* out,
                                          float* delta, float* dqacc, long long rows, int hd) {
  const int per = hd / 8;  // threads per row: 8 or 16, a power of two dividing 32
  long long tidg = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  long long row = tidg / per;
  int part = (int)(tidg % per);
  float s = 0.f;
  if (row < rows) {
    long long e = row * hd + part * 8;
    uint4 x = *reinterpret_cast<const uint4*>(dout + e);
    uint4 y = *reinterpret_cast<const uint4*>(out + e);
    const __nv_bfloat162* xa = reinterpret_cast<const __nv_bfloat162*>(&x);
    const __nv_bfloat162* ya = reinterpret_cast<const __nv_bfloat162*>(&y);
#pragma unroll
    for (int i = 0; i < 4; i++) {
      float2 xf = __bfloat1622float2(xa[i]), yf = __bfloat1622float2(ya[i]);
      s += xf.x * yf.x + xf.y * yf.y;
    }
    float4 z = make_float4(0.f, 0.f, 0.f, 0.f);
    *reinterpret_cast<float4*>(dqacc + e) = z;
    *reinterpret_cast<float4*>(dqacc + e + 4) = z;
  }
  for (int o = per / 2; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  if (row < rows && part == 0) delta[row] = s;
}
