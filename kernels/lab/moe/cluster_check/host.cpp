// Loads ck.cubin with the driver API (libcuda by dlopen: no stub library needed to build) and
// launches ck on 8 blocks by plain cuLaunchKernel; prints the function's required cluster width
// and each block's %cluster_nctarank * 10 + %cluster_ctarank.
// Build: g++ -O1 -I$CUDA_HOME/include -o host host.cpp -ldl; run: ./host ck.cubin
#include <cuda.h>
#include <dlfcn.h>
#include <cstdio>
#define F(name) auto name = (decltype(&::name))dlsym(h, #name)
int main(int argc, char** argv) {
  if (argc < 2) return 2;
  void* h = dlopen("libcuda.so.1", RTLD_NOW);
  if (!h) return 3;
  F(cuInit); F(cuDeviceGet); F(cuModuleLoad); F(cuModuleGetFunction); F(cuMemAlloc_v2);
  F(cuLaunchKernel); F(cuCtxSynchronize); F(cuMemcpyDtoH_v2); F(cuFuncGetAttribute);
  auto ctxCreate = (CUresult(*)(CUcontext*, unsigned, CUdevice))dlsym(h, "cuCtxCreate_v2");
  cuInit(0);
  CUdevice d;
  cuDeviceGet(&d, 0);
  CUcontext c;
  ctxCreate(&c, 0, d);
  CUmodule m;
  printf("load %d\n", cuModuleLoad(&m, argv[1]));
  CUfunction f;
  printf("get %d\n", cuModuleGetFunction(&f, m, "ck"));
  int w = -1;
  cuFuncGetAttribute(&w, CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH, f);
  printf("required cluster width %d\n", w);
  CUdeviceptr p;
  cuMemAlloc_v2(&p, 8 * 4);
  void* args[] = {&p};
  printf("launch %d\n", cuLaunchKernel(f, 8, 1, 1, 32, 1, 1, 0, 0, args, 0));
  printf("sync %d\n", cuCtxSynchronize());
  int out[8] = {0};
  cuMemcpyDtoH_v2(out, p, sizeof out);
  for (int i = 0; i < 8; i++) printf("block %d: nctarank*10+rank = %d\n", i, out[i]);
  return 0;
}
