// Rotary position embedding (HF rotate_half convention), forward and inverse, in place.
#include "common.cuh"

// x (N, heads, hd) in place. Thread per (n, head, i < hd/2). As transformers (and CpuRope):
// exponent 2i/hd in float32, theta^exponent rounded to float32, inv_freq = 1 / that in float32,
// angle = pos * inv_freq in float32; cos and sin of that angle in double, rounded to float (the
// angle reaches thousands of radians, where the float versions' error would show).
// sign = +1 forward, -1 for the inverse rotation.
MT_KERNEL void rope_kernel(void* x, int dt, const int* positions, float theta, int heads, int hd,
                           long long N, float sign) {
  int half = hd / 2;
  long long total = N * heads * half;
  GRID_LOOP(t, total) {
    int i = (int)(t % half);
    long long nh = t / half;
    long long n = nh / heads;
    float expo = (float)(2 * i) / (float)hd;
    float inv = 1.f / (float)pow((double)theta, (double)expo);
    float a = (float)positions[n] * inv;
    float c = (float)cos((double)a), s = sign * (float)sin((double)a);
    long long base = nh * hd;
    float x1 = ldf(x, base + i, dt), x2 = ldf(x, base + i + half, dt);
    stf(x, base + i, dt, x1 * c - x2 * s);
    stf(x, base + i + half, dt, x2 * c + x1 * s);
  }
}
