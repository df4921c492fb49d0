// How fast can one, two or three consumer warpgroups feed the tensor cores from shared memory?
// The ping-pong variants 27 and 28 ran the down product's main loop with one warpgroup issuing at a
// time and measured 58% SM throughput against the cooperative kernel's 73% (ncu, Mixtral): is one
// warpgroup's wgmma issue the limit, or something else in those kernels? This lab tool answers the
// first half with nothing but wgmma: every block (one per SM) keeps its operands in shared memory
// (random bf16, loaded once; zeros run faster), and each of its NWG warpgroups issues the shipped
// kernels' k step (four wgmma over a 64-deep slice, commit, wait for the group before) ITERS
// times. No loads, no epilogue, no barriers between warpgroups.
//
//   nvcc -O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a -o wgmma_rate wgmma_rate.cu
//   ./wgmma_rate [iters]          # WGMMA_RATE_REPS=1: one timed launch a configuration (ncu)
//
// Modes (per warpgroup, the same 1,048,576 multiply-adds a k step):
//   n256     one m64n256k16 accumulator chain (the cooperative 128 x 256 tile's half; variant 27)
//   2xn128   two m64n128k16 chains over 64-row halves of a 128 x 128 tile (variant 28)
//   n256w0   n256 waiting for each step's own group (wgmma.wait_group 0) before the next
// and, beside the wgmma warpgroups, one more warpgroup filling other shared memory the whole time
// (the share of the SM's shared-memory bandwidth the stages' fills take in a real kernel):
//   +st      its 128 threads storing 16 bytes each per instruction (st.shared.v4), nonstop
//   +tma     one thread keeping four 16 KiB bulk copies (cp.async.bulk, global -> shared, from a
//            4 MiB buffer that stays in L2) in flight, as the producers' TMA loads do
// The fill row reports the bytes it wrote per SM clock. The helpers are the shipped ones
// (moe_wgmma.cu, moe_wgmma_ws.cu, #included).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../../src/main/cuda/moe_mma.cu"
#include "../../src/main/cuda/moe_wgmma.cu"
#include "../../src/main/cuda/moe_wgmma_ws.cu"

#define A_TILE (64 * 64 * 2)  // one warpgroup's 64 rows x 64 k, bf16, 128-byte swizzled rows

#define FILL_BYTES 65536  // the filling warpgroup's own shared memory (four 16 KiB chunks)
#define FILL_CHUNK 16384
__host__ __device__ constexpr int rate_smem(int nwg, int fill = 0) {
  return 1024 + nwg * 2 * A_TILE + 256 * 128 + (fill ? FILL_BYTES + 64 : 0);
}

// FILL 1: warpgroup NWG stores into its region until the wgmma warpgroups are done; FILL 2: its
// first thread keeps four bulk copies in flight. Bytes filled per block go to filled[blockIdx.x].
template <int NWG, int MODE, int FILL = 0>
__global__ void __launch_bounds__(128 * NWG + (FILL ? 128 : 0), 1)
    rate_kernel(int iters, float* sink, long long* cyc, const uint4* src, long long* filled) {
#ifdef WG_ON
  extern __shared__ __align__(128) unsigned char sm[];
  uint32_t base = mm_smem_addr(sm), s0 = (base + 1023) & ~1023u;
  unsigned char* p0 = sm + (s0 - base);
  // random bf16 in [-1, 1): a hash of the byte offset, so every block sees the same operands
  for (int i = threadIdx.x; i < rate_smem(NWG) / 2 - 512; i += blockDim.x) {
    uint32_t h = (uint32_t)i * 2654435761u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    reinterpret_cast<__nv_bfloat16*>(p0)[i] = __float2bfloat16((h & 0xFFFF) / 32768.f - 1.f);
  }
  __shared__ volatile int done;
  uint32_t fill = s0 + rate_smem(NWG) - 1024, fbar = fill + FILL_BYTES;
  if (threadIdx.x == 0) {
    done = 0;
    if (FILL == 2)
      for (int i = 0; i < 4; i++) ws_bar_init(fbar + 8 * i, 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  int wg = threadIdx.x / 128;
  if (FILL && wg == NWG) {  // the filling warpgroup
    long long bytes = 0, t0 = clock64();
    if (FILL == 1) {
      uint32_t dst = fill + (threadIdx.x % 128) * 16;
      while (!done) {
#pragma unroll
        for (int i = 0; i < 16; i++) {
          asm volatile("st.shared.v4.b32 [%0], {%1, %1, %1, %1};\n" ::"r"(dst + (i % 32) * 2048),
                       "r"(i)
                       : "memory");
        }
        bytes += 16 * 16 * 128;  // the warpgroup's bytes (counted by every thread alike)
      }
    } else if (threadIdx.x % 128 == 0) {
      uint32_t n = 0;
      const char* src8 = reinterpret_cast<const char*>(src);  // 256 chunks, 4 MiB
      // copy n: chunk (7 b + n) % 256 of the source into slot n % 4, completing on its barrier
      auto issue = [&](uint32_t c) {
        int i = c % 4;
        ws_arrive_tx(fbar + 8 * i, FILL_CHUNK);
        asm volatile(
            "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                fill + i * FILL_CHUNK),
            "l"(src8 + (size_t)((blockIdx.x * 7 + c) % 256) * FILL_CHUNK), "r"(FILL_CHUNK), "r"(fbar + 8 * i)
            : "memory");
      };
      for (; n < 4; n++) issue(n);
      for (;; n++) {  // wait for copy n - 4, then reuse its slot for copy n
        ws_wait(fbar + 8 * (n % 4), ((n / 4) - 1) & 1);
        bytes += FILL_CHUNK;
        if (done) break;
        issue(n);
      }
      for (int j = 1; j < 4; j++) ws_wait(fbar + 8 * ((n + j) % 4), ((n + j) / 4 - 1) & 1);
    }
    if (threadIdx.x % 128 == 0) filled[blockIdx.x] = bytes, cyc[gridDim.x * NWG + blockIdx.x] = clock64() - t0;
    return;
  }
  uint32_t sA = s0 + wg * 2 * A_TILE, sB = s0 + NWG * 2 * A_TILE;
  uint64_t da0 = wg_desc(sA, 16, 1024), da1 = wg_desc(sA + A_TILE, 16, 1024);
  uint64_t db = wg_desc(sB, 16, 1024);
  constexpr int N0 = MODE == 1 ? 64 : 128, N1 = MODE == 1 ? 64 : 1;  // d1: the second chain
  float d0[N0], d1[N1];
#pragma unroll
  for (int i = 0; i < N0; i++) d0[i] = 0.f;
#pragma unroll
  for (int i = 0; i < N1; i++) d1[i] = 0.f;
  long long t0 = clock64();
  for (int it = 0; it < iters; it++) {
    wg_fence_acc(d0);
    if (MODE == 1) wg_fence_acc(d1);
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
      if constexpr (MODE == 1) {
        wg_mma_n128<0, 0>(d0, da0 + kk * 2, db + kk * 2);
        wg_mma_n128<0, 0>(d1, da1 + kk * 2, db + kk * 2);
      } else {
        wg_mma_n256<0, 0>(d0, da0 + kk * 2, db + kk * 2);
      }
    }
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    if (MODE == 2) {
      asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    } else {
      asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
    }
    wg_fence_acc(d0);
    if (MODE == 1) wg_fence_acc(d1);
  }
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
  wg_fence_acc(d0);
  if (MODE == 1) wg_fence_acc(d1);
  long long t1 = clock64();
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < N0; i++) s += d0[i];
#pragma unroll
  for (int i = 0; i < N1; i++) s += d1[i];
  if (s == 12345.f) sink[threadIdx.x] = s;  // keeps the products alive
  if (threadIdx.x % 128 == 0) cyc[blockIdx.x * NWG + wg] = t1 - t0;
  if (FILL) {
    asm volatile("bar.sync 1, %0;\n" ::"r"(128 * NWG) : "memory");  // every wgmma warpgroup done
    if (threadIdx.x == 0) done = 1;
  }
#endif
}

#define CK(x)                                                                          \
  do {                                                                                 \
    cudaError_t e = (x);                                                               \
    if (e != cudaSuccess) {                                                            \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e)); \
      std::exit(1);                                                                    \
    }                                                                                  \
  } while (0)

// timed launches per configuration (WGMMA_RATE_REPS, default 5: medians of 5; 1 under ncu)
static int reps() {
  const char* e = std::getenv("WGMMA_RATE_REPS");
  return e != nullptr && std::atoi(e) > 0 ? std::atoi(e) : 5;
}

// Times one configuration, prints its row and returns its TFLOP/s (ref <= 0: it is the reference).
template <int NWG, int MODE, int FILL = 0>
static double run(const char* name, int sms, int iters, float* sink, long long* cyc, const uint4* src,
                long long* filled, double ref) {
  auto k = rate_kernel<NWG, MODE, FILL>;
  int smem = rate_smem(NWG, FILL), threads = 128 * NWG + (FILL ? 128 : 0);
  CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  k<<<sms, threads, smem>>>(iters / 10, sink, cyc, src, filled);  // warm-up
  CK(cudaDeviceSynchronize());
  std::vector<double> ms;
  for (int r = 0; r < reps(); r++) {
    CK(cudaEventRecord(a));
    k<<<sms, threads, smem>>>(iters, sink, cyc, src, filled);
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    float t;
    CK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  std::vector<long long> c(sms * NWG), fc(sms), fb(sms);
  CK(cudaMemcpy(c.data(), cyc, c.size() * sizeof(long long), cudaMemcpyDeviceToHost));
  std::sort(c.begin(), c.end());
  double macs = (double)sms * NWG * iters * 4.0 * 64 * 256 * 16;
  double tflops = 2 * macs / (ms[ms.size() / 2] * 1e-3) / 1e12;
  // multiply-adds per SM clock: an H100 / H200 SM's four tensor cores do 2,048 dense bf16 FMA a
  // clock (989 TFLOP/s = 132 SMs x 2,048 x 2 x 1.83 GHz)
  double perClk = (double)NWG * iters * 4.0 * 64 * 256 * 16 / (double)c[c.size() / 2];
  std::string fill = "-";
  if (FILL) {  // the median block's filled bytes per clock of its filling warpgroup
    CK(cudaMemcpy(fc.data(), cyc + sms * NWG, sms * sizeof(long long), cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(fb.data(), filled, sms * sizeof(long long), cudaMemcpyDeviceToHost));
    std::vector<double> r(sms);
    for (int i = 0; i < sms; i++) r[i] = (double)fb[i] / (double)fc[i];
    std::sort(r.begin(), r.end());
    fill = std::to_string(r[sms / 2]).substr(0, 5);
  }
  std::printf("| %d | %s | %.3f (%.3f-%.3f) | %.0f | %.0f | %.1f%% | %s | %d%% |\n", NWG, name, ms[ms.size() / 2],
              ms.front(), ms.back(), tflops, perClk, 100 * perClk / 2048, fill.c_str(),
              (int)(100 * tflops / (ref > 0 ? ref : tflops) + 0.5));
  return tflops;
}

int main(int argc, char** argv) {
  int iters = argc > 1 ? std::atoi(argv[1]) : 20000;
  int dev = 0, sms = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  cudaDeviceProp pr;
  CK(cudaGetDeviceProperties(&pr, dev));
  std::printf("%s, %d SMs; %d k steps of 1,048,576 multiply-adds per warpgroup; medians of %d\n",
              pr.name, sms, iters, reps());
  float* sink;
  long long* cyc;
  CK(cudaMalloc(&sink, 4096 * sizeof(float)));
  CK(cudaMalloc(&cyc, sms * 4 * sizeof(long long)));
  uint4* src;
  long long* filled;
  CK(cudaMalloc(&src, 4 << 20));
  CK(cudaMemset(src, 0x3c, 4 << 20));
  CK(cudaMalloc(&filled, sms * sizeof(long long)));
  std::printf(
      "| warpgroups issuing | mode | ms (min-max) | TFLOP/s | FMA per SM clock (median "
      "warpgroup) | of 2,048 | fill bytes per SM clock | of the first row's TFLOP/s |\n"
      "|---|---|---|---|---|---|---|---|\n");
  double ref = 0;  // the first row (two warpgroups, the cooperative tile's issue) is the reference
#define RUN(N, M, F, name) run<N, M, F>(name, sms, iters, sink, cyc, src, filled, ref)
  ref = RUN(2, 0, 0, "n256");
  RUN(1, 0, 0, "n256");
  RUN(1, 1, 0, "2xn128");
  RUN(1, 2, 0, "n256w0");
  RUN(2, 1, 0, "2xn128");
  RUN(2, 2, 0, "n256w0");
  RUN(3, 0, 0, "n256");
  RUN(2, 0, 1, "n256 +st");
  RUN(2, 0, 2, "n256 +tma");
  RUN(1, 0, 1, "n256 +st");
  RUN(1, 0, 2, "n256 +tma");
  RUN(2, 1, 2, "2xn128 +tma");
  RUN(2, 0, 0, "n256");
  return 0;
}
