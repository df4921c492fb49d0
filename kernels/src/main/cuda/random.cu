// Counter-based random fill: element i of a tensor depends on (seed, i) alone, so a tensor of any
// size is filled in one launch with no generator state, and the CPU oracle (CpuElementwise.
// randomNormal) computes the same numbers. Used to build random models of a real shape directly
// on the device (benchmarks), not in training.
#include "common.cuh"

// splitmix64 (Steele, Lea, Flood 2014) of the counter seed + (i + 1) * golden gamma.
__device__ __forceinline__ unsigned long long mt_splitmix64(unsigned long long seed,
                                                            long long i) {
  unsigned long long z = seed + (unsigned long long)(i + 1) * 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// x[i] = std * N(0, 1) by Box-Muller on two 24-bit uniforms of one 64-bit draw:
// u1 in (0, 1], u2 in [0, 1); float32 arithmetic, as the CPU side.
MT_KERNEL void random_normal_kernel(void* x, int dt, unsigned long long seed, float std,
                                    long long n) {
  GRID_LOOP(i, n) {
    unsigned long long z = mt_splitmix64(seed, i);
    float u1 = (float)((z >> 40) + 1ULL) * 5.9604645e-08f;  // 2^-24
    float u2 = (float)((z >> 16) & 0xFFFFFFULL) * 5.9604645e-08f;
    float r = sqrtf(-2.0f * logf(u1));
    stf(x, i, dt, std * (r * cosf(6.2831855f * u2)));
  }
}
