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

// torch.optim.AdamW (non-amsgrad, foreach=False order of operations):
// p *= 1 - lr*wd; m = lerp(m, g, 1-b1); v = b2 v + (1-b2) g^2;
// p -= stepSize * m / (sqrt(v) / bc2Sqrt + eps). bc terms are computed on the host in double.
MT_KERNEL void adamw_kernel(float* p, const void* g, int gdt, float* m, float* v, float lr,
                            float beta1, float beta2, float eps, float wd, float stepSize,
                            float bc2Sqrt, void* low, int lowdt, long long n) {
  GRID_LOOP(i, n) {
    float gi = ldf(g, i, gdt);
    float pi = p[i] * (1.f - lr * wd);
    float mi = m[i] + (1.f - beta1) * (gi - m[i]);
    float vi = beta2 * v[i] + (1.f - beta2) * gi * gi;
    pi -= stepSize * mi / (sqrtf(vi) / bc2Sqrt + eps);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
    if (low != nullptr) stf(low, i, lowdt, pi);
  }
}

// out[0] += scale * sum x (out zeroed by the host first: one atomic per block).
MT_KERNEL void sum_kernel(const void* x, int dt, float scale, float* out, long long n) {
  float s = 0.f;
  GRID_LOOP(i, n) s += ldf(x, i, dt);
  s = block_sum(s);
  if (threadIdx.x == 0) atomicAdd(out, scale * s);
}
