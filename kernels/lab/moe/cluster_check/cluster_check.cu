// Does cuLaunchKernel honour a kernel's compile-time __cluster_dims__? (session 30, call 3: yes)
// Build: nvcc -cubin -gencode arch=compute_90a,code=sm_90a -o ck.cubin cluster_check.cu
extern "C" __global__ void __cluster_dims__(2, 1, 1) ck(int* out) {
  unsigned r, n;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
  asm volatile("mov.u32 %0, %%cluster_nctarank;" : "=r"(n));
  if (threadIdx.x == 0) out[blockIdx.x] = (int)(n * 10 + r);
}
