// The gate side of a gated ParallelLinear's backward (Backend#gateRowsBackward): for row s,
// gi = gateIdx ? gateIdx[s] : s, dGates[gi] = dot(rows[s], x[s / xFan]) (float32, overwrite, when
// dGates is given), then rows[s] *= gates[gi] in place. rows holds the ungated dX (dY_row W_e), so
// the gate gradient needs no copy of the forward's expert outputs y_e.
//
// One block of GR_THREADS per row. On the 16-byte path each thread keeps up to GR_KEEP chunks of
// 8 in registers, so a row up to GR_THREADS * 8 * GR_KEEP = 16384 wide is read once and written
// once (Mixtral's F = 14336: rows read, x read, rows written); wider rows are read twice. The dot
// is summed per thread in column order, then block_sum: deterministic for a given launch.
#include "common.cuh"
#include "vec.cuh"

#define GR_THREADS 256
#define GR_KEEP 8

MT_KERNEL void gate_rows_backward_kernel(void* rows, int rdt, const void* x, int xdt, int xFan,
                                         const int* gateIdx, const float* gates, float* dGates,
                                         int M, int C) {
  const int s = blockIdx.x;
  if (s >= M) return;
  const int gi = gateIdx ? gateIdx[s] : s;
  const float g = gates[gi];
  const long long rb = (long long)s * C;
  const long long xb = x ? (long long)(s / xFan) * C : 0;
  const bool dot = dGates != nullptr;
  float acc = 0.f;
  if (C % 8 == 0 && aligned16(rows) && aligned16(x)) {
    float keep[GR_KEEP][8];
#pragma unroll
    for (int i = 0; i < GR_KEEP; i++) {
      const int c = (i * GR_THREADS + threadIdx.x) * 8;
      if (c < C) {
        ld8(rows, rb + c, rdt, keep[i]);
        if (dot) {
          float xv[8];
          ld8(x, xb + c, xdt, xv);
#pragma unroll
          for (int j = 0; j < 8; j++) acc = fmaf(keep[i][j], xv[j], acc);
        }
      }
    }
    const int wide = GR_KEEP * GR_THREADS * 8;
    if (dot) {
      for (int c = wide + threadIdx.x * 8; c < C; c += GR_THREADS * 8) {
        float rv[8], xv[8];
        ld8(rows, rb + c, rdt, rv);
        ld8(x, xb + c, xdt, xv);
#pragma unroll
        for (int j = 0; j < 8; j++) acc = fmaf(rv[j], xv[j], acc);
      }
      acc = block_sum(acc);
      if (threadIdx.x == 0) dGates[gi] = acc;
    }
#pragma unroll
    for (int i = 0; i < GR_KEEP; i++) {
      const int c = (i * GR_THREADS + threadIdx.x) * 8;
      if (c < C) {
#pragma unroll
        for (int j = 0; j < 8; j++) keep[i][j] *= g;
        st8(rows, rb + c, rdt, keep[i]);
      }
    }
    for (int c = wide + threadIdx.x * 8; c < C; c += GR_THREADS * 8) {
      float rv[8];
      ld8(rows, rb + c, rdt, rv);
#pragma unroll
      for (int j = 0; j < 8; j++) rv[j] *= g;
      st8(rows, rb + c, rdt, rv);
    }
  } else {
    if (dot) {
      for (int c = threadIdx.x; c < C; c += GR_THREADS)
        acc = fmaf(ldf(rows, rb + c, rdt), ldf(x, xb + c, xdt), acc);
      acc = block_sum(acc);
      if (threadIdx.x == 0) dGates[gi] = acc;
    }
    for (int c = threadIdx.x; c < C; c += GR_THREADS) stf(rows, rb + c, rdt, ldf(rows, rb + c, rdt) * g);
  }
}

// The gate gradient of the fused SwiGLU backward (moe_wgmma_ws.cu, variant 10): per grouped row
// p, dGates[sortedScattered[p]] = the sum of its tiles' parts, partial (M, nTiles), in tile order.
MT_KERNEL void gate_partials_reduce_kernel(const float* partial, int nTiles,
                                           const int* sortedScattered, float* dGates, int M) {
  int p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= M) return;
  const float* q = partial + (long long)p * nTiles;
  float s = 0.f;
  for (int t = 0; t < nTiles; t++) s += q[t];
  dGates[sortedScattered[p]] = s;
}
