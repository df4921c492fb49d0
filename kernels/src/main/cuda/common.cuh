// Shared helpers for every moetune kernel.
//
// Float tensors arrive as untyped pointers plus a dtype code (DT_F32, DT_BF16, DT_F16) because
// one op may mix dtypes (bf16 activations with f32 master weights, f32 losses). The code is
// uniform across a launch, so the branch in ldf/stf costs a predicate, not divergence.
// Arithmetic is always float32. Index tensors are int32.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#define DT_F32 0
#define DT_BF16 1
#define DT_F16 2

#define MT_KERNEL extern "C" __global__

__device__ __forceinline__ float ldf(const void* p, long long i, int dt) {
  if (dt == DT_F32) return ((const float*)p)[i];
  if (dt == DT_BF16) return __bfloat162float(((const __nv_bfloat16*)p)[i]);
  return __half2float(((const __half*)p)[i]);
}

__device__ __forceinline__ void stf(void* p, long long i, int dt, float v) {
  if (dt == DT_F32) {
    ((float*)p)[i] = v;
  } else if (dt == DT_BF16) {
    ((__nv_bfloat16*)p)[i] = __float2bfloat16_rn(v);
  } else {
    ((__half*)p)[i] = __float2half_rn(v);
  }
}

// p[i] += v with one rounding in p's dtype (plain read-modify-write: callers own the element).
__device__ __forceinline__ void addf(void* p, long long i, int dt, float v) {
  stf(p, i, dt, ldf(p, i, dt) + v);
}

// Atomic p[i] += v for float32 and bf16 (sm_80+ has a native bf16 atomicAdd).
__device__ __forceinline__ void atomic_addf(void* p, long long i, int dt, float v) {
  if (dt == DT_F32) {
    atomicAdd(((float*)p) + i, v);
  } else if (dt == DT_BF16) {
    atomicAdd(((__nv_bfloat16*)p) + i, __float2bfloat16_rn(v));
  } else {
    atomicAdd(((__half*)p) + i, __float2half_rn(v));
  }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the whole block; every thread gets the result. blockDim.x must be a multiple of 32
// (at most 1024). Uses 33 floats of shared memory; safe to call repeatedly.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float part[33];
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // part[] may still be read by a previous call
  if (lane == 0) part[wid] = v;
  __syncthreads();
  if (wid == 0) {
    float t = lane < nw ? part[lane] : 0.f;
    t = warp_sum(t);
    if (lane == 0) part[32] = t;
  }
  __syncthreads();
  return part[32];
}

__device__ __forceinline__ float block_max(float v) {
  __shared__ float part[33];
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) part[wid] = v;
  __syncthreads();
  if (wid == 0) {
    float t = lane < nw ? part[lane] : -INFINITY;
    t = warp_max(t);
    if (lane == 0) part[32] = t;
  }
  __syncthreads();
  return part[32];
}

// Grid-stride loop over [0, n).
#define GRID_LOOP(i, n) \
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (long long)gridDim.x * blockDim.x)
