// Optimizer kernels: squared-norm accumulation, clipping by the global norm read on the device,
// and the AdamW step on float32 master weights.
#include "common.cuh"

// acc[0] += sum x^2. Block partials in float32, one atomic per block.
MT_KERNEL void sum_squares_kernel(const void* x, int dt, float* acc, long long n) {
  float s = 0.f;
  GRID_LOOP(i, n) {
    float v = ldf(x, i, dt);
    s += v * v;
  }
  s = block_sum(s);
  if (threadIdx.x == 0) atomicAdd(acc, s);
}

// g *= min(1, maxNorm / (sqrt(sumSq[0]) + 1e-6)), as torch's clip_grad_norm_ (which also
// multiplies when the coefficient is exactly 1, so no branch is needed for parity).
MT_KERNEL void clip_by_norm_kernel(void* g, int dt, const float* sumSq, float maxNorm, long long n) {
  float coef = fminf(1.f, maxNorm / (sqrtf(sumSq[0]) + 1e-6f));
  GRID_LOOP(i, n) stf(g, i, dt, ldf(g, i, dt) * coef);
}

// 16-byte vector variants for float32 buffers whose address is 16-byte aligned and whose length
// is a multiple of 4 (the flat parameter buffers are): one float4 load and store per thread and
// step, n4 = n / 4. Same arithmetic per element as the scalar kernels (sum_squares differs only
// in summation order).
MT_KERNEL void sum_squares_f32x4_kernel(const float4* x, float* acc, long long n4) {
  float s = 0.f;
  GRID_LOOP(i, n4) {
    float4 v = x[i];
    s += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
  }
  s = block_sum(s);
  if (threadIdx.x == 0) atomicAdd(acc, s);
}

MT_KERNEL void clip_by_norm_f32x4_kernel(float4* g, const float* sumSq, float maxNorm,
                                         long long n4) {
  float coef = fminf(1.f, maxNorm / (sqrtf(sumSq[0]) + 1e-6f));
  GRID_LOOP(i, n4) {
    float4 v = g[i];
    v.x *= coef;
    v.y *= coef;
    v.z *= coef;
    v.w *= coef;
    g[i] = v;
  }
}

// torch.optim.AdamW (non-amsgrad, foreach=False order of operations):
// p *= 1 - lr*wd; m = lerp(m, g, 1-b1); v = b2 v + (1-b2) g^2;
// p -= stepSize * m / (sqrt(v) / bc2Sqrt + eps). The constants come from the host in float32,
// computed there in double as torch does (AdamWCoefficients).
// One element of the step with the host's float32 constants (AdamWCoefficients): every operation
// rounded explicitly (the _rn intrinsics), so the compiler cannot contract any of it into an FMA
// differently from one kernel to another, and the result is bitwise the CPU oracle's (Java rounds
// every float operation; torch's lerp is the one fma).
__device__ __forceinline__ void adamw_update(float& p, float& m, float& v, float g, float decay,
                                             float w1, float beta2, float w2, float negStepSize,
                                             float bc2Sqrt, float eps) {
  p = __fmul_rn(p, decay);
  float d = __fsub_rn(g, m);
  m = w1 < 0.5f ? __fmaf_rn(w1, d, m) : __fmaf_rn(__fsub_rn(w1, 1.f), d, g);
  v = __fadd_rn(__fmul_rn(v, beta2), __fmul_rn(__fmul_rn(w2, g), g));
  float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), bc2Sqrt), eps);
  p = __fadd_rn(p, __fdiv_rn(__fmul_rn(negStepSize, m), denom));
}

MT_KERNEL void adamw_kernel(float* p, const void* g, int gdt, float* m, float* v, float decay,
                            float w1, float beta2, float w2, float negStepSize, float bc2Sqrt,
                            float eps, void* low, int lowdt, long long n) {
  GRID_LOOP(i, n) {
    float pi = p[i], mi = m[i], vi = v[i];
    adamw_update(pi, mi, vi, ldf(g, i, gdt), decay, w1, beta2, w2, negStepSize, bc2Sqrt, eps);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
    if (low != nullptr) stf(low, i, lowdt, pi);
  }
}

// The 16-byte vector variant: p, g, m, v float32, 16-byte aligned, n = 4 * n4; the working copy
// (low) bf16 written 8 bytes at a time (8-byte aligned), or any dtype element by element, or none.
MT_KERNEL void adamw_f32x4_kernel(float4* p, const float4* g, float4* m, float4* v, float decay,
                                  float w1, float beta2, float w2, float negStepSize,
                                  float bc2Sqrt, float eps, void* low, int lowdt, long long n4) {
  GRID_LOOP(i, n4) {
    float4 pi = p[i], gi = g[i], mi = m[i], vi = v[i];
    adamw_update(pi.x, mi.x, vi.x, gi.x, decay, w1, beta2, w2, negStepSize, bc2Sqrt, eps);
    adamw_update(pi.y, mi.y, vi.y, gi.y, decay, w1, beta2, w2, negStepSize, bc2Sqrt, eps);
    adamw_update(pi.z, mi.z, vi.z, gi.z, decay, w1, beta2, w2, negStepSize, bc2Sqrt, eps);
    adamw_update(pi.w, mi.w, vi.w, gi.w, decay, w1, beta2, w2, negStepSize, bc2Sqrt, eps);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
    if (low == nullptr) continue;
    if (lowdt == DT_BF16) {
      __nv_bfloat162 a = __floats2bfloat162_rn(pi.x, pi.y), b = __floats2bfloat162_rn(pi.z, pi.w);
      uint2 packed;
      packed.x = *reinterpret_cast<unsigned int*>(&a);
      packed.y = *reinterpret_cast<unsigned int*>(&b);
      ((uint2*)low)[i] = packed;
    } else {
      stf(low, 4 * i, lowdt, pi.x);
      stf(low, 4 * i + 1, lowdt, pi.y);
      stf(low, 4 * i + 2, lowdt, pi.z);
      stf(low, 4 * i + 3, lowdt, pi.w);
    }
  }
}
