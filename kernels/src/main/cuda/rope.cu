// Rotary position embedding (HF rotate_half convention), forward and inverse, in place.
#include "common.cuh"

// x (N, heads, hd) in place. Thread per (n, head, i < hd/2). inv_freq is computed in double and
// rounded to float, then the angle pos * inv_freq is a float32 product as in HF; sin/cos are the
// accurate (not the __fast) float functions. sign = +1 forward, -1 for the inverse rotation.
MT_KERNEL void rope_kernel(void* x, int dt, const int* positions, float theta, int heads, int hd,
                           long long N, float sign) {
  int half = hd / 2;
  long long total = N * heads * half;
  GRID_LOOP(t, total) {
    int i = (int)(t % half);
    long long nh = t / half;
    long long n = nh / heads;
    float inv = (float)(1.0 / pow((double)theta, (double)(2 * i) / (double)hd));
    float a = (float)positions[n] * inv;
    float c = cosf(a), s = sign * sinf(a);
    long long base = nh * hd;
    float x1 = ldf(x, base + i, dt), x2 = ldf(x, base + i + half, dt);
    stf(x, base + i, dt, x1 * c - x2 * s);
    stf(x, base + i + half, dt, x2 * c + x1 * s);
  }
}
