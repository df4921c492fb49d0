// Standalone check and timing of the tensor-core attention (src/main/cuda/attention_fa2.cu)
// against the scalar kernels (src/main/cuda/attention.cu, the path the GPU parity tests hold to
// the CPU oracle). Build and run on a GPU host:
//   nvcc -O3 -std=c++17 -arch=sm_90a -o harness kernels/lab/attention/harness.cu && ./harness
// Prints one line per correctness case (max error relative to the reference's max magnitude)
// and a timing table: causal, 32 query heads over 8 kv heads, 16,384 tokens per batch, TFLOP/s
// with causal FLOPs counted as half and the backward as 2.5x the forward (as SDPA is counted).
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <vector>
#include <algorithm>
#include <random>
#include "../../src/main/cuda/attention.cu"
#include "../../src/main/cuda/attention_fa2.cu"
#include "bwd_pair.cu"  // v5-v7, lab only

#define CK(x)                                                                        \
  do {                                                                               \
    cudaError_t e = (x);                                                             \
    if (e != cudaSuccess) {                                                          \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e)); \
      exit(2);                                                                       \
    }                                                                                \
  } while (0)

typedef __nv_bfloat16 bf16;

struct Case {
  const char* name;
  int B, Tq, Tk, H, Hkv, hd, window;
  int docs;  // 0 none, 1 packed documents with trailing padding (-1)
};

static std::vector<bf16> rand_bf16(size_t n, std::mt19937& rng, float sd) {
  std::normal_distribution<float> nd(0.f, sd);
  std::vector<bf16> v(n);
  for (auto& x : v) x = __float2bfloat16(nd(rng));
  return v;
}

template <typename T>
static T* dev(const std::vector<T>& h) {
  T* d;
  CK(cudaMalloc(&d, h.size() * sizeof(T)));
  CK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

template <typename T>
static std::vector<T> host(const T* d, size_t n) {
  std::vector<T> h(n);
  CK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

static float tof(float x) { return x; }
static float tof(bf16 x) { return __bfloat162float(x); }

// max |a - ref| / max(max |ref|, floor) over finite reference entries; -inf entries must match
// exactly. The floor keeps a gradient that is zero in exact arithmetic (one visible key: dS = 0)
// from turning rounding noise into a large relative error; inputs are unit normals, so real
// gradients are far above it.
template <typename A>
static double relerr(const std::vector<A>& a, const std::vector<float>& ref, double floor = 1e-6) {
  double m = floor, e = 0;
  for (size_t i = 0; i < ref.size(); i++) {
    float r = ref[i], x = tof(a[i]);
    if (std::isinf(r) || std::isinf(x)) {
      if (r != x) e = INFINITY;
      continue;
    }
    if (std::isnan(x)) return NAN;
    m = std::max(m, (double)fabsf(r));
    e = std::max(e, (double)fabsf(x - r));
  }
  return e / m;
}

static AttnDims dims(int B, int Tq, int Tk, int H, int Hkv, int hd, int window) {
  AttnDims a;
  a.B = B; a.Tq = Tq; a.Tk = Tk; a.H = H; a.Hkv = Hkv; a.hd = hd; a.window = window;
  a.scale = 1.f / sqrtf((float)hd);
  return a;
}

// variant 2 (shipped): 4 warps x 32 rows; variant 1: 8 warps x 16 rows, Q in registers.
static int g_fwd_variant = 2;
static int g_bwd_variant = 1;

// Diagnostics of backward v1 at hd 128 (`./harness diag`): 11, dQ by plain stores instead of
// atomics; 12, no dQ product (both give a wrong dQ: timing only).
MT_KERNEL void __launch_bounds__(256, 1)
    attention_fa2_backward_diag_store_hd128(const bf16* dout, const bf16* q, const bf16* k,
                                            const bf16* v, const float* lse, const float* delta,
                                            const int* doc, float* dqacc, bf16* dk, bf16* dv,
                                            AttnDims a) {
  fa2::bwd<128, 8, 1, 64, 1>(dout, q, k, v, lse, delta, doc, dqacc, dk, dv, a);
}
MT_KERNEL void __launch_bounds__(256, 1)
    attention_fa2_backward_diag_nodq_hd128(const bf16* dout, const bf16* q, const bf16* k,
                                           const bf16* v, const float* lse, const float* delta,
                                           const int* doc, float* dqacc, bf16* dk, bf16* dv,
                                           AttnDims a) {
  fa2::bwd<128, 8, 1, 64, 2>(dout, q, k, v, lse, delta, doc, dqacc, dk, dv, a);
}

static void fa2_forward(const bf16* q, const bf16* k, const bf16* v, bf16* o, float* lse,
                        const int* doc, AttnDims a) {
  dim3 grid(a.B * a.H, (a.Tq + fa2::FWD_BM - 1) / fa2::FWD_BM);
  if (g_fwd_variant == 1) {
    if (a.hd == 128) {
      attention_fa2_forward_v1_hd128<<<grid, 256, fa2::fwd_smem<128, 1, 8, true>()>>>(q, k, v, o,
                                                                                    lse, doc, a);
    } else {
      attention_fa2_forward_v1_hd64<<<grid, 256, fa2::fwd_smem<64, 1, 8, true>()>>>(q, k, v, o, lse,
                                                                                  doc, a);
    }
  } else if (a.hd == 128) {
    attention_fa2_forward_hd128<<<grid, 128, fa2::fwd_smem<128, 2, 4, false>()>>>(q, k, v, o, lse,
                                                                                 doc, a);
  } else {
    attention_fa2_forward_hd64<<<grid, 128, fa2::fwd_smem<64, 2, 4, true>()>>>(q, k, v, o, lse, doc,
                                                                              a);
  }
}

static void fa2_backward(const bf16* dO, const bf16* q, const bf16* k, const bf16* v,
                         const bf16* o, const float* lse, const int* doc, float* delta,
                         float* dqacc, bf16* dq, bf16* dk, bf16* dv, AttnDims a) {
  long long rows = (long long)a.B * a.Tq * a.H, n = rows * a.hd;
  attention_fa2_delta_kernel<<<(rows * (a.hd / 8) + 255) / 256, 256>>>(dO, o, delta, dqacc, rows,
                                                                        a.hd);
  // variant 1: 8 warps (128 keys), one block per SM; 2: 4 warps (64 keys), two blocks per SM;
  // 3 (hd 64 only): 4 warps, three blocks per SM; 4 (hd 64 only): 4 warps of 32 keys, 32-query
  // tiles, two blocks per SM; 5-7 (hd 128 only): warp pairs (one warp S/P/dV, one dP/dS/dK) of 32
  // keys: 5, 4 pairs over 64-query tiles; 6, 4 pairs over 32-query tiles; 7, 2 pairs over
  // 64-query tiles, two blocks per SM.
  const int bv = g_bwd_variant;
  const int bn = bv == 1 || bv == 4 || bv == 5 || bv == 6 || bv == 8 || bv >= 11 ? 128 : 64;
  dim3 grid(a.B * a.Hkv, (a.Tk + bn - 1) / bn);
  if (bv == 8) {
    attention_fa2_backward_v8_hd128<<<grid, 256, fa2::bwd_smem<128, 128, 64>() + 128 * 64 * 2>>>(
        dO, q, k, v, lse, delta, doc, dqacc, dk, dv, a);
  } else if (bv == 11) {
    attention_fa2_backward_diag_store_hd128<<<grid, 256, fa2::bwd_smem<128, 128, 64>()>>>(
        dO, q, k, v, lse, delta, doc, dqacc, dk, dv, a);
  } else if (bv == 12) {
    attention_fa2_backward_diag_nodq_hd128<<<grid, 256, fa2::bwd_smem<128, 128, 64>()>>>(
        dO, q, k, v, lse, delta, doc, dqacc, dk, dv, a);
  } else if (bv == 5) {
    attention_fa2_backward_v5_hd128<<<grid, 256, fa2::bwd_pair_smem<128, 4, 64>()>>>(
        dO, q, k, v, lse, delta, doc, dqacc, dk, dv, a);
  } else if (bv == 6) {
    attention_fa2_backward_v6_hd128<<<grid, 256, fa2::bwd_pair_smem<128, 4, 32>()>>>(
        dO, q, k, v, lse, delta, doc, dqacc, dk, dv, a);
  } else if (bv == 7) {
    attention_fa2_backward_v7_hd128<<<grid, 128, fa2::bwd_pair_smem<128, 2, 64>()>>>(
        dO, q, k, v, lse, delta, doc, dqacc, dk, dv, a);
  } else if (g_bwd_variant == 1 && a.hd == 128) {
    attention_fa2_backward_hd128<<<grid, 256, fa2::bwd_smem<128, 128, 64>()>>>(dO, q, k, v, lse, delta,
                                                                           doc, dqacc, dk, dv, a);
  } else if (g_bwd_variant == 1) {
    attention_fa2_backward_hd64<<<grid, 256, fa2::bwd_smem<64, 128, 64>()>>>(dO, q, k, v, lse, delta,
                                                                         doc, dqacc, dk, dv, a);
  } else if (a.hd == 128) {
    attention_fa2_backward_v2_hd128<<<grid, 128, fa2::bwd_smem<128, 64, 64>()>>>(dO, q, k, v, lse,
                                                                             delta, doc, dqacc, dk,
                                                                             dv, a);
  } else if (g_bwd_variant == 4) {
    attention_fa2_backward_v4_hd64<<<grid, 128, fa2::bwd_smem<64, 128, 32>()>>>(
        dO, q, k, v, lse, delta, doc, dqacc, dk, dv, a);
  } else if (g_bwd_variant == 2) {
    attention_fa2_backward_v2_hd64<<<grid, 128, fa2::bwd_smem<64, 64, 64>()>>>(dO, q, k, v, lse, delta,
                                                                           doc, dqacc, dk, dv, a);
  } else {
    attention_fa2_backward_v3_hd64<<<grid, 128, fa2::bwd_smem<64, 64, 64>()>>>(dO, q, k, v, lse, delta,
                                                                           doc, dqacc, dk, dv, a);
  }
  attention_fa2_dq_convert_kernel<<<(int)std::min<long long>((n / 4 + 255) / 256, 132 * 16), 256>>>(
      dqacc, dq, n, a.scale);
}

// Backward variants 3 and 4 are head dim 64 only, 5-7 head dim 128 only.
static bool bwd_applies(int bv, int hd) {
  return bv <= 2 || (bv <= 4 ? hd == 64 : hd == 128);  // 5-8: hd 128
}

// Returns true when every tensor is within tolerance.
static bool check(const Case& c, std::mt19937& rng) {
  AttnDims a = dims(c.B, c.Tq, c.Tk, c.H, c.Hkv, c.hd, c.window);
  size_t nq = (size_t)c.B * c.Tq * c.H * c.hd, nk = (size_t)c.B * c.Tk * c.Hkv * c.hd;
  size_t rows = (size_t)c.B * c.Tq * c.H;
  auto hq = rand_bf16(nq, rng, 1.f), hk = rand_bf16(nk, rng, 1.f), hv = rand_bf16(nk, rng, 1.f);
  auto hg = rand_bf16(nq, rng, 1.f);
  std::vector<int> hdoc;
  int* ddoc = nullptr;
  if (c.docs) {
    hdoc.resize((size_t)c.B * c.Tk);
    for (int b = 0; b < c.B; b++) {
      int pad = c.Tk / 7 + b, id = 0, left = 1 + (int)(rng() % (c.Tk / 3 + 1));
      for (int j = 0; j < c.Tk; j++) {
        if (j >= c.Tk - pad) { hdoc[(size_t)b * c.Tk + j] = -1; continue; }
        if (left-- == 0) { id++; left = (int)(rng() % (c.Tk / 2 + 1)); }
        hdoc[(size_t)b * c.Tk + j] = id;
      }
    }
    ddoc = dev(hdoc);
  }
  bf16 *q = dev(hq), *k = dev(hk), *v = dev(hv), *g = dev(hg);
  float *ro, *rlse, *rdq, *rdk, *rdv, *delta, *dqacc;
  CK(cudaMalloc(&ro, nq * 4)); CK(cudaMalloc(&rlse, rows * 4)); CK(cudaMalloc(&rdq, nq * 4));
  CK(cudaMalloc(&rdk, nk * 4)); CK(cudaMalloc(&rdv, nk * 4)); CK(cudaMalloc(&delta, rows * 4));
  CK(cudaMalloc(&dqacc, nq * 4));
  bf16 *o, *dq, *dk, *dv;
  float* lse;
  CK(cudaMalloc(&o, nq * 2)); CK(cudaMalloc(&lse, rows * 4)); CK(cudaMalloc(&dq, nq * 2));
  CK(cudaMalloc(&dk, nk * 2)); CK(cudaMalloc(&dv, nk * 2));
  // Reference: the scalar kernels, bf16 inputs, float32 outputs, the reference's own output/lse.
  long long krows = (long long)c.B * c.Tk * c.Hkv;
  attention_forward_kernel<<<(rows * 32 + 255) / 256, 256>>>(q, DT_BF16, k, DT_BF16, v, DT_BF16,
                                                             ro, DT_F32, rlse, ddoc, a);
  attention_delta_kernel<<<(rows * 32 + 255) / 256, 256>>>(g, DT_BF16, ro, DT_F32, delta,
                                                           (long long)rows, c.hd);
  attention_dq_kernel<<<(rows * 32 + 255) / 256, 256>>>(g, DT_BF16, q, DT_BF16, k, DT_BF16, v,
                                                        DT_BF16, rlse, delta, ddoc, rdq, DT_F32, a);
  attention_dkdv_kernel<<<(krows * 32 + 255) / 256, 256>>>(g, DT_BF16, q, DT_BF16, k, DT_BF16, v,
                                                           DT_BF16, rlse, delta, ddoc, rdk, DT_F32,
                                                           rdv, DT_F32, a);
  fa2_forward(q, k, v, o, lse, ddoc, a);
  fa2_backward(g, q, k, v, o, lse, ddoc, delta, dqacc, dq, dk, dv, a);
  CK(cudaDeviceSynchronize());
  double eo = relerr(host(o, nq), host(ro, nq));
  double el = relerr(host(lse, rows), host(rlse, rows));
  double eq = relerr(host(dq, nq), host(rdq, nq), 0.05);
  double ek = relerr(host(dk, nk), host(rdk, nk), 0.05);
  double ev = relerr(host(dv, nk), host(rdv, nk));
  // bf16 operands (P, dS rounded to bf16 before the products): a few 1e-3 relative is expected.
  const double tol = 2e-2;
  bool ok = eo < tol && el < tol && eq < tol && ek < tol && ev < tol;
  printf("f%d b%d %-34s out %.1e lse %.1e dq %.1e dk %.1e dv %.1e  %s\n", g_fwd_variant,
         g_bwd_variant, c.name, eo, el, eq, ek, ev, ok ? "ok" : "FAIL");
  cudaFree(q); cudaFree(k); cudaFree(v); cudaFree(g); cudaFree(ro); cudaFree(rlse); cudaFree(rdq);
  cudaFree(rdk); cudaFree(rdv); cudaFree(delta); cudaFree(dqacc); cudaFree(o); cudaFree(lse);
  cudaFree(dq); cudaFree(dk); cudaFree(dv);
  if (ddoc) cudaFree(ddoc);
  return ok;
}

static float median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Inputs for every timed shape of one head dim: the token count (B * T) is the same at every T.
struct TimingBufs {
  bf16 *q, *k, *v, *g, *o, *dq, *dk, *dv;
  float *lse, *delta, *dqacc;
};

static TimingBufs timing_bufs(int hd) {
  const size_t tokens = 16384, H = 32, Hkv = 8;
  std::mt19937 rng(7);
  size_t nq = tokens * H * hd, nk = tokens * Hkv * hd, rows = tokens * H;
  TimingBufs t;
  t.q = dev(rand_bf16(nq, rng, 1.f)); t.k = dev(rand_bf16(nk, rng, 1.f));
  t.v = dev(rand_bf16(nk, rng, 1.f)); t.g = dev(rand_bf16(nq, rng, 1.f));
  CK(cudaMalloc(&t.o, nq * 2)); CK(cudaMalloc(&t.dq, nq * 2)); CK(cudaMalloc(&t.dk, nk * 2));
  CK(cudaMalloc(&t.dv, nk * 2)); CK(cudaMalloc(&t.lse, rows * 4));
  CK(cudaMalloc(&t.delta, rows * 4)); CK(cudaMalloc(&t.dqacc, nq * 4));
  return t;
}

static void free_bufs(TimingBufs& t) {
  cudaFree(t.q); cudaFree(t.k); cudaFree(t.v); cudaFree(t.g); cudaFree(t.o); cudaFree(t.dq);
  cudaFree(t.dk); cudaFree(t.dv); cudaFree(t.lse); cudaFree(t.delta); cudaFree(t.dqacc);
}

static void timing(const TimingBufs& t, int T, int hd, int reps) {
  const int tokens = 16384, H = 32, Hkv = 8, B = tokens / T;
  AttnDims a = dims(B, T, T, H, Hkv, hd, 0);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0); cudaEventCreate(&e1);
  std::vector<float> tf, tb;
  for (int r = 0; r < reps + 3; r++) {
    cudaEventRecord(e0);
    fa2_forward(t.q, t.k, t.v, t.o, t.lse, nullptr, a);
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float ms;
    cudaEventElapsedTime(&ms, e0, e1);
    if (r >= 3) tf.push_back(ms);
    cudaEventRecord(e0);
    fa2_backward(t.g, t.q, t.k, t.v, t.o, t.lse, nullptr, t.delta, t.dqacc, t.dq, t.dk, t.dv, a);
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    cudaEventElapsedTime(&ms, e0, e1);
    if (r >= 3) tb.push_back(ms);
  }
  CK(cudaGetLastError());
  cudaEventDestroy(e0); cudaEventDestroy(e1);
  double flop = 4.0 * B * H * (double)T * T * hd / 2;  // causal: half the square
  float mf = median(tf), mb = median(tb);
  printf("| f%d b%d | %5d | %3d | %2d | %8.3f | %8.3f | %6.1f | %6.1f |\n", g_fwd_variant,
         g_bwd_variant, T, hd, B, mf, mb, flop / mf / 1e9, 2.5 * flop / mb / 1e9);
  fflush(stdout);
}

int main(int argc, char** argv) {
  CK(cudaFuncSetAttribute(attention_fa2_forward_hd128, cudaFuncAttributeMaxDynamicSharedMemorySize,
                          fa2::fwd_smem<128, 2, 4, false>()));
  CK(cudaFuncSetAttribute(attention_fa2_forward_hd64, cudaFuncAttributeMaxDynamicSharedMemorySize,
                          fa2::fwd_smem<64, 2, 4, true>()));
  CK(cudaFuncSetAttribute(attention_fa2_forward_v1_hd128,
                          cudaFuncAttributeMaxDynamicSharedMemorySize,
                          fa2::fwd_smem<128, 1, 8, true>()));
  CK(cudaFuncSetAttribute(attention_fa2_forward_v1_hd64,
                          cudaFuncAttributeMaxDynamicSharedMemorySize,
                          fa2::fwd_smem<64, 1, 8, true>()));
  CK(cudaFuncSetAttribute(attention_fa2_backward_hd128,
                          cudaFuncAttributeMaxDynamicSharedMemorySize, fa2::bwd_smem<128, 128, 64>()));
  CK(cudaFuncSetAttribute(attention_fa2_backward_hd64,
                          cudaFuncAttributeMaxDynamicSharedMemorySize, fa2::bwd_smem<64, 128, 64>()));
  CK(cudaFuncSetAttribute(attention_fa2_backward_v2_hd128,
                          cudaFuncAttributeMaxDynamicSharedMemorySize, fa2::bwd_smem<128, 64, 64>()));
  CK(cudaFuncSetAttribute(attention_fa2_backward_v2_hd64,
                          cudaFuncAttributeMaxDynamicSharedMemorySize, fa2::bwd_smem<64, 64, 64>()));
  CK(cudaFuncSetAttribute(attention_fa2_backward_v4_hd64,
                          cudaFuncAttributeMaxDynamicSharedMemorySize,
                          fa2::bwd_smem<64, 128, 32>()));
  CK(cudaFuncSetAttribute(attention_fa2_backward_v3_hd64,
                          cudaFuncAttributeMaxDynamicSharedMemorySize, fa2::bwd_smem<64, 64, 64>()));
  CK(cudaFuncSetAttribute(attention_fa2_backward_v5_hd128,
                          cudaFuncAttributeMaxDynamicSharedMemorySize,
                          fa2::bwd_pair_smem<128, 4, 64>()));
  CK(cudaFuncSetAttribute(attention_fa2_backward_v6_hd128,
                          cudaFuncAttributeMaxDynamicSharedMemorySize,
                          fa2::bwd_pair_smem<128, 4, 32>()));
  CK(cudaFuncSetAttribute(attention_fa2_backward_v7_hd128,
                          cudaFuncAttributeMaxDynamicSharedMemorySize,
                          fa2::bwd_pair_smem<128, 2, 64>()));
  CK(cudaFuncSetAttribute(attention_fa2_backward_v8_hd128,
                          cudaFuncAttributeMaxDynamicSharedMemorySize,
                          fa2::bwd_smem<128, 128, 64>() + 128 * 64 * 2));
  CK(cudaFuncSetAttribute(attention_fa2_backward_diag_store_hd128,
                          cudaFuncAttributeMaxDynamicSharedMemorySize, fa2::bwd_smem<128, 128, 64>()));
  CK(cudaFuncSetAttribute(attention_fa2_backward_diag_nodq_hd128,
                          cudaFuncAttributeMaxDynamicSharedMemorySize, fa2::bwd_smem<128, 128, 64>()));
  if (argc > 2 && (std::string(argv[1]) == "diag" || std::string(argv[1]) == "prof")) {
    // ./harness diag T...: hd 128 backward v1, its diagnostics 11/12 and v5, timed.
    // ./harness prof HD T V...: one forward and one backward per listed variant (for ncu).
    bool prof = std::string(argv[1]) == "prof";
    int hd = prof ? atoi(argv[2]) : 128;
    std::vector<int> rest;
    for (int i = prof ? 3 : 2; i < argc; i++) rest.push_back(atoi(argv[i]));
    TimingBufs t = timing_bufs(hd);
    if (prof) {
      int T = rest[0], B = 16384 / T;
      AttnDims a = dims(B, T, T, 32, 8, hd, 0);
      fa2_forward(t.q, t.k, t.v, t.o, t.lse, nullptr, a);
      for (size_t i = 1; i < rest.size(); i++) {
        g_bwd_variant = rest[i];
        fa2_backward(t.g, t.q, t.k, t.v, t.o, t.lse, nullptr, t.delta, t.dqacc, t.dq, t.dk, t.dv, a);
      }
      CK(cudaDeviceSynchronize());
    } else {
      printf("| variants | T | hd | B | fwd ms | bwd ms | fwd TFLOP/s | bwd TFLOP/s |\n");
      for (int bv : {1, 11, 12, 5, 8}) {
        g_bwd_variant = bv;
        for (int T : rest) timing(t, T, hd, 20);
      }
    }
    free_bufs(t);
    return 0;
  }
  bool timeOnly = argc > 1 && std::string(argv[1]) == "time";
  bool checkOnly = argc > 1 && std::string(argv[1]) == "check";
  int fails = 0;
  if (argc > 1 && std::string(argv[1]) == "race") {
    // small cases for compute-sanitizer (racecheck, memcheck): every backward variant
    std::mt19937 rng(99);
    const Case cases[] = {{"causal hd128", 1, 150, 150, 2, 1, 128, 0, 0},
                          {"docs+padding+window hd64", 1, 140, 140, 2, 1, 64, 50, 1},
                          {"docs+padding+window hd128", 1, 140, 140, 2, 1, 128, 50, 1},
                          {"Tq<Tk hd128", 1, 40, 150, 2, 1, 128, 0, 0}};
    // ./harness race [variant...]: every backward variant unless some are named
    std::vector<int> variants;
    for (int i = 2; i < argc; i++) variants.push_back(atoi(argv[i]));
    if (variants.empty()) variants = {1, 2, 3, 4, 5, 6, 7, 8};
    for (int bv : variants) {
      g_bwd_variant = bv;
      for (const Case& c : cases) {
        if (!bwd_applies(bv, c.hd)) continue;
        fails += check(c, rng) ? 0 : 1;
      }
    }
    printf("race cases: %d failed\n", fails);
    return fails == 0 ? 0 : 1;
  }
  if (!timeOnly) {
    std::mt19937 rng(1234);
    const Case cases[] = {
        {"causal hd128", 2, 300, 300, 4, 4, 128, 0, 0},
        {"causal hd64", 2, 300, 300, 4, 4, 64, 0, 0},
        {"gqa 8/2 hd128", 1, 517, 517, 8, 2, 128, 0, 0},
        {"gqa 32/8 hd64 T=1024", 1, 1024, 1024, 32, 8, 64, 0, 0},
        {"window 100 hd128", 2, 400, 400, 4, 2, 128, 100, 0},
        {"window 64 hd64", 1, 700, 700, 4, 1, 64, 64, 0},
        {"docs+padding hd128", 2, 450, 450, 4, 2, 128, 0, 1},
        {"docs+padding+window hd64", 2, 333, 333, 6, 3, 64, 50, 1},
        {"Tq<Tk (kv cache) hd128", 2, 37, 300, 4, 2, 128, 0, 0},
        {"Tq<Tk window docs hd64", 1, 70, 260, 4, 4, 64, 90, 1},
        {"one token hd128", 1, 1, 1, 2, 1, 128, 0, 0},
        {"decode Tq=1 hd64", 3, 1, 129, 4, 2, 64, 0, 0},
    };
    // forward v2 with each backward, then forward v1 (with backward v1)
    const int combos[][2] = {{2, 1}, {2, 2}, {2, 3}, {2, 4}, {2, 5}, {2, 6}, {2, 7}, {2, 8}, {1, 1}};
    for (const auto& fb : combos) {
      g_fwd_variant = fb[0];
      g_bwd_variant = fb[1];
      for (const Case& c : cases) {
        if (!bwd_applies(g_bwd_variant, c.hd)) continue;
        fails += check(c, rng) ? 0 : 1;
      }
    }
    g_fwd_variant = 2;
    g_bwd_variant = 1;
    printf("correctness: %d case(s) failed\n", fails);
  }
  if (!checkOnly) {
    // ./harness time [T...]: the default lengths are 2k, 4k, 8k
    std::vector<int> lengths;
    for (int i = 2; i < argc; i++) lengths.push_back(atoi(argv[i]));
    if (lengths.empty()) lengths = {2048, 4096, 8192};
    printf("\n| variants | T | hd | B | fwd ms | bwd ms | fwd TFLOP/s | bwd TFLOP/s |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    g_fwd_variant = 2;
    for (int hd : {128, 64}) {
      TimingBufs t = timing_bufs(hd);
      for (int bv : {1, 2, 3, 4, 5, 6, 7, 8}) {
        if (!bwd_applies(bv, hd) || bv == 2 || bv == 3) continue;
        g_bwd_variant = bv;
        for (int T : lengths) timing(t, T, hd, 20);
      }
      free_bufs(t);
    }
  }
  return fails == 0 ? 0 : 1;
}
