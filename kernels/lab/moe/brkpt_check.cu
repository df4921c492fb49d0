// Does `brkpt` fail a launch the way `trap` does (rather than hang) when no debugger is attached?
// Variant 21 (v21-deferred-epilogue.patch: ws_wait<true> in moe_wgmma_ws.cu) ends a 20 s wait with
// brkpt instead of __trap(), because ptxas compiles code that may trap within the kernel's entry
// registers, ignoring setmaxnreg.inc. H200, 2026-12-03: both end the launch with
// cudaErrorLaunchFailure (results-2026-12-03-v21.txt).
//   nvcc -O3 -gencode arch=compute_90a,code=sm_90a -o brkpt_check brkpt_check.cu && timeout 30 ./brkpt_check
#include <cstdio>
__global__ void k(int* flag, int mode) {
  if (mode == 0) asm volatile("trap;");
  if (mode == 1) asm volatile("brkpt;");
  *flag = 1;
}
int main(int argc, char** argv) {
  int mode = argc > 1 ? atoi(argv[1]) : 1;
  int* flag;
  cudaMalloc(&flag, 4);
  cudaMemset(flag, 0, 4);
  k<<<1, 32>>>(flag, mode);
  cudaError_t e = cudaDeviceSynchronize();
  int h = -1;
  cudaError_t e2 = cudaMemcpy(&h, flag, 4, cudaMemcpyDeviceToHost);
  printf("mode %s: launch -> %s (%s); flag read -> %s, flag = %d\n", mode == 0 ? "trap" : "brkpt",
         cudaGetErrorName(e), cudaGetErrorString(e), cudaGetErrorName(e2), h);
  return e == cudaSuccess ? 1 : 0;
}
