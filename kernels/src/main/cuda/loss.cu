// Losses: cross-entropy with ignore index, the load-balancing (aux) loss, the router z-loss and sum.
#include "vec.cuh"

#define IGNORE_INDEX (-100)

// v[j], the logit of column c * 8 + j, -> dScale * (softmax - onehot(t)) (0 when ignored, NaN
// when the target is out of range).
__device__ __forceinline__ void ce_grad8(float* v, int c, int t, bool ignore, bool bad, float lse,
                                         float dScale) {
#pragma unroll
  for (int j = 0; j < 8; j++) {
    float g = 0.f;
    if (!ignore) {
      g = expf(v[j] - lse) - (c * 8 + j == t ? 1.f : 0.f);
      if (bad) g = __int_as_float(0x7fc00000);
    }
    v[j] = dScale * g;
  }
}

// The gradient pass of a row kept in shared memory (dynamic, V elements of T, written by pass 1
// of cross_entropy_kernel): dl[row] = dScale * (softmax - onehot) with 16-byte stores.
template <typename T>
__device__ __forceinline__ void ce_grad_from_cache(const T* cache, T* dl, int t, bool ignore,
                                                   bool bad, float lse, float dScale, int V) {
  for (int c = threadIdx.x; c < V / 8; c += blockDim.x) {
    float v[8];
    ld8t(cache + c * 8, v);
    ce_grad8(v, c, t, ignore, bad, lse, dScale);
    st8t(dl + c * 8, v);
  }
}

// Pass 1 over a row with 16-byte loads: running max and rescaled sum per thread (online
// softmax); with cache != null each 16-byte piece is also stored to shared memory as loaded.
template <typename T>
__device__ __forceinline__ void ce_stats(const T* lg, T* cache, int V, float* mxOut, float* sOut) {
  constexpr int PER = 16 / sizeof(T);
  float mx = -INFINITY, s = 0.f;
  for (int c = threadIdx.x; c < V / 8; c += blockDim.x) {
    uint4 u[8 / PER];
#pragma unroll
    for (int h = 0; h < 8 / PER; h++) u[h] = reinterpret_cast<const uint4*>(lg + c * 8)[h];
    if (cache != nullptr) {
#pragma unroll
      for (int h = 0; h < 8 / PER; h++) reinterpret_cast<uint4*>(cache + c * 8)[h] = u[h];
    }
    float v[8];
    const T* e = reinterpret_cast<const T*>(u);
#pragma unroll
    for (int j = 0; j < 8; j++) v[j] = Elem<T>::in(e[j]);
    float cm = v[0];
#pragma unroll
    for (int j = 1; j < 8; j++) cm = fmaxf(cm, v[j]);
    if (cm > mx) {
      s *= expf(mx - cm);  // 0 while mx is still -inf
      mx = cm;
    }
#pragma unroll
    for (int j = 0; j < 8; j++) s += expf(v[j] - mx);
  }
  *mxOut = mx;
  *sOut = s;
}

__device__ __forceinline__ unsigned dynamic_smem_bytes() {
  unsigned r;
  asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(r));
  return r;
}

// One block per row of logits (N, V). losses f32 (N): lse - logit[t] (0 when ignored, NaN when
// the target is out of range). If dlogits != null: dlogits = dScale * (softmax - onehot), zero
// rows when ignored. dlogits may alias logits: each thread reads its elements before writing
// them, and logit[t] and the row statistics are fixed before the write pass begins.
//
// With V % 8 == 0 and 16-byte aligned rows (the step's case) the row statistics take one read of
// the logits with 16-byte loads: each thread keeps a running max and a sum rescaled to it (online
// softmax), then the block combines them. When the launch gives V elements of dynamic shared
// memory and dlogits has the logits' dtype (the training step: in place), pass 1 also keeps the
// row in shared memory and the gradient pass reads it from there: the logits cross DRAM once in
// and once out. Without that memory the gradient pass reads the row again (mostly from L2).
// Otherwise the scalar passes. Every path computes each element with the same formulas.
MT_KERNEL void cross_entropy_kernel(const void* logits, int ldt, const int* targets, float* losses,
                                    void* dlogits, int gdt, float dScale, int V) {
  long long row = (long long)blockIdx.x * V;
  int t = targets[blockIdx.x];
  bool ignore = t == IGNORE_INDEX;
  bool bad = !ignore && (t < 0 || t >= V);
  bool vec = V % 8 == 0 && aligned16(logits) && aligned16(dlogits);
  float mx = -INFINITY, s = 0.f;
  extern __shared__ uint4 ce_row[];
  bool cached = vec && dlogits != nullptr && gdt == ldt &&
                dynamic_smem_bytes() >= (unsigned)V * (ldt == DT_F32 ? 4u : 2u);
  if (vec) {
    if (ldt == DT_F32) {
      ce_stats((const float*)logits + row, cached ? (float*)ce_row : nullptr, V, &mx, &s);
    } else if (ldt == DT_BF16) {
      ce_stats((const __nv_bfloat16*)logits + row, cached ? (__nv_bfloat16*)ce_row : nullptr, V,
               &mx, &s);
    } else {
      ce_stats((const __half*)logits + row, cached ? (__half*)ce_row : nullptr, V, &mx, &s);
    }
    float bm = block_max(mx);
    s = block_sum(mx == -INFINITY ? 0.f : s * expf(mx - bm));
    mx = bm;
  } else {
    for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, ldf(logits, row + i, ldt));
    mx = block_max(mx);
    for (int i = threadIdx.x; i < V; i += blockDim.x) s += expf(ldf(logits, row + i, ldt) - mx);
    s = block_sum(s);  // its barriers also order every read of logit[t] below before any write
  }
  float lse = mx + logf(s);
  float lt = (!ignore && !bad) ? ldf(logits, row + t, ldt) : 0.f;
  __syncthreads();  // all threads have read logit[t] before anyone overwrites it
  if (threadIdx.x == 0) {
    losses[blockIdx.x] = ignore ? 0.f : (bad ? __int_as_float(0x7fc00000) : lse - lt);
  }
  if (cached) {
    if (ldt == DT_F32) {
      ce_grad_from_cache((const float*)ce_row, (float*)dlogits + row, t, ignore, bad, lse, dScale,
                         V);
    } else if (ldt == DT_BF16) {
      ce_grad_from_cache((const __nv_bfloat16*)ce_row, (__nv_bfloat16*)dlogits + row, t, ignore,
                         bad, lse, dScale, V);
    } else {
      ce_grad_from_cache((const __half*)ce_row, (__half*)dlogits + row, t, ignore, bad, lse,
                         dScale, V);
    }
  } else if (dlogits != nullptr && vec) {
    for (int c = threadIdx.x; c < V / 8; c += blockDim.x) {
      float v[8];
      ld8(logits, row + c * 8, ldt, v);
      ce_grad8(v, c, t, ignore, bad, lse, dScale);
      st8(dlogits, row + c * 8, gdt, v);
    }
  } else if (dlogits != nullptr) {
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
      float g = 0.f;
      if (!ignore) {
        g = expf(ldf(logits, row + i, ldt) - lse) - (i == t ? 1.f : 0.f);
        if (bad) g = __int_as_float(0x7fc00000);
      }
      stf(dlogits, row + i, gdt, dScale * g);
    }
  }
}

// Load-balancing loss, pass 1: ws[e] += sum_r m_r #{j: topIdx[r,j] = e}, ws[E + e] += sum_r m_r
// probs[r,e], ws[2E] += sum_r m_r. ws f32 (2E+1) zeroed by the host. Block partials in shared
// memory (2E+1 floats, dynamic), one atomic per entry per block.
MT_KERNEL void lb_stats_kernel(const float* probs, const int* topIdx, const float* mask, float* ws,
                               long long R, int E, int K) {
  extern __shared__ float acc[];  // (2E+1)
  for (int i = threadIdx.x; i < 2 * E + 1; i += blockDim.x) acc[i] = 0.f;
  __syncthreads();
  GRID_LOOP(r, R) {
    float m = mask == nullptr ? 1.f : mask[r];
    for (int j = 0; j < K; j++) {
      int e = topIdx[r * K + j];
      if (e >= 0 && e < E) atomicAdd(&acc[e], m);
    }
    for (int e = 0; e < E; e++) atomicAdd(&acc[E + e], m * probs[r * E + e]);
    atomicAdd(&acc[2 * E], m);
  }
  __syncthreads();
  for (int i = threadIdx.x; i < 2 * E + 1; i += blockDim.x) atomicAdd(&ws[i], acc[i]);
}

// Expert-load statistics for the trainer's monitor, accumulated on the device: grid (x, L), block
// y = layer l over its N rows; acc (L, E+2) += per expert the masked slot counts, then the masked
// entropy sum (nats) and the masked row count. Block partials in shared memory (E+2 floats,
// dynamic), one atomic per entry per block.
MT_KERNEL void expert_load_stats_kernel(const float* probs, const int* topIdx, const float* mask,
                                        float* acc, long long N, int E, int K) {
  extern __shared__ float part[];  // (E+2)
  for (int i = threadIdx.x; i < E + 2; i += blockDim.x) part[i] = 0.f;
  __syncthreads();
  long long base = (long long)blockIdx.y * N;
  GRID_LOOP(i, N) {
    long long r = base + i;
    float m = mask == nullptr ? 1.f : mask[r];
    if (m == 0.f) continue;
    for (int j = 0; j < K; j++) {
      int e = topIdx[r * K + j];
      if (e >= 0 && e < E) atomicAdd(&part[e], m);
    }
    float h = 0.f;
    for (int e = 0; e < E; e++) {
      float p = probs[r * E + e];
      if (p > 0.f) h -= p * logf(p);
    }
    atomicAdd(&part[E], m * h);
    atomicAdd(&part[E + 1], m);
  }
  __syncthreads();
  float* out = acc + (long long)blockIdx.y * (E + 2);
  for (int i = threadIdx.x; i < E + 2; i += blockDim.x) atomicAdd(&out[i], part[i]);
}

// Pass 2 (one block of 32): loss = E * sum_e (c_e / S) * (P_e / S).
MT_KERNEL void lb_loss_kernel(const float* ws, int E, float* lossOut) {
  float S = ws[2 * E], s = 0.f;
  for (int e = threadIdx.x; e < E; e += 32) s += (ws[e] / S) * (ws[E + e] / S);
  s = warp_sum(s);
  if (threadIdx.x == 0) lossOut[0] = E * s;
}

// Pass 3: dProbs[r, e] = dScale * E * c_e * m_r / S^2 (overwrite).
MT_KERNEL void lb_grad_kernel(const float* ws, const float* mask, float* dprobs, float dScale,
                              long long R, int E) {
  float S = ws[2 * E];
  GRID_LOOP(t, R * E) {
    long long r = t / E;
    int e = (int)(t % E);
    float m = mask == nullptr ? 1.f : mask[r];
    dprobs[t] = dScale * E * ws[e] * m / (S * S);
  }
}

// Log-sum-exp of a row of E logits, one warp per row.
__device__ __forceinline__ float row_lse(const float* x, int E, int lane) {
  float mx = -INFINITY;
  for (int e = lane; e < E; e += 32) mx = fmaxf(mx, x[e]);
  mx = warp_max(mx);
  float s = 0.f;
  for (int e = lane; e < E; e += 32) s += expf(x[e] - mx);
  return mx + logf(warp_sum(s));
}

// Router z-loss pass 1: ws[0] += sum_r m_r lse_r^2, ws[1] += sum_r m_r. Warp per row.
MT_KERNEL void zloss_stats_kernel(const float* logits, const float* mask, float* ws, long long R,
                                  int E) {
  long long r = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  if (r >= R) return;
  float lse = row_lse(logits + r * E, E, lane);
  if (lane == 0) {
    float m = mask == nullptr ? 1.f : mask[r];
    atomicAdd(&ws[0], m * lse * lse);
    atomicAdd(&ws[1], m);
  }
}

MT_KERNEL void zloss_loss_kernel(const float* ws, float* lossOut) { lossOut[0] = ws[0] / ws[1]; }

// Pass 3: dLogits[r, e] += dScale * 2 * lse_r * m_r / S * softmax(logits[r])_e.
MT_KERNEL void zloss_grad_kernel(const float* logits, const float* mask, const float* ws,
                                 float* dlogits, float dScale, long long R, int E) {
  long long r = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  if (r >= R) return;
  const float* x = logits + r * E;
  float lse = row_lse(x, E, lane);
  float m = mask == nullptr ? 1.f : mask[r];
  float c = dScale * 2.f * lse * m / ws[1];
  for (int e = lane; e < E; e += 32) dlogits[r * E + e] += c * expf(x[e] - lse);
}

// out[0] += scale * sum x (out zeroed by the host first: one atomic per block).
MT_KERNEL void sum_kernel(const void* x, int dt, float scale, float* out, long long n) {
  float s = 0.f;
  GRID_LOOP(i, n) s += ldf(x, i, dt);
  s = block_sum(s);
  if (threadIdx.x == 0) atomicAdd(out, scale * s);
}
