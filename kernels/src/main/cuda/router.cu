// Mixtral routing on the device: softmax + top-k + renormalisation, its backward, and
// ScatterMoE's flatten-sort-count as a stable counting sort (no host round trip).
#include "common.cuh"

#define MAX_K 16

// Thread per token. logits (N, E) any float dtype; probs f32 (N, E); topW f32 (N, K)
// descending; topIdx (N, K). Ties go to the lower expert index (strict > while scanning up).
MT_KERNEL void router_topk_kernel(const void* logits, int ldt, int N, int E, int K, float* probs,
                                  float* topW, int* topIdx) {
  int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  long long row = (long long)n * E;
  float mx = -INFINITY;
  for (int e = 0; e < E; e++) mx = fmaxf(mx, ldf(logits, row + e, ldt));
  float s = 0.f;
  for (int e = 0; e < E; e++) s += expf(ldf(logits, row + e, ldt) - mx);
  for (int e = 0; e < E; e++) probs[row + e] = expf(ldf(logits, row + e, ldt) - mx) / s;
  int chosen[MAX_K];
  float w[MAX_K];
  float tot = 0.f;
  for (int j = 0; j < K; j++) {
    int best = -1;
    float bp = -1.f;
    for (int e = 0; e < E; e++) {
      bool taken = false;
      for (int i = 0; i < j; i++) taken |= chosen[i] == e;
      float p = probs[row + e];
      if (!taken && p > bp) {
        bp = p;
        best = e;
      }
    }
    chosen[j] = best;
    w[j] = bp;
    tot += bp;
  }
  for (int j = 0; j < K; j++) {
    topW[(long long)n * K + j] = w[j] / tot;
    topIdx[(long long)n * K + j] = chosen[j];
  }
}

// Thread per token. With S = sum_j p[idx_j] and w_j = p[idx_j] / S, the gradient on the
// probabilities is g_e = dProbs[e] + [e = idx_j] (dW_j - sum_i dW_i w_i) / S; then the softmax
// backward dLogits_e = p_e (g_e - sum_f g_f p_f). dTopW / dProbs may be null.
MT_KERNEL void router_backward_kernel(const float* dTopW, const float* dProbs, const float* probs,
                                      const int* topIdx, void* dLogits, int gdt, int N, int E,
                                      int K) {
  int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  long long row = (long long)n * E;
  const int* idx = topIdx + (long long)n * K;
  float S = 0.f, c = 0.f;
  for (int j = 0; j < K; j++) S += probs[row + idx[j]];
  if (dTopW != nullptr) {
    for (int j = 0; j < K; j++) c += dTopW[(long long)n * K + j] * (probs[row + idx[j]] / S);
  }
  float dot = 0.f;
  for (int e = 0; e < E; e++) {
    float g = dProbs == nullptr ? 0.f : dProbs[row + e];
    if (dTopW != nullptr) {
      for (int j = 0; j < K; j++) {
        if (idx[j] == e) g += (dTopW[(long long)n * K + j] - c) / S;
      }
    }
    dot += g * probs[row + e];
  }
  for (int e = 0; e < E; e++) {
    float g = dProbs == nullptr ? 0.f : dProbs[row + e];
    if (dTopW != nullptr) {
      for (int j = 0; j < K; j++) {
        if (idx[j] == e) g += (dTopW[(long long)n * K + j] - c) / S;
      }
    }
    stf(dLogits, row + e, gdt, probs[row + e] * (g - dot));
  }
}

// Counting sort, pass 1: counts[e] = #{s : topIdx[s] = e}. counts (E) zeroed by the host.
MT_KERNEL void expert_count_kernel(const int* topIdx, long long M, int E, int* counts) {
  GRID_LOOP(s, M) {
    int e = topIdx[s];
    if (e >= 0 && e < E) atomicAdd(&counts[e], 1);
  }
}

// Pass 2: block e places expert e's rows. start = sum of counts below e; offsets[e] = start +
// counts[e]. The block scans s = 0..M-1 in order and ranks matches with a block prefix sum, so
// the sort is stable (rows of one expert stay in increasing s). blockDim.x = 1024.
MT_KERNEL void expert_place_kernel(const int* topIdx, long long M, int E, const int* counts,
                                   int* sortedExpert, int* sortedScattered, int* offsets) {
  __shared__ int warpTot[32];
  __shared__ int base;
  int e = blockIdx.x;
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  if (threadIdx.x == 0) {
    int start = 0;
    for (int i = 0; i < e; i++) start += counts[i];
    base = start;
    offsets[e] = start + counts[e];
  }
  __syncthreads();
  for (long long c0 = 0; c0 < M; c0 += blockDim.x) {
    long long s = c0 + threadIdx.x;
    bool hit = s < M && topIdx[s] == e;
    unsigned bal = __ballot_sync(0xffffffffu, hit);
    if (lane == 0) warpTot[wid] = __popc(bal);
    __syncthreads();
    int before = 0, total = 0;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) {
      int t = warpTot[w];
      if (w < wid) before += t;
      total += t;
    }
    if (hit) {
      int pos = base + before + __popc(bal & ((1u << lane) - 1u));
      sortedExpert[pos] = e;
      sortedScattered[pos] = (int)s;
    }
    __syncthreads();  // everyone has read warpTot and base before they change
    if (threadIdx.x == 0) base += total;
    __syncthreads();
  }
}
