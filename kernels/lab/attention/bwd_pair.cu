// Attention lab: the backward by warp pairs, variants v5-v7 (hd 128), moved out of the shipped
// src/main/cuda/attention_fa2.cu: slower than v1 and v8 on the H200 (README.md's table of
// 2026-12-02), kept here, with their numbers, for the harness. Include after attention_fa2.cu
// (it uses fa2::bwd_smem and the fragment helpers).
namespace fa2 {

// Backward by warp pairs (hd 128): NP pairs of warps, each pair owning 32 keys (two m16 tiles, so
// every Q/dO fragment read through ldmatrix feeds two key tiles, as v4 does at hd 64). The pair's
// first warp computes S^T = K Q^T, P^T and dV += P^T dO; its second computes dP^T = V dO^T, reads
// P^T (bf16) from its partner through shared memory, forms dS^T = P^T (dP^T - delta) and dK +=
// dS^T Q. Each warp thus holds one 32 x HD accumulator (128 floats at hd 128) where a warp holding
// both dK and dV for 32 keys would need 256. Both warps run the same product code on different
// operands (K/Q or V/dO), so the only branch is the softmax / dS step. The P^T hand-over uses the
// pair's rows of the dS^T tile (same size), synchronised by a named barrier of the pair's 64
// threads; dQ = dS K then runs on all warps as in bwd (QR = 2 query tiles per warp).
// SEP (4 pairs, one block per SM): P^T gets its own buffer, so the dS^T step reads it element by
// element instead of holding the whole tile first (fewer live registers); with 2 pairs the hand-over
// reuses the dS^T rows so that two blocks fit an SM.
template <int NP>
__host__ __device__ constexpr bool bwd_pair_sep() {
  return NP == 4;
}
template <int HD, int NP, int BM>
constexpr int bwd_pair_smem() {
  return bwd_smem<HD, 32 * NP, BM>() + (bwd_pair_sep<NP>() ? 32 * NP * BM * 2 : 0);
}

// bar.sync 1 + pair, 64 with an immediate id: a register id makes ptxas reserve all 16 barriers,
// which would leave room for one block per SM.
__device__ __forceinline__ void bar_pair(int pair) {
  switch (pair) {
    case 0: asm volatile("bar.sync 1, 64;\n" ::: "memory"); break;
    case 1: asm volatile("bar.sync 2, 64;\n" ::: "memory"); break;
    case 2: asm volatile("bar.sync 3, 64;\n" ::: "memory"); break;
    default: asm volatile("bar.sync 4, 64;\n" ::: "memory"); break;
  }
}

template <int HD, int NP, int BM>
__device__ __forceinline__ void bwd_pair(const bf16* __restrict__ dout, const bf16* __restrict__ q,
                                         const bf16* __restrict__ k, const bf16* __restrict__ v,
                                         const float* __restrict__ lse,
                                         const float* __restrict__ delta,
                                         const int* __restrict__ doc, float* __restrict__ dqacc,
                                         bf16* __restrict__ dk, bf16* __restrict__ dv,
                                         AttnDims a) {
  constexpr int MR = 2, NW = 2 * NP, BN = 32 * NP, CH = HD / 8, KC = HD / 16, MT = BM / 8;
  constexpr int NTH = 32 * NW;
  constexpr bool SEP = bwd_pair_sep<NP>();
  static_assert(NP <= 4, "bar_pair has four ids");
  static_assert(NTH >= BM, "one thread per query row loads lse, delta and the doc id");
  static_assert(2 * MT * 2 * 32 * 4 == 32 * BM * 2, "P^T (lane-major) fits the pair's dS^T rows");
  extern __shared__ __align__(128) unsigned char smem_raw[];
  bf16* sK = reinterpret_cast<bf16*>(smem_raw);  // [BN][HD]
  bf16* sV = sK + BN * HD;                        // [BN][HD]
  bf16* sQ = sV + BN * HD;                        // [2][BM][HD]
  bf16* sO = sQ + 2 * BM * HD;                    // [2][BM][HD] (dO)
  bf16* sS = sO + 2 * BM * HD;                    // [BN][BM] dS^T (P^T hand-over before it)
  float* sL = reinterpret_cast<float*>(sS + BN * BM);  // [2][BM] lse * log2e (+inf: no keys)
  float* sD = sL + 2 * BM;                               // [2][BM] delta
  int* sQd = reinterpret_cast<int*>(sD + 2 * BM);        // [2][BM] doc id of the query
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int pair = warp % NP, role = warp / NP;  // role 0: S, P, dV; role 1: dP, dS, dK
  const int hk = blockIdx.x % a.Hkv, b = blockIdx.x / a.Hkv;
  const int n0 = blockIdx.y * BN;
  const int group = a.H / a.Hkv;
  const int off = a.Tk - a.Tq;
  const long long qs = (long long)a.H * HD, ks = (long long)a.Hkv * HD;
  const bf16* kb = k + (long long)b * a.Tk * ks + (long long)hk * HD;
  const bf16* vb = v + (long long)b * a.Tk * ks + (long long)hk * HD;
  const int* docb = doc != nullptr ? doc + (long long)b * a.Tk : nullptr;
  const bool docs = docb != nullptr;

  const int wrow = pair * 32;
  // P^T of the pair, [MR * MT * 2][32] uint32 lane-major: after sQd (SEP) or in the dS^T rows.
  uint32_t* sP = SEP ? reinterpret_cast<uint32_t*>(sQd + 2 * BM) + pair * (32 * BM / 2)
                     : reinterpret_cast<uint32_t*>(sS + wrow * BM);
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

  // dV (role 0) or dK (role 1) for the pair's 32 keys.
  float acc[MR][HD / 8][4];
#pragma unroll
  for (int mr = 0; mr < MR; mr++) {
#pragma unroll
    for (int d = 0; d < HD / 8; d++) {
#pragma unroll
      for (int e = 0; e < 4; e++) acc[mr][d][e] = 0.f;
    }
  }
  const float sl2 = a.scale * LOG2E;
  // The operands of this warp's products: K, Q tile, dO tile (role 0) or V, dO tile, Q tile.
  const bf16* sX = role == 0 ? sK : sV;

  if (total > 0) load_q(0, 0);
  cp_commit();
  for (int it = 0; it < total; it++) {
    const int buf = it & 1;
    if (it + 1 < total) {
      load_q(it + 1, buf ^ 1);
      cp_commit();
      cp_wait<1>();
    } else {
      cp_wait<0>();
    }
    __syncthreads();
    const int h = hk * group + it / nmb, m0 = (mb_lo + it % nmb) * BM;
    const bf16* cQ = sQ + buf * BM * HD;
    const bf16* cO = sO + buf * BM * HD;
    const bf16* cY = role == 0 ? cQ : cO;  // B operand of the first product
    const bf16* cZ = role == 0 ? cO : cQ;  // B operand (transposed) of the second
    const float* cL = sL + buf * BM;
    const float* cD = sD + buf * BM;
    const int* cQd = sQd + buf * BM;

    // S^T = K Q^T (role 0) or dP^T = V dO^T (role 1): 32 keys x BM queries.
    float s[MR][MT][4];
#pragma unroll
    for (int mr = 0; mr < MR; mr++) {
#pragma unroll
      for (int n = 0; n < MT; n++) {
#pragma unroll
        for (int e = 0; e < 4; e++) s[mr][n][e] = 0.f;
      }
    }
#pragma unroll
    for (int kc = 0; kc < KC; kc++) {
      uint32_t xa[MR][4];
#pragma unroll
      for (int mr = 0; mr < MR; mr++) {
        int arow = wrow + 16 * mr + (lane & 7) + (((lane >> 3) & 1) << 3);
        int ach = kc * 2 + (lane >> 4);
        ldsm_x4(xa[mr], smem_u32(sX + swz<HD>(arow, ach)));
      }
#pragma unroll
      for (int np = 0; np < MT / 2; np++) {
        uint32_t by[4];
        int row = np * 16 + (lane & 7) + ((lane >> 4) << 3);
        int ch = kc * 2 + ((lane >> 3) & 1);
        ldsm_x4(by, smem_u32(cY + swz<HD>(row, ch)));
#pragma unroll
        for (int mr = 0; mr < MR; mr++) {
          mma16816(s[mr][2 * np], xa[mr], by[0], by[1]);
          mma16816(s[mr][2 * np + 1], xa[mr], by[2], by[3]);
        }
      }
    }

    // P^T (role 0) or dS^T (role 1) as bf16 pairs in the accumulator layout: the A operand of
    // the second product.
    uint32_t pk[MR][MT][2];
    if (role == 0) {
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
          }
          pk[mr][n][0] = pack2(s[mr][n][0], s[mr][n][1]);
          pk[mr][n][1] = pack2(s[mr][n][2], s[mr][n][3]);
          sP[((mr * MT + n) * 2) * 32 + lane] = pk[mr][n][0];
          sP[((mr * MT + n) * 2 + 1) * 32 + lane] = pk[mr][n][1];
        }
      }
      bar_pair(pair);
    } else {
      bar_pair(pair);
      if constexpr (!SEP) {
#pragma unroll
        for (int mr = 0; mr < MR; mr++) {
#pragma unroll
          for (int n = 0; n < MT; n++) {
#pragma unroll
            for (int x = 0; x < 2; x++) pk[mr][n][x] = sP[((mr * MT + n) * 2 + x) * 32 + lane];
          }
        }
        __syncwarp();  // every lane has its P^T before the dS^T rows overwrite them
      }
#pragma unroll
      for (int mr = 0; mr < MR; mr++) {
        const int kr = wrow + 16 * mr + g;
#pragma unroll
        for (int n = 0; n < MT; n++) {
          const int c = n * 8 + 2 * t;
          const float d0 = cD[c], d1 = cD[c + 1];
#pragma unroll
          for (int x = 0; x < 2; x++) {
            const uint32_t pv = SEP ? sP[((mr * MT + n) * 2 + x) * 32 + lane] : pk[mr][n][x];
            __nv_bfloat162 pp = *reinterpret_cast<const __nv_bfloat162*>(&pv);
            float2 pf = __bfloat1622float2(pp);
            pk[mr][n][x] = pack2(pf.x * (s[mr][n][2 * x] - d0), pf.y * (s[mr][n][2 * x + 1] - d1));
          }
          *reinterpret_cast<uint32_t*>(sS + swz<BM>(kr, n) + 2 * t) = pk[mr][n][0];
          *reinterpret_cast<uint32_t*>(sS + swz<BM>(kr + 8, n) + 2 * t) = pk[mr][n][1];
        }
      }
    }

    // dV += P^T dO (role 0) or dK += dS^T Q (role 1).
#pragma unroll
    for (int kk = 0; kk < BM / 16; kk++) {
      uint32_t pa[MR][4];
#pragma unroll
      for (int mr = 0; mr < MR; mr++) {
        pa[mr][0] = pk[mr][2 * kk][0];
        pa[mr][1] = pk[mr][2 * kk][1];
        pa[mr][2] = pk[mr][2 * kk + 1][0];
        pa[mr][3] = pk[mr][2 * kk + 1][1];
      }
#pragma unroll
      for (int d2 = 0; d2 < HD / 16; d2++) {
        uint32_t bz[4];
        int row = kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
        int ch = d2 * 2 + (lane >> 4);
        ldsm_x4_t(bz, smem_u32(cZ + swz<HD>(row, ch)));
#pragma unroll
        for (int mr = 0; mr < MR; mr++) {
          mma16816(acc[mr][2 * d2], pa[mr], bz[0], bz[1]);
          mma16816(acc[mr][2 * d2 + 1], pa[mr], bz[2], bz[3]);
        }
      }
    }
    __syncthreads();  // the whole dS^T tile

    // dQ (BM x HD) = dS K over all warps: QR = 2 query tiles of 16 per warp, DCOLS columns.
    {
      constexpr int QR = 2;
      constexpr int QW = BM / (16 * QR);  // warps along the queries
      constexpr int DW = NW / QW;         // warps along the head dim
      constexpr int DCOLS = HD / DW;
      static_assert(QW * DW == NW && DCOLS % 16 == 0, "the dQ tile splits over the warps");
      const int q0 = (warp % QW) * 16 * QR, dbase = (warp / QW) * DCOLS;
      float dqa[QR][DCOLS / 8][4];
#pragma unroll
      for (int qr = 0; qr < QR; qr++) {
#pragma unroll
        for (int d = 0; d < DCOLS / 8; d++) {
#pragma unroll
          for (int e = 0; e < 4; e++) dqa[qr][d][e] = 0.f;
        }
      }
#pragma unroll
      for (int kc = 0; kc < BN / 16; kc++) {
        uint32_t sa[QR][4];
#pragma unroll
        for (int qr = 0; qr < QR; qr++) {
          int srow = kc * 16 + (lane & 7) + ((lane >> 4) << 3);
          int sch = ((q0 + 16 * qr) >> 3) + ((lane >> 3) & 1);
          ldsm_x4_t(sa[qr], smem_u32(sS + swz<BM>(srow, sch)));
        }
#pragma unroll
        for (int d2 = 0; d2 < DCOLS / 16; d2++) {
          uint32_t bk[4];
          int row = kc * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
          int ch = (dbase >> 3) + d2 * 2 + (lane >> 4);
          ldsm_x4_t(bk, smem_u32(sK + swz<HD>(row, ch)));
#pragma unroll
          for (int qr = 0; qr < QR; qr++) {
            mma16816(dqa[qr][2 * d2], sa[qr], bk[0], bk[1]);
            mma16816(dqa[qr][2 * d2 + 1], sa[qr], bk[2], bk[3]);
          }
        }
      }
#pragma unroll
      for (int qr = 0; qr < QR; qr++) {
#pragma unroll
        for (int rr = 0; rr < 2; rr++) {
          const int i = m0 + q0 + 16 * qr + g + 8 * rr;
          if (i >= a.Tq) continue;
          float* dst = dqacc + (((long long)b * a.Tq + i) * a.H + h) * HD + dbase + 2 * t;
#pragma unroll
          for (int d = 0; d < DCOLS / 8; d++) {
#if __CUDA_ARCH__ >= 900
            atomicAdd(reinterpret_cast<float2*>(dst + d * 8),
                      make_float2(dqa[qr][d][2 * rr], dqa[qr][d][2 * rr + 1]));
#else
            atomicAdd(dst + d * 8, dqa[qr][d][2 * rr]);
            atomicAdd(dst + d * 8 + 1, dqa[qr][d][2 * rr + 1]);
#endif
          }
        }
      }
    }
    // No barrier here (as in bwd): the next iteration's P^T hand-over and dS^T rows are written
    // only after its first barrier, which waits for every warp's dQ reads of this tile.
  }
  cp_wait<0>();

  bf16* dst = role == 0 ? dv : dk;
  const float sc = role == 0 ? 1.f : a.scale;
#pragma unroll
  for (int mr = 0; mr < MR; mr++) {
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
      const int j = n0 + wrow + 16 * mr + g + 8 * rr;
      if (j >= a.Tk) continue;
      const long long base = ((long long)b * a.Tk + j) * ks + (long long)hk * HD + 2 * t;
#pragma unroll
      for (int d = 0; d < HD / 8; d++) {
        *reinterpret_cast<uint32_t*>(dst + base + d * 8) =
            pack2(sc * acc[mr][d][2 * rr], sc * acc[mr][d][2 * rr + 1]);
      }
    }
  }
}

}  // namespace fa2

// Launch: grid (B*Hkv, ceil(Tk/(32*NP))), 64*NP threads, fa2::bwd_pair_smem<HD, NP, BM>() bytes.
// v5: 4 pairs (128 keys) over 64-query tiles, one block per SM; v6: the same over 32-query tiles;
// v7: 2 pairs (64 keys) over 64-query tiles, two blocks per SM.
#define FA2_BWD_PAIR(NAME, HD, NP, BM, MINB)                                                      \
  MT_KERNEL void __launch_bounds__(NP * 64, MINB)                                                 \
      NAME(const __nv_bfloat16* dout, const __nv_bfloat16* q, const __nv_bfloat16* k,            \
           const __nv_bfloat16* v, const float* lse, const float* delta, const int* doc,          \
           float* dqacc, __nv_bfloat16* dk, __nv_bfloat16* dv, AttnDims a) {                      \
    fa2::bwd_pair<HD, NP, BM>(dout, q, k, v, lse, delta, doc, dqacc, dk, dv, a);                  \
  }
FA2_BWD_PAIR(attention_fa2_backward_v5_hd128, 128, 4, 64, 1)
FA2_BWD_PAIR(attention_fa2_backward_v6_hd128, 128, 4, 32, 1)
FA2_BWD_PAIR(attention_fa2_backward_v7_hd128, 128, 2, 64, 2)
