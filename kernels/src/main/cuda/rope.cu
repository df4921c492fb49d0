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

#define ROPE_MAX_HALF 512

// x (N, heads, hd) in place. With hd/2 % 8 == 0 (hd/2 <= 512) and x 16-byte aligned (the step's
// case) a block takes a token at a time (tokens blockIdx.x, + gridDim.x, ...): its hd/2 cos/sin
// pairs are computed once into shared memory and serve every head, and each thread rotates 8
// pairs with 16-byte loads and stores. Otherwise a thread per (n, head, i < hd/2). Both compute
// each element the same way (bitwise equal results).
MT_KERNEL void rope_kernel(void* x, int dt, const int* positions, float theta, int heads, int hd,
                           long long N, float sign) {
  int half = hd / 2;
  if (half % 8 == 0 && half <= ROPE_MAX_HALF && aligned16(x)) {
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
          float c = cs[0][i0 + j], s = cs[1][i0 + j];
          y1[j] = x1[j] * c - x2[j] * s;
          y2[j] = x2[j] * c + x1[j] * s;
        }
        st8(x, base + i0, dt, y1);
        st8(x, base + i0 + half, dt, y2);
      }
      __syncthreads();  // cs is rewritten for the next token
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
    stf(x, base + i, dt, x1 * c - x2 * s);
    stf(x, base + i + half, dt, x2 * c + x1 * s);
  }
}
