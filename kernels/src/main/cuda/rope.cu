// Rotary position embedding (HF rotate_half convention), forward and inverse, in place.
#include "vec.cuh"

// As transformers (and CpuRope): exponent 2i/hd in float32, theta^exponent rounded to float32,
// inv_freq = 1 / that in float32, angle = pos * inv_freq in float32; cos and sin of that angle in
// double, rounded to float (the angle reaches thousands of radians, where the float versions'
// error would show). sign = +1 forward, -1 for the inverse rotation.
__device__ __forceinline__ void rope_cos_sin(float theta, int i, int hd, int pos, float sign,
                                             float* c, float* s) {
  float expo = (float)(2 * i) / (float)hd;
  float inv = 1.f / (float)pow((double)theta, (double)expo);
  float a = (float)pos * inv;
  *c = (float)cos((double)a);
  *s = sign * (float)sin((double)a);
}

// (y1, y2) = (x1 c - x2 s, x2 c + x1 s), each product and sum rounded on its own (no FMA
// contraction), as the CPU oracle computes it: every path below gives the same bits.
__device__ __forceinline__ void rope_rot(float x1, float x2, float c, float s, float* y1,
                                         float* y2) {
  *y1 = __fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, s));
  *y2 = __fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s));
}

#define ROPE_MAX_HALF 512
#define ROPE_TABLE 512  // cos/sin pairs a block keeps in shared memory (TOK tokens x hd/2)

// x (N, heads, hd) in place. With hd/2 % 8 == 0 (hd/2 <= 512) and x 16-byte aligned (the step's
// case) a block takes TOK = max(1, ROPE_TABLE / (hd/2)) consecutive tokens at a time (tiles
// blockIdx.x, + gridDim.x, ...): first inv_freq(i) = 1/theta^(2i/hd) for i < hd/2, once per
// block, then the tile's TOK x hd/2 cos/sin pairs with every thread computing some (two each at
// hd 64 with 256 threads), then every thread rotates 8 pairs of a (token, head) with 16-byte
// loads and stores, for all heads of the tile's tokens. The double-precision cos/sin of an angle is computed once
// per token and serves all heads; no thread waits for another token's table. Otherwise a thread
// per (n, head, i < hd/2). Both compute each element the same way (bitwise equal results).
MT_KERNEL void rope_kernel(void* x, int dt, const int* positions, float theta, int heads, int hd,
                           long long N, float sign) {
  int half = hd / 2;
  if (half % 8 == 0 && half <= ROPE_MAX_HALF && aligned16(x)) {
    __shared__ float inv[ROPE_MAX_HALF];
    __shared__ float cs[2][ROPE_TABLE];
    int tok = half >= ROPE_TABLE ? 1 : ROPE_TABLE / half;
    int h8 = half / 8, perTok = heads * h8;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
      float expo = (float)(2 * i) / (float)hd;
      inv[i] = 1.f / (float)pow((double)theta, (double)expo);
    }
    for (long long n0 = (long long)blockIdx.x * tok; n0 < N; n0 += (long long)gridDim.x * tok) {
      int rows = (int)min((long long)tok, N - n0);
      __syncthreads();  // inv is written (first tile); cs is no longer read (later tiles)
      for (int e = threadIdx.x; e < rows * half; e += blockDim.x) {
        int r = e / half, i = e - r * half;
        float a = (float)positions[n0 + r] * inv[i];
        cs[0][e] = (float)cos((double)a);
        cs[1][e] = sign * (float)sin((double)a);
      }
      __syncthreads();
      for (int w = threadIdx.x; w < rows * perTok; w += blockDim.x) {
        int r = w / perTok, rest = w - r * perTok;
        int i0 = (rest % h8) * 8;
        long long base = ((n0 + r) * heads + rest / h8) * hd;
        const float* c = &cs[0][r * half + i0];
        const float* sn = &cs[1][r * half + i0];
        float x1[8], x2[8], y1[8], y2[8];
        ld8(x, base + i0, dt, x1);
        ld8(x, base + i0 + half, dt, x2);
#pragma unroll
        for (int j = 0; j < 8; j++) {
          rope_rot(x1[j], x2[j], c[j], sn[j], &y1[j], &y2[j]);
        }
        st8(x, base + i0, dt, y1);
        st8(x, base + i0 + half, dt, y2);
      }
    }
    return;
  }
  long long total = N * heads * half;
  GRID_LOOP(t, total) {
    int i = (int)(t % half);
    long long nh = t / half;
    long long n = nh / heads;
    float c, s;
    rope_cos_sin(theta, i, hd, positions[n], sign, &c, &s);
    long long base = nh * hd;
    float x1 = ldf(x, base + i, dt), x2 = ldf(x, base + i + half, dt);
    float y1, y2;
    rope_rot(x1, x2, c, s, &y1, &y2);
    stf(x, base + i, dt, y1);
    stf(x, base + i + half, dt, y2);
  }
}

// The previous vector path, kept only for the "before" row of KernelBandwidthBench (system
// property moetune.kernels.before=rope): a block takes one token at a time and its hd/2 cos/sin
// pairs are computed by hd/2 threads while the rest wait. Same numbers as rope_kernel. Takes the
// vector case only (the launcher checks it).
MT_KERNEL void rope_v1_kernel(void* x, int dt, const int* positions, float theta, int heads, int hd,
                              long long N, float sign) {
  int half = hd / 2;
  __shared__ float cs[2][ROPE_MAX_HALF];
  int h8 = half / 8, chunks = heads * h8;
  for (long long n = blockIdx.x; n < N; n += gridDim.x) {
    int pos = positions[n];
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
      rope_cos_sin(theta, i, hd, pos, sign, &cs[0][i], &cs[1][i]);
    }
    __syncthreads();
    for (int t = threadIdx.x; t < chunks; t += blockDim.x) {
      int i0 = (t % h8) * 8;
      long long base = (n * heads + t / h8) * hd;
      float x1[8], x2[8], y1[8], y2[8];
      ld8(x, base + i0, dt, x1);
      ld8(x, base + i0 + half, dt, x2);
#pragma unroll
      for (int j = 0; j < 8; j++) {
        rope_rot(x1[j], x2[j], cs[0][i0 + j], cs[1][i0 + j], &y1[j], &y2[j]);
      }
      st8(x, base + i0, dt, y1);
      st8(x, base + i0 + half, dt, y2);
    }
    __syncthreads();  // cs is rewritten for the next token
  }
}
