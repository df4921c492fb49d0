// The LoRA expand with its sum (Backend#loraExpandAdd): y_row += scale * x[p] @ W[e]^T (transW)
// or x[p] @ W[e], K = r small. Memory-bound on y's read-modify-write, so the product is an FMA
// loop and the epilogue adds into y in place: 2 passes over y where product-to-temporary + axpy
// took 4.
//
// Block: 32 column threads (8 columns each: a 256-column tile) x 8 row lanes; a block covers
// LX_ROWS routed rows. Rows are in expert order, so a block's rows are a few runs of one expert;
// for each run the block stages W[e]'s 256 x LX_JT slab in shared memory (float, [j][col]) chunk by
// chunk over r, every lane accumulating its rows in registers, and the epilogue adds into y with
// 16-byte accesses when aligned. Each output is acc = sum_j x[j] * w[j] in order j = 0..r-1 in
// float, then y + scale * acc rounded once (the CPU twin's order).
#include "common.cuh"
#include "vec.cuh"

#define LX_COLS 256
#define LX_JT 16
#define LX_LANES 8
#define LX_PER_LANE 8
#define LX_ROWS (LX_LANES * LX_PER_LANE)

MT_KERNEL void lora_expand_add_kernel(const void* x, int xdt, const void* w, int wdt, void* y,
                                      int ydt, const int* sortedExpert,
                                      const int* sortedScattered, int M, int r, int outDim,
                                      int transW, int groupedOut, float scale) {
  __shared__ float sw[LX_JT][LX_COLS];
  const int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
  const int c0 = blockIdx.x * LX_COLS;
  const int col = c0 + tx * 8;
  const int p0 = blockIdx.y * LX_ROWS;
  const int p1 = min(M, p0 + LX_ROWS);
  const bool vec = outDim % 8 == 0 && aligned16(y);
  int p = p0;
  while (p < p1) {
    const int e = sortedExpert[p];
    int q = p + 1;
    while (q < p1 && sortedExpert[q] == e) q++;
    float acc[LX_PER_LANE][8];
#pragma unroll
    for (int rr = 0; rr < LX_PER_LANE; rr++)
#pragma unroll
      for (int c = 0; c < 8; c++) acc[rr][c] = 0.f;
    for (int j0 = 0; j0 < r; j0 += LX_JT) {
      const int jn = min(LX_JT, r - j0);
      __syncthreads();  // the previous slab's readers are done
      for (int idx = threadIdx.x; idx < LX_JT * LX_COLS; idx += blockDim.x) {
        int jj, cc;
        if (transW) {  // W (E, out, r): consecutive threads walk j of one column
          jj = idx % LX_JT;
          cc = idx / LX_JT;
        } else {  // W (E, r, out): consecutive threads walk columns of one j
          jj = idx / LX_COLS;
          cc = idx % LX_COLS;
        }
        float v = 0.f;
        if (jj < jn && c0 + cc < outDim) {
          long long wi = transW ? ((long long)e * outDim + c0 + cc) * r + j0 + jj
                                : ((long long)e * r + j0 + jj) * outDim + c0 + cc;
          v = ldf(w, wi, wdt);
        }
        sw[jj][cc] = v;
      }
      __syncthreads();
#pragma unroll
      for (int rr = 0; rr < LX_PER_LANE; rr++) {
        const int pp = p + ty + rr * LX_LANES;
        if (pp < q) {
          for (int jj = 0; jj < jn; jj++) {
            const float a = ldf(x, (long long)pp * r + j0 + jj, xdt);
#pragma unroll
            for (int c = 0; c < 8; c++) acc[rr][c] = fmaf(a, sw[jj][tx * 8 + c], acc[rr][c]);
          }
        }
      }
    }
    if (col < outDim) {
#pragma unroll
      for (int rr = 0; rr < LX_PER_LANE; rr++) {
        const int pp = p + ty + rr * LX_LANES;
        if (pp < q) {
          const long long row = groupedOut ? pp : sortedScattered[pp];
          const long long base = row * outDim + col;
          if (vec && col + 8 <= outDim) {
            float d[8];
            ld8(y, base, ydt, d);
#pragma unroll
            for (int c = 0; c < 8; c++) d[c] = fmaf(scale, acc[rr][c], d[c]);
            st8(y, base, ydt, d);
          } else {
            for (int c = 0; c < 8 && col + c < outDim; c++)
              stf(y, base + c, ydt, fmaf(scale, acc[rr][c], ldf(y, base + c, ydt)));
          }
        }
      }
    }
    p = q;
  }
}
