// Causal grouped-query attention with optional sliding window and document ids, forward and
// backward, flash-style: scores are never stored; the forward keeps an online softmax (running
// max and sum) and saves the log-sum-exp per query and head; the backward recomputes
// probabilities from it. One warp per (query, head) row (forward, dq) or per (key, kv head)
// (dk, dv); each lane holds head-dim elements lane, lane+32, ... (hd <= 32 * MAX_R).
//
// Visibility (see AttnSpec): query i of row b sits at qa = Tk - Tq + i; key j is visible iff
// j <= qa, (window <= 0 or qa - j < window), and with docIds, doc[j] == doc[qa] and doc[j] >= 0.
// Layouts: q/out/dO/dq (B*Tq, H, hd), k/v/dk/dv (B*Tk, Hkv, hd), lse f32 (B*Tq, H).
#include "common.cuh"

#define MAX_R 8

struct AttnDims {
  int B, Tq, Tk, H, Hkv, hd, window;
  float scale;
};

__device__ __forceinline__ void load_row(float* r, const void* p, long long base, int dt, int hd,
                                         int lane, float mul) {
#pragma unroll
  for (int i = 0; i < MAX_R; i++) {
    int d = lane + 32 * i;
    r[i] = d < hd ? mul * ldf(p, base + d, dt) : 0.f;
  }
}

__device__ __forceinline__ float dot_row(const float* r, const void* p, long long base, int dt,
                                         int hd, int lane) {
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < MAX_R; i++) {
    int d = lane + 32 * i;
    if (d < hd) s += r[i] * ldf(p, base + d, dt);
  }
  return warp_sum(s);
}

__device__ __forceinline__ bool same_doc(const int* doc, long long b, int Tk, int qa, int j) {
  if (doc == nullptr) return true;
  int dq = doc[b * Tk + qa], dk = doc[b * Tk + j];
  return dk >= 0 && dk == dq;
}

MT_KERNEL void attention_forward_kernel(const void* q, int qdt, const void* k, int kdt,
                                        const void* v, int vdt, void* out, int odt, float* lse,
                                        const int* doc, AttnDims a) {
  long long w = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  if (w >= (long long)a.B * a.Tq * a.H) return;
  int h = (int)(w % a.H);
  long long bi = w / a.H;
  int i = (int)(bi % a.Tq);
  long long b = bi / a.Tq;
  int hk = h / (a.H / a.Hkv);
  int qa = a.Tk - a.Tq + i;
  float qr[MAX_R], acc[MAX_R];
  load_row(qr, q, w * a.hd, qdt, a.hd, lane, a.scale);
#pragma unroll
  for (int r = 0; r < MAX_R; r++) acc[r] = 0.f;
  float m = -INFINITY, l = 0.f;
  int jlo = a.window > 0 ? max(0, qa - a.window + 1) : 0;
  for (int j = jlo; j <= qa; j++) {
    if (!same_doc(doc, b, a.Tk, qa, j)) continue;
    long long kb = ((b * a.Tk + j) * a.Hkv + hk) * a.hd;
    float s = dot_row(qr, k, kb, kdt, a.hd, lane);
    float mn = fmaxf(m, s);
    float corr = expf(m - mn), p = expf(s - mn);
    l = l * corr + p;
#pragma unroll
    for (int r = 0; r < MAX_R; r++) {
      int d = lane + 32 * r;
      float vv = d < a.hd ? ldf(v, kb + d, vdt) : 0.f;
      acc[r] = acc[r] * corr + p * vv;
    }
    m = mn;
  }
  float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
  for (int r = 0; r < MAX_R; r++) {
    int d = lane + 32 * r;
    if (d < a.hd) stf(out, w * a.hd + d, odt, acc[r] * inv);
  }
  if (lane == 0) lse[w] = l > 0.f ? m + logf(l) : -INFINITY;
}

// delta[w] = dot(dO[w], out[w]) per (query, head): the softmax backward's row term.
MT_KERNEL void attention_delta_kernel(const void* dout, int gdt, const void* out, int odt,
                                      float* delta, long long rows, int hd) {
  long long w = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  if (w >= rows) return;
  float s = 0.f;
  for (int d = lane; d < hd; d += 32) s += ldf(dout, w * hd + d, gdt) * ldf(out, w * hd + d, odt);
  s = warp_sum(s);
  if (lane == 0) delta[w] = s;
}

// dq = scale * sum_j p_ij (dO_i . v_j - delta_i) k_j, warp per (query, head); overwrite.
MT_KERNEL void attention_dq_kernel(const void* dout, int gdt, const void* q, int qdt,
                                   const void* k, int kdt, const void* v, int vdt,
                                   const float* lse, const float* delta, const int* doc,
                                   void* dq, int dqdt, AttnDims a) {
  long long w = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  if (w >= (long long)a.B * a.Tq * a.H) return;
  int h = (int)(w % a.H);
  long long bi = w / a.H;
  int i = (int)(bi % a.Tq);
  long long b = bi / a.Tq;
  int hk = h / (a.H / a.Hkv);
  int qa = a.Tk - a.Tq + i;
  float L = lse[w], D = delta[w];
  float qr[MAX_R], gr[MAX_R], acc[MAX_R];
  load_row(qr, q, w * a.hd, qdt, a.hd, lane, a.scale);
  load_row(gr, dout, w * a.hd, gdt, a.hd, lane, 1.f);
#pragma unroll
  for (int r = 0; r < MAX_R; r++) acc[r] = 0.f;
  if (L != -INFINITY) {
    int jlo = a.window > 0 ? max(0, qa - a.window + 1) : 0;
    for (int j = jlo; j <= qa; j++) {
      if (!same_doc(doc, b, a.Tk, qa, j)) continue;
      long long kb = ((b * a.Tk + j) * a.Hkv + hk) * a.hd;
      float p = expf(dot_row(qr, k, kb, kdt, a.hd, lane) - L);
      float ds = p * (dot_row(gr, v, kb, vdt, a.hd, lane) - D);
#pragma unroll
      for (int r = 0; r < MAX_R; r++) {
        int d = lane + 32 * r;
        if (d < a.hd) acc[r] += ds * ldf(k, kb + d, kdt);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < MAX_R; r++) {
    int d = lane + 32 * r;
    if (d < a.hd) stf(dq, w * a.hd + d, dqdt, a.scale * acc[r]);
  }
}

// dv_j = sum_{i,h} p_ij dO_i; dk_j = scale * sum_{i,h} p_ij (dO_i . v_j - delta_i) q_i, over the
// query heads h of kv head hk and the queries that see key j. Warp per (key, kv head); overwrite.
MT_KERNEL void attention_dkdv_kernel(const void* dout, int gdt, const void* q, int qdt,
                                     const void* k, int kdt, const void* v, int vdt,
                                     const float* lse, const float* delta, const int* doc,
                                     void* dk, int dkdt, void* dv, int dvdt, AttnDims a) {
  long long w = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  if (w >= (long long)a.B * a.Tk * a.Hkv) return;
  int hk = (int)(w % a.Hkv);
  long long bj = w / a.Hkv;
  int j = (int)(bj % a.Tk);
  long long b = bj / a.Tk;
  int group = a.H / a.Hkv;
  int off = a.Tk - a.Tq;
  float kr[MAX_R], vr[MAX_R], dkacc[MAX_R], dvacc[MAX_R];
  load_row(kr, k, w * a.hd, kdt, a.hd, lane, a.scale);
  load_row(vr, v, w * a.hd, vdt, a.hd, lane, 1.f);
#pragma unroll
  for (int r = 0; r < MAX_R; r++) dkacc[r] = dvacc[r] = 0.f;
  int ilo = max(0, j - off);
  int ihi = a.Tq - 1;
  if (a.window > 0) ihi = min(ihi, j + a.window - 1 - off);
  for (int i = ilo; i <= ihi; i++) {
    int qa = off + i;
    if (!same_doc(doc, b, a.Tk, qa, j)) continue;
    for (int g = 0; g < group; g++) {
      int h = hk * group + g;
      long long row = (b * a.Tq + i) * a.H + h;
      float L = lse[row];
      if (L == -INFINITY) continue;
      long long qb = row * a.hd;
      float p = expf(dot_row(kr, q, qb, qdt, a.hd, lane) - L);
      float ds = p * (dot_row(vr, dout, qb, gdt, a.hd, lane) - delta[row]);
#pragma unroll
      for (int r = 0; r < MAX_R; r++) {
        int d = lane + 32 * r;
        if (d < a.hd) {
          dvacc[r] += p * ldf(dout, qb + d, gdt);
          dkacc[r] += ds * ldf(q, qb + d, qdt);
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < MAX_R; r++) {
    int d = lane + 32 * r;
    if (d < a.hd) {
      stf(dk, w * a.hd + d, dkdt, a.scale * dkacc[r]);
      stf(dv, w * a.hd + d, dvdt, dvacc[r]);
    }
  }
}
