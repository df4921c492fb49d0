// Elementwise ops: dtype conversion, add, axpy, scale. Grid-stride loops; each element is read
// once and written once, so these run at copy bandwidth when the grid fills the chip. add, axpy
// and scale move 8 elements per 16-byte access when every pointer is 16-byte aligned (vec.cuh;
// the residual stream and the LoRA sums are bf16, where one element per thread was a 2-byte
// access); the scalar loop takes the tail and unaligned views. Both round each element the same
// way, so the result does not depend on the path.
#include "common.cuh"
#include "vec.cuh"

// Elements [0, n8) in 8-wide groups, group g = i / 8, grid-stride.
#define GRID_LOOP8(i, n8)                                                                     \
  for (long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 8; i < (n8);        \
       i += (long long)gridDim.x * blockDim.x * 8)
// The scalar tail [from, n), grid-stride.
#define GRID_LOOP_FROM(i, from, n)                                                            \
  for (long long i = (from) + (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n);      \
       i += (long long)gridDim.x * blockDim.x)

// dst[i] = src[i] converted (float dtypes only; same-dtype copies use cuMemcpy instead).
MT_KERNEL void convert_kernel(const void* src, int sdt, void* dst, int ddt, long long n) {
  GRID_LOOP(i, n) stf(dst, i, ddt, ldf(src, i, sdt));
}

// out[i] = a[i] + b[i]; out may alias a or b (each element is read before it is written).
MT_KERNEL void add_kernel(const void* a, int adt, const void* b, int bdt, void* out, int odt,
                          long long n) {
  long long n8 = 0;
  if (aligned16(a) && aligned16(b) && aligned16(out)) {
    n8 = n / 8 * 8;
    GRID_LOOP8(i, n8) {
      float x[8], y[8];
      ld8(a, i, adt, x);
      ld8(b, i, bdt, y);
#pragma unroll
      for (int j = 0; j < 8; j++) x[j] += y[j];
      st8(out, i, odt, x);
    }
  }
  GRID_LOOP_FROM(i, n8, n) stf(out, i, odt, ldf(a, i, adt) + ldf(b, i, bdt));
}

// dst[i] += alpha * src[i].
MT_KERNEL void axpy_kernel(float alpha, const void* src, int sdt, void* dst, int ddt, long long n) {
  long long n8 = 0;
  if (aligned16(src) && aligned16(dst)) {
    n8 = n / 8 * 8;
    GRID_LOOP8(i, n8) {
      float d[8], x[8];
      ld8(dst, i, ddt, d);
      ld8(src, i, sdt, x);
#pragma unroll
      for (int j = 0; j < 8; j++) d[j] = d[j] + alpha * x[j];
      st8(dst, i, ddt, d);
    }
  }
  GRID_LOOP_FROM(i, n8, n) stf(dst, i, ddt, ldf(dst, i, ddt) + alpha * ldf(src, i, sdt));
}

// x[i] *= s.
MT_KERNEL void scale_kernel(void* x, int dt, float s, long long n) {
  long long n8 = 0;
  if (aligned16(x)) {
    n8 = n / 8 * 8;
    GRID_LOOP8(i, n8) {
      float v[8];
      ld8(x, i, dt, v);
#pragma unroll
      for (int j = 0; j < 8; j++) v[j] *= s;
      st8(x, i, dt, v);
    }
  }
  GRID_LOOP_FROM(i, n8, n) stf(x, i, dt, ldf(x, i, dt) * s);
}
