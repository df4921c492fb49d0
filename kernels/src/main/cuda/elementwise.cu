// Elementwise ops: dtype conversion, add, axpy, scale. Grid-stride loops; each element is read
// once and written once, so these run at copy bandwidth when the grid fills the chip.
#include "common.cuh"

// dst[i] = src[i] converted (float dtypes only; same-dtype copies use cuMemcpy instead).
MT_KERNEL void convert_kernel(const void* src, int sdt, void* dst, int ddt, long long n) {
  GRID_LOOP(i, n) stf(dst, i, ddt, ldf(src, i, sdt));
}

// out[i] = a[i] + b[i]; out may alias a or b (each element is read before it is written).
MT_KERNEL void add_kernel(const void* a, int adt, const void* b, int bdt, void* out, int odt,
                          long long n) {
  GRID_LOOP(i, n) stf(out, i, odt, ldf(a, i, adt) + ldf(b, i, bdt));
}

// dst[i] += alpha * src[i].
MT_KERNEL void axpy_kernel(float alpha, const void* src, int sdt, void* dst, int ddt, long long n) {
  GRID_LOOP(i, n) stf(dst, i, ddt, ldf(dst, i, ddt) + alpha * ldf(src, i, sdt));
}

// x[i] *= s.
MT_KERNEL void scale_kernel(void* x, int dt, float s, long long n) {
  GRID_LOOP(i, n) stf(x, i, dt, ldf(x, i, dt) * s);
}
