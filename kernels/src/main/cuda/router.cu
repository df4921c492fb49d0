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

// router_topk_kernel with a warp per token (E <= 2048): lane l holds experts l, l + 32, ... (the
// logits read and probs written coalesced), the max and the sum by warp reductions, then K rounds
// of a warp arg-max over the experts not yet taken (each lane keeps its own as a 64-bit mask); ties
// go to the lower expert index as above, and the weights are summed in pick order as above. probs'
// sum runs in another order than the thread-per-token kernel's (the first measured one: 0.46 ms on
// 16,384 tokens x 64 experts, top-16, H200 2026-12-03, as 128 blocks of one token per thread
// walking rows 256 bytes apart).
MT_KERNEL void router_topk_warp_kernel(const void* logits, int ldt, int N, int E, int K,
                                       float* probs, float* topW, int* topIdx) {
  int n = (int)(((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5), lane = threadIdx.x & 31;
  if (n >= N) return;
  long long row = (long long)n * E;
  float mx = -INFINITY;
  for (int e = lane; e < E; e += 32) mx = fmaxf(mx, ldf(logits, row + e, ldt));
  mx = warp_max(mx);
  float s = 0.f;
  for (int e = lane; e < E; e += 32) s += expf(ldf(logits, row + e, ldt) - mx);
  s = warp_sum(s);
  for (int e = lane; e < E; e += 32) probs[row + e] = expf(ldf(logits, row + e, ldt) - mx) / s;
  unsigned long long taken = 0;  // bit i: expert lane + 32 i taken
  float myW = 0.f, tot = 0.f;
  int myIdx = -1;
  for (int j = 0; j < K; j++) {
    int best = -1;
    float bp = -1.f;
    for (int e = lane, i = 0; e < E; e += 32, i++) {
      float p = probs[row + e];  // this lane's own store: visible to it
      if (!((taken >> i) & 1) && p > bp) {
        bp = p;
        best = e;
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      float op = __shfl_xor_sync(0xffffffffu, bp, o);
      int oe = __shfl_xor_sync(0xffffffffu, best, o);
      if (op > bp || (op == bp && oe >= 0 && (best < 0 || oe < best))) {
        bp = op;
        best = oe;
      }
    }
    if (best >= 0 && (best & 31) == lane) taken |= 1ull << (best >> 5);
    if (lane == j) {
      myW = bp;
      myIdx = best;
    }
    tot += bp;
  }
  if (lane < K) {
    topW[(long long)n * K + lane] = myW / tot;
    topIdx[(long long)n * K + lane] = myIdx;
  }
}

// Thread per token. With S = sum_j p[idx_j] and w_j = p[idx_j] / S, the gradient on the
// probabilities is g_e = dProbs[e] + [e = idx_j] (dW_j - sum_i dW_i w_i) / S; then the softmax
// backward dLogits_e = p_e (g_e - sum_f g_f p_f). dTopW / dProbs may be null. In double, as the
// CPU oracle: where the router is confident (p_e near 1) g_e - sum_f g_f p_f cancels, and a
// float32 sum's rounding (one ulp of g) became 1e-5 of the result (seen on the H200, 2026-12-03:
// N = 1, normwise 1.33e-5); E multiply-adds per token cost nothing in double.
MT_KERNEL void router_backward_kernel(const float* dTopW, const float* dProbs, const float* probs,
                                      const int* topIdx, void* dLogits, int gdt, int N, int E,
                                      int K) {
  int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  long long row = (long long)n * E;
  const int* idx = topIdx + (long long)n * K;
  double S = 0.0, c = 0.0;
  for (int j = 0; j < K; j++) S += probs[row + idx[j]];
  if (dTopW != nullptr) {
    for (int j = 0; j < K; j++) c += dTopW[(long long)n * K + j] * (probs[row + idx[j]] / S);
  }
  double dot = 0.0;
  for (int e = 0; e < E; e++) {
    double g = dProbs == nullptr ? 0.0 : dProbs[row + e];
    if (dTopW != nullptr) {
      for (int j = 0; j < K; j++) {
        if (idx[j] == e) g += (dTopW[(long long)n * K + j] - c) / S;
      }
    }
    dot += g * probs[row + e];
  }
  for (int e = 0; e < E; e++) {
    double g = dProbs == nullptr ? 0.0 : dProbs[row + e];
    if (dTopW != nullptr) {
      for (int j = 0; j < K; j++) {
        if (idx[j] == e) g += (dTopW[(long long)n * K + j] - c) / S;
      }
    }
    stf(dLogits, row + e, gdt, (float)(probs[row + e] * (g - dot)));
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

// The same stable counting sort over chunks of SORT_CHUNK slots, for E <= SORT_MAX_E: the two
// kernels above give each expert one block that scans all M slots (E blocks, M / 1024 serial
// steps each); these split M over C = ceil(M / SORT_CHUNK) blocks. Invalid expert ids (outside
// [0, E)) are skipped as above.
#define SORT_CHUNK 1024
#define SORT_MAX_E 4096

// Pass 1: chunkCounts[e * C + c] = #{s in chunk c : topIdx[s] = e}. blockDim 256, E ints of smem.
MT_KERNEL void expert_chunk_count_kernel(const int* topIdx, long long M, int E, int C,
                                         int* chunkCounts) {
  extern __shared__ int hist[];
  int c = blockIdx.x;
  for (int e = threadIdx.x; e < E; e += blockDim.x) hist[e] = 0;
  __syncthreads();
  long long s0 = (long long)c * SORT_CHUNK;
  for (int i = threadIdx.x; i < SORT_CHUNK; i += blockDim.x) {
    long long s = s0 + i;
    if (s < M) {
      int e = topIdx[s];
      if (e >= 0 && e < E) atomicAdd(&hist[e], 1);
    }
  }
  __syncthreads();
  for (int e = threadIdx.x; e < E; e += blockDim.x) chunkCounts[(long long)e * C + c] = hist[e];
}

// Pass 2, one block of 1024: chunkCounts (E * C, expert-major) becomes its exclusive prefix sum in
// place (the first sorted position of expert e's rows from chunk c), offsets[e] = the end of
// expert e's rows.
MT_KERNEL void expert_chunk_scan_kernel(int* chunkCounts, int E, int C, int* offsets) {
  __shared__ int warpTot[32];
  __shared__ int carry;
  long long n = (long long)E * C;
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  if (threadIdx.x == 0) carry = 0;
  __syncthreads();
  for (long long i0 = 0; i0 < n; i0 += blockDim.x) {
    long long i = i0 + threadIdx.x;
    int v = i < n ? chunkCounts[i] : 0;
    int incl = v;  // inclusive scan within the warp
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      int t = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += t;
    }
    if (lane == 31) warpTot[wid] = incl;
    __syncthreads();
    int before = carry, total = 0;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) {
      int t = warpTot[w];
      if (w < wid) before += t;
      total += t;
    }
    int excl = before + incl - v;
    if (i < n) {
      chunkCounts[i] = excl;
      if (i % C == C - 1) offsets[i / C] = excl + v;
    }
    __syncthreads();  // everyone has read warpTot and carry before they change
    if (threadIdx.x == 0) carry += total;
    __syncthreads();
  }
}

// Pass 3, one warp per chunk: walks the chunk's slots in order 32 at a time; lanes with the same
// expert rank themselves by lane (match.any), so rows of one expert stay in increasing s.
// E ints of smem (the chunk's next position per expert).
MT_KERNEL void expert_chunk_place_kernel(const int* topIdx, long long M, int E, int C,
                                         const int* chunkStarts, int* sortedExpert,
                                         int* sortedScattered) {
  extern __shared__ int cursor[];
  int c = blockIdx.x, lane = threadIdx.x;
  for (int e = lane; e < E; e += 32) cursor[e] = chunkStarts[(long long)e * C + c];
  __syncwarp();
  long long s0 = (long long)c * SORT_CHUNK;
  for (int i = 0; i < SORT_CHUNK; i += 32) {
    long long s = s0 + i + lane;
    int e = s < M ? topIdx[s] : -1;
    bool hit = e >= 0 && e < E;
    unsigned peers = __match_any_sync(0xffffffffu, hit ? e : -1);
    int rank = __popc(peers & ((1u << lane) - 1u));
    int pos = hit ? cursor[e] + rank : 0;
    __syncwarp();  // every lane has read its cursor before the leaders move them
    if (hit) {
      sortedExpert[pos] = e;
      sortedScattered[pos] = (int)s;
      if (rank == 0) cursor[e] += __popc(peers);
    }
    __syncwarp();
  }
}
