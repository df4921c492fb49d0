// Variant 35's claim, checked on every float: swiglu.cuh's sigmoidf_ (ex2.approx.ftz,
// rcp.approx.ftz, since session 38) gives the bits of the plain forms it replaced (__expf,
// __fdividef, sigmoid_plain below) for all 2^32 inputs (both NaN counts as equal).
// nvcc -O3 -gencode arch=compute_90a,code=sm_90a -I../../src/main/cuda -o sigmoid_check
// sigmoid_check.cu && ./sigmoid_check   (prints the mismatches and exits 1 if there are any)
#include <cstdio>
#include <cstdint>
#include "swiglu.cuh"

// the sigmoid the kernels had up to session 37 (variant 35's sigmoidf_fz is sigmoidf_ now)
__device__ __forceinline__ float sigmoid_plain(float g) {
  return __fdividef(1.f, 1.f + __expf(-g));
}

__global__ void check(unsigned long long* bad, unsigned int* first) {
  for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < (1ull << 32);
       i += (uint64_t)gridDim.x * blockDim.x) {
    float g = __uint_as_float((uint32_t)i);
    float a = sigmoid_plain(g), b = sigmoidf_(g);
    bool same = __float_as_uint(a) == __float_as_uint(b) || (a != a && b != b);
    if (!same) {
      unsigned long long n = atomicAdd(bad, 1ull);
      if (n < 8) first[n] = (uint32_t)i;
    }
  }
}

int main() {
  unsigned long long* bad;
  unsigned int* first;
  cudaMallocManaged(&bad, sizeof(*bad));
  cudaMallocManaged(&first, 8 * sizeof(*first));
  *bad = 0;
  check<<<132 * 16, 256>>>(bad, first);
  cudaError_t err = cudaDeviceSynchronize();
  if (err != cudaSuccess) {
    printf("sigmoid_check: %s\n", cudaGetErrorString(err));
    return 2;
  }
  printf("sigmoid_check: %llu of 2^32 inputs differ\n", *bad);
  for (unsigned long long n = 0; n < *bad && n < 8; n++) {
    float g = __builtin_bit_cast(float, first[n]);
    printf("  g = %a (0x%08x)\n", g, first[n]);
  }
  return *bad == 0 ? 0 : 1;
}
