// SwiGLU of the expert MLP: a = silu(gate) * up, with h = [gate | up] per row.
#include "swiglu.cuh"
#include "vec.cuh"

// h (M, 2F), a (M, F). With F % 8 == 0 and 16-byte aligned tensors (the step's case) each thread
// takes 8 consecutive columns with 16-byte loads and stores; otherwise one element per thread.
// Both compute each element the same way (bitwise equal results).
MT_KERNEL void swiglu_forward_kernel(const void* h, int hdt, void* a, int adt, long long M, int F) {
  if (F % 8 == 0 && aligned16(h) && aligned16(a)) {
    int F8 = F / 8;
    GRID_LOOP(c, M * F8) {
      long long m = c / F8;
      long long f = (c % F8) * 8;
      float g[8], u[8], o[8];
      ld8(h, m * 2 * F + f, hdt, g);
      ld8(h, m * 2 * F + F + f, hdt, u);
#pragma unroll
      for (int j = 0; j < 8; j++) o[j] = swiglu_fwd(g[j], u[j]);
      st8(a, m * F + f, adt, o);
    }
    return;
  }
  GRID_LOOP(t, M * F) {
    long long m = t / F;
    int f = (int)(t % F);
    float g = ldf(h, m * 2 * F + f, hdt), u = ldf(h, m * 2 * F + F + f, hdt);
    stf(a, t, adt, swiglu_fwd(g, u));
  }
}

// dA (M, F), h (M, 2F), dH (M, 2F) overwrite:
// swiglu_bwd (swiglu.cuh). Vector path as the forward.
MT_KERNEL void swiglu_backward_kernel(const void* da, int dadt, const void* h, int hdt, void* dh,
                                      int dhdt, long long M, int F) {
  if (F % 8 == 0 && aligned16(da) && aligned16(h) && aligned16(dh)) {
    int F8 = F / 8;
    GRID_LOOP(c, M * F8) {
      long long m = c / F8;
      long long f = (c % F8) * 8;
      float g[8], u[8], d[8], dg[8], du[8];
      ld8(h, m * 2 * F + f, hdt, g);
      ld8(h, m * 2 * F + F + f, hdt, u);
      ld8(da, m * F + f, dadt, d);
#pragma unroll
      for (int j = 0; j < 8; j++) swiglu_bwd(d[j], g[j], u[j], dg[j], du[j]);
      st8(dh, m * 2 * F + f, dhdt, dg);
      st8(dh, m * 2 * F + F + f, dhdt, du);
    }
    return;
  }
  GRID_LOOP(t, M * F) {
    long long m = t / F;
    int f = (int)(t % F);
    float g = ldf(h, m * 2 * F + f, hdt), u = ldf(h, m * 2 * F + F + f, hdt);
    float dg, du;
    swiglu_bwd(ldf(da, t, dadt), g, u, dg, du);
    stf(dh, m * 2 * F + f, dhdt, dg);
    stf(dh, m * 2 * F + F + f, dhdt, du);
  }
}

// Variant 56's unfused forward, in place: h (M, 2F) = [gate | up] becomes the backward's factors
// [p | q] (swiglu_factors_s, each rounded to h's dtype) and a (M, F) = swiglu_fwd(gate, up),
// overwrite. Each thread reads its gate and up columns before it writes them. Vector path as the
// forward.
MT_KERNEL void swiglu_factors_kernel(void* h, int hdt, void* a, int adt, long long M, int F) {
  if (F % 8 == 0 && aligned16(h) && aligned16(a)) {
    int F8 = F / 8;
    GRID_LOOP(c, M * F8) {
      long long m = c / F8;
      long long f = (c % F8) * 8;
      float g[8], u[8], o[8], p[8], q[8];
      ld8(h, m * 2 * F + f, hdt, g);
      ld8(h, m * 2 * F + F + f, hdt, u);
#pragma unroll
      for (int j = 0; j < 8; j++) {
        float s = sigmoidf_(g[j]);
        o[j] = g[j] * s * u[j];
        swiglu_factors_s(g[j], u[j], s, p[j], q[j]);
      }
      st8(a, m * F + f, adt, o);
      st8(h, m * 2 * F + f, hdt, p);
      st8(h, m * 2 * F + F + f, hdt, q);
    }
    return;
  }
  GRID_LOOP(t, M * F) {
    long long m = t / F;
    int f = (int)(t % F);
    float g = ldf(h, m * 2 * F + f, hdt), u = ldf(h, m * 2 * F + F + f, hdt);
    float s = sigmoidf_(g), p, q;
    swiglu_factors_s(g, u, s, p, q);
    stf(a, t, adt, g * s * u);
    stf(h, m * 2 * F + f, hdt, p);
    stf(h, m * 2 * F + F + f, hdt, q);
  }
}

// Variant 56's unfused backward: dH (M, 2F) = [dA p | dA q] from dA (M, F) and the factors
// [p | q] (M, 2F); dH may alias them. Vector path as the forward.
// (h: the factors, named as swiglu_backward_kernel's h so that one launch serves both)
MT_KERNEL void swiglu_backward_factors_kernel(const void* da, int dadt, const void* h, int hdt,
                                              void* dh, int dhdt, long long M, int F) {
  if (F % 8 == 0 && aligned16(da) && aligned16(h) && aligned16(dh)) {
    int F8 = F / 8;
    GRID_LOOP(c, M * F8) {
      long long m = c / F8;
      long long f = (c % F8) * 8;
      float p[8], q[8], d[8], dg[8], du[8];
      ld8(h, m * 2 * F + f, hdt, p);
      ld8(h, m * 2 * F + F + f, hdt, q);
      ld8(da, m * F + f, dadt, d);
#pragma unroll
      for (int j = 0; j < 8; j++) {
        dg[j] = d[j] * p[j];
        du[j] = d[j] * q[j];
      }
      st8(dh, m * 2 * F + f, dhdt, dg);
      st8(dh, m * 2 * F + F + f, dhdt, du);
    }
    return;
  }
  GRID_LOOP(t, M * F) {
    long long m = t / F;
    int f = (int)(t % F);
    float p = ldf(h, m * 2 * F + f, hdt), q = ldf(h, m * 2 * F + F + f, hdt);
    float d = ldf(da, t, dadt);
    stf(dh, m * 2 * F + f, dhdt, d * p);
    stf(dh, m * 2 * F + F + f, dhdt, d * q);
  }
}
