// 16-byte vector access for the memory-bound kernels: 8 consecutive elements of a float tensor
// as 8 floats. The element type is a template parameter (float: two 16-byte accesses, bf16 and
// f16: one); ld8/st8 pick the instantiation from the launch's dtype code, which is uniform
// across a launch (a predicate, not divergence). Callers check alignment once (aligned16) and
// pass element indices that are multiples of 8; the arithmetic stays float32 and each element is
// rounded exactly as the scalar ldf/stf round it, so vector and scalar paths agree bitwise.
#pragma once
#include "common.cuh"

template <typename T>
struct Elem;
template <>
struct Elem<float> {
  __device__ static __forceinline__ float in(float v) { return v; }
  __device__ static __forceinline__ float out(float v) { return v; }
};
template <>
struct Elem<__nv_bfloat16> {
  __device__ static __forceinline__ float in(__nv_bfloat16 v) { return __bfloat162float(v); }
  __device__ static __forceinline__ __nv_bfloat16 out(float v) { return __float2bfloat16_rn(v); }
};
template <>
struct Elem<__half> {
  __device__ static __forceinline__ float in(__half v) { return __half2float(v); }
  __device__ static __forceinline__ __half out(float v) { return __float2half_rn(v); }
};

template <typename T>
__device__ __forceinline__ void ld8t(const T* p, float* f) {
  constexpr int PER = 16 / sizeof(T);  // elements per 16-byte access
#pragma unroll
  for (int h = 0; h < 8 / PER; h++) {
    uint4 u = *reinterpret_cast<const uint4*>(p + h * PER);
    const T* e = reinterpret_cast<const T*>(&u);
#pragma unroll
    for (int j = 0; j < PER; j++) f[h * PER + j] = Elem<T>::in(e[j]);
  }
}

template <typename T>
__device__ __forceinline__ void st8t(T* p, const float* f) {
  constexpr int PER = 16 / sizeof(T);
#pragma unroll
  for (int h = 0; h < 8 / PER; h++) {
    uint4 u;
    T* e = reinterpret_cast<T*>(&u);
#pragma unroll
    for (int j = 0; j < PER; j++) e[j] = Elem<T>::out(f[h * PER + j]);
    *reinterpret_cast<uint4*>(p + h * PER) = u;
  }
}

// f[0..8) = p[i..i+8) as floats; i a multiple of 8, p 16-byte aligned.
__device__ __forceinline__ void ld8(const void* p, long long i, int dt, float* f) {
  if (dt == DT_F32) {
    ld8t((const float*)p + i, f);
  } else if (dt == DT_BF16) {
    ld8t((const __nv_bfloat16*)p + i, f);
  } else {
    ld8t((const __half*)p + i, f);
  }
}

// p[i..i+8) = f rounded to p's dtype; i a multiple of 8, p 16-byte aligned.
__device__ __forceinline__ void st8(void* p, long long i, int dt, const float* f) {
  if (dt == DT_F32) {
    st8t((float*)p + i, f);
  } else if (dt == DT_BF16) {
    st8t((__nv_bfloat16*)p + i, f);
  } else {
    st8t((__half*)p + i, f);
  }
}

// v rounded to dtype dt and back (what a store then a load of v gives).
__device__ __forceinline__ float rnd(float v, int dt) {
  if (dt == DT_F32) return v;
  if (dt == DT_BF16) return __bfloat162float(__float2bfloat16_rn(v));
  return __half2float(__float2half_rn(v));
}

__device__ __forceinline__ bool aligned16(const void* p) {
  return p == nullptr || ((uintptr_t)p & 15) == 0;
}
