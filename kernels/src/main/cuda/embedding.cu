// Token embedding forward (row gather) and backward (row scatter-add).
#include "vec.cuh"

// out[n] = table[ids[n]]. ids (N), table (V, D), out (N, D). Grid (N), block over D.
// An id outside [0, V) yields a row of NaN so the bad input shows instead of reading wild memory.
MT_KERNEL void embedding_forward_kernel(const int* ids, const void* table, int tdt, void* out,
                                        int odt, int D, int V) {
  long long n = blockIdx.x;
  int id = ids[n];
  bool ok = id >= 0 && id < V;
  if (D % 8 == 0 && aligned16(table) && aligned16(out)) {  // 16-byte loads and stores
    for (int c = threadIdx.x; c < D / 8; c += blockDim.x) {
      float v[8];
      if (ok) {
        ld8(table, (long long)id * D + c * 8, tdt, v);
      } else {
#pragma unroll
        for (int j = 0; j < 8; j++) v[j] = __int_as_float(0x7fc00000);
      }
      st8(out, n * D + c * 8, odt, v);
    }
    return;
  }
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float v = ok ? ldf(table, (long long)id * D + d, tdt) : __int_as_float(0x7fc00000);
    stf(out, n * D + d, odt, v);
  }
}

// dTable[ids[n]] += dOut[n]. Repeated ids collide, so the add is atomic. Out-of-range ids are
// skipped (the forward already turned them into NaN, which reaches the loss).
MT_KERNEL void embedding_backward_kernel(const int* ids, const void* dout, int gdt, void* dtable,
                                         int tdt, int D, int V) {
  long long n = blockIdx.x;
  int id = ids[n];
  if (id < 0 || id >= V) return;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    atomic_addf(dtable, (long long)id * D + d, tdt, ldf(dout, n * D + d, gdt));
  }
}
