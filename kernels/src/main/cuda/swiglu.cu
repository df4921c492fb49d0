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
// [p | q] (swiglu_factors_s, each rounded to h's dtype), each half in the factors order
// (swiglu_fac_col), and a (M, F) = swiglu_fwd(gate, up), overwrite. A thread takes one 32-column
// group of a row (the order moves columns within it) and reads all of it before it writes: 16-byte
// loads and stores where F % 8 == 0 and the tensors are 16-byte aligned, one element at a time
// otherwise (bitwise equal results).
MT_KERNEL void swiglu_factors_kernel(void* h, int hdt, void* a, int adt, long long M, int F) {
  bool vec = F % 8 == 0 && aligned16(h) && aligned16(a);
  int G = (F + 31) / 32;
  GRID_LOOP(c, M * G) {
    long long m = c / G, hr = m * 2 * F;
    int f0 = (int)(c % G) * 32, w = min(32, F - f0);
    float p[32], q[32];
#pragma unroll
    for (int k = 0; k < 32; k += 8) {  // a chunk's gate and up in, its a out, p and q kept
      float g[8], u[8], o[8];
      if (vec && k < w) {
        ld8(h, hr + f0 + k, hdt, g);
        ld8(h, hr + F + f0 + k, hdt, u);
      } else {
#pragma unroll
        for (int i = 0; i < 8; i++) {
          g[i] = !vec && k + i < w ? ldf(h, hr + f0 + k + i, hdt) : 0.f;
          u[i] = !vec && k + i < w ? ldf(h, hr + F + f0 + k + i, hdt) : 0.f;
        }
      }
#pragma unroll
      for (int i = 0; i < 8; i++) {
        float s = sigmoidf_(g[i]);
        o[i] = g[i] * s * u[i];
        swiglu_factors_s(g[i], u[i], s, p[k + i], q[k + i]);
      }
      if (vec && k < w) {
        st8(a, m * F + f0 + k, adt, o);
      } else if (!vec) {
#pragma unroll
        for (int i = 0; i < 8; i++)
          if (k + i < w) stf(a, m * F + f0 + k + i, adt, o[i]);
      }
    }
    // stored at d: column swiglu_fac_col(d)'s factor (the map is its own inverse); in a whole
    // group chunk t holds the pairs 8 j + 2 t, j = 0..3
    float po[32], qo[32];
    if (w == 32) {
#pragma unroll
      for (int k = 0; k < 32; k++) {
        po[k] = p[swiglu_fac_col(k, 32)];
        qo[k] = q[swiglu_fac_col(k, 32)];
      }
    } else {
#pragma unroll
      for (int k = 0; k < 32; k++) {
        po[k] = p[k];
        qo[k] = q[k];
      }
    }
#pragma unroll
    for (int k = 0; k < 32; k += 8) {
      if (vec && k < w) {
        st8(h, hr + f0 + k, hdt, po + k);
        st8(h, hr + F + f0 + k, hdt, qo + k);
      } else if (!vec) {
#pragma unroll
        for (int i = 0; i < 8; i++) {
          if (k + i < w) {
            stf(h, hr + f0 + k + i, hdt, po[k + i]);
            stf(h, hr + F + f0 + k + i, hdt, qo[k + i]);
          }
        }
      }
    }
  }
}

// Variant 56's unfused backward: dH (M, 2F) = [dA p | dA q] from dA (M, F) and the factors
// [p | q] (M, 2F) in the factors order; dH (natural order) may alias them. A thread takes one
// 32-column group of a row and reads all of it before it writes; vector path as the forward.
// (h: the factors, named as swiglu_backward_kernel's h so that one launch serves both)
MT_KERNEL void swiglu_backward_factors_kernel(const void* da, int dadt, const void* h, int hdt,
                                              void* dh, int dhdt, long long M, int F) {
  bool vec = F % 8 == 0 && aligned16(da) && aligned16(h) && aligned16(dh);
  int G = (F + 31) / 32;
  GRID_LOOP(c, M * G) {
    long long m = c / G, hr = m * 2 * F;
    int f0 = (int)(c % G) * 32, w = min(32, F - f0);
    float ps[32], qs[32], p[32], q[32];  // as stored, then column k's at k
#pragma unroll
    for (int k = 0; k < 32; k += 8) {
      if (vec && k < w) {
        ld8(h, hr + f0 + k, hdt, ps + k);
        ld8(h, hr + F + f0 + k, hdt, qs + k);
      } else {
#pragma unroll
        for (int i = 0; i < 8; i++) {
          bool in = !vec && k + i < w;
          ps[k + i] = in ? ldf(h, hr + f0 + k + i, hdt) : 0.f;
          qs[k + i] = in ? ldf(h, hr + F + f0 + k + i, hdt) : 0.f;
        }
      }
    }
    if (w == 32) {  // column k's factors at swiglu_fac_col(k)
#pragma unroll
      for (int k = 0; k < 32; k++) {
        p[k] = ps[swiglu_fac_col(k, 32)];
        q[k] = qs[swiglu_fac_col(k, 32)];
      }
    } else {
#pragma unroll
      for (int k = 0; k < 32; k++) {
        p[k] = ps[k];
        q[k] = qs[k];
      }
    }
#pragma unroll
    for (int k = 0; k < 32; k += 8) {  // a chunk of dA in, of dH out (after all the group's reads)
      float d[8], dg[8], du[8];
      if (vec && k < w) {
        ld8(da, m * F + f0 + k, dadt, d);
      } else {
#pragma unroll
        for (int i = 0; i < 8; i++) d[i] = !vec && k + i < w ? ldf(da, m * F + f0 + k + i, dadt) : 0.f;
      }
#pragma unroll
      for (int i = 0; i < 8; i++) {
        dg[i] = d[i] * p[k + i];
        du[i] = d[i] * q[k + i];
      }
      if (vec && k < w) {
        st8(dh, hr + f0 + k, dhdt, dg);
        st8(dh, hr + F + f0 + k, dhdt, du);
      } else if (!vec) {
#pragma unroll
        for (int i = 0; i < 8; i++) {
          if (k + i < w) {
            stf(dh, hr + f0 + k + i, dhdt, dg[i]);
            stf(dh, hr + F + f0 + k + i, dhdt, du[i]);
          }
        }
      }
    }
  }
}
