// SwiGLU of the expert MLP: a = silu(gate) * up, with h = [gate | up] per row.
#include "common.cuh"

__device__ __forceinline__ float sigmoidf_(float g) { return 1.f / (1.f + expf(-g)); }

// h (M, 2F), a (M, F).
MT_KERNEL void swiglu_forward_kernel(const void* h, int hdt, void* a, int adt, long long M, int F) {
  GRID_LOOP(t, M * F) {
    long long m = t / F;
    int f = (int)(t % F);
    float g = ldf(h, m * 2 * F + f, hdt), u = ldf(h, m * 2 * F + F + f, hdt);
    stf(a, t, adt, g * sigmoidf_(g) * u);
  }
}

// dA (M, F), h (M, 2F), dH (M, 2F) overwrite:
// dgate = dA * up * sig * (1 + g * (1 - sig)), dup = dA * silu(g).
MT_KERNEL void swiglu_backward_kernel(const void* da, int dadt, const void* h, int hdt, void* dh,
                                      int dhdt, long long M, int F) {
  GRID_LOOP(t, M * F) {
    long long m = t / F;
    int f = (int)(t % F);
    float g = ldf(h, m * 2 * F + f, hdt), u = ldf(h, m * 2 * F + F + f, hdt);
    float d = ldf(da, t, dadt), s = sigmoidf_(g);
    stf(dh, m * 2 * F + f, dhdt, d * u * s * (1.f + g * (1.f - s)));
    stf(dh, m * 2 * F + F + f, dhdt, d * g * s);
  }
}
