// cuDNN fused attention through the backend descriptor API (issue 9, item 1): the graph moetune
// will build from Java through FFM, tried here in C first so a failed build says which descriptor
// cuDNN refused (cudnnGetLastErrorString) before any Java is written.
//
// Causal (optionally sliding-window) GQA attention on moetune's layout: Q/O (B*T, Hq, hd),
// K/V (B*T, Hk, hd), bf16, scores scaled, the log-sum-exp (natural log, of the scaled scores)
// saved as float (B*T, Hq) like moetune's kernels. The forward graph is the composite SDPA pattern cuDNN's runtime fusion
// engine recognises (matmul, scale, index masks, softmax with stats, matmul); the backward is the
// documented flash backward pattern (dO.O row sums, recomputed probabilities from the stats, dV,
// dP, dS, dK, dQ through a float accumulator in workspace, GQA by a head reduction).
//
// Checks both against a float32 CPU reference on small shapes, then times the issue's shapes
// (16,384 tokens, 32/8 heads, hd 128 and 64, T 2048 and 4096) with CUDA events; TFLOP/s counts
// causal FLOPs as half and the backward as 2.5x the forward, as tools/bench_sdpa.py does.
//
// Build (headers only: cuDNN is dlopen'ed at run time, so nothing links against it):
//   pip download --no-deps nvidia-cudnn-cu13 -d /tmp/cudnn && unzip the wheel's nvidia/cudnn/include
//   nvcc -O2 -std=c++17 -I$CUDNN_INCLUDE -o sdpa_probe kernels/lab/cudnn/sdpa_probe.cu -ldl
// Run: ./sdpa_probe [path/to/libcudnn.so.9]   (default: found next to PyTorch, see run-probe.sh)
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cudnn_graph.h>
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#define DECL(name) static decltype(&::name) p_##name = nullptr
DECL(cudnnGetVersion);
DECL(cudnnCreate);
DECL(cudnnSetStream);
DECL(cudnnGetErrorString);
DECL(cudnnGetLastErrorString);
DECL(cudnnBackendCreateDescriptor);
DECL(cudnnBackendDestroyDescriptor);
DECL(cudnnBackendSetAttribute);
DECL(cudnnBackendGetAttribute);
DECL(cudnnBackendFinalize);
DECL(cudnnBackendExecute);

static void fail(const char* what, cudnnStatus_t st) {
  char msg[4096] = {0};
  if (p_cudnnGetLastErrorString) p_cudnnGetLastErrorString(msg, sizeof msg);
  fprintf(stderr, "cuDNN: %s failed: %s (%d) %s\n", what, p_cudnnGetErrorString(st), (int)st, msg);
}

struct Failed {
  std::string what;
};

#define CK(call, what)                      \
  do {                                      \
    cudnnStatus_t st_ = (call);             \
    if (st_ != CUDNN_STATUS_SUCCESS) {      \
      fail(what, st_);                      \
      throw Failed{what};                   \
    }                                       \
  } while (0)

#define CUDA(call)                                                                   \
  do {                                                                               \
    cudaError_t e_ = (call);                                                         \
    if (e_ != cudaSuccess) {                                                         \
      fprintf(stderr, "CUDA %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); \
      exit(2);                                                                       \
    }                                                                                \
  } while (0)

using Desc = cudnnBackendDescriptor_t;

// Every descriptor of one graph, destroyed with it.
struct Graph {
  std::vector<Desc> owned;
  std::vector<Desc> ops;
  int64_t nextVirtual = 1000;

  Desc make(cudnnBackendDescriptorType_t t) {
    Desc d;
    CK(p_cudnnBackendCreateDescriptor(t, &d), "create descriptor");
    owned.push_back(d);
    return d;
  }
  void set(Desc d, cudnnBackendAttributeName_t n, cudnnBackendAttributeType_t t, int64_t c, const void* v,
           const char* what) {
    CK(p_cudnnBackendSetAttribute(d, n, t, c, v), what);
  }
  ~Graph() {
    for (auto it = owned.rbegin(); it != owned.rend(); ++it) p_cudnnBackendDestroyDescriptor(*it);
  }

  Desc tensor(int64_t uid, cudnnDataType_t dt, std::vector<int64_t> dims, std::vector<int64_t> strides,
              bool isVirtual = false, bool byValue = false) {
    Desc d = make(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    int64_t align = 16;
    set(d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt, "tensor data type");
    set(d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, (int64_t)dims.size(), dims.data(), "tensor dims");
    set(d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, (int64_t)strides.size(), strides.data(), "tensor strides");
    set(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, "tensor uid");
    set(d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align, "tensor alignment");
    if (isVirtual) {
      bool v = true;
      set(d, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &v, "tensor virtual");
    }
    if (byValue) {
      bool v = true;
      set(d, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &v, "tensor by value");
    }
    CK(p_cudnnBackendFinalize(d), ("finalize tensor " + std::to_string(uid)).c_str());
    return d;
  }
  Desc virt(cudnnDataType_t dt, std::vector<int64_t> dims, std::vector<int64_t> strides) {
    return tensor(nextVirtual++, dt, dims, strides, true, false);
  }
  Desc scalar(int64_t uid) { return tensor(uid, CUDNN_DATA_FLOAT, {1, 1, 1, 1}, {1, 1, 1, 1}, false, true); }

  void pointwise(cudnnPointwiseMode_t mode, Desc x, Desc b, Desc t, Desc y,
                 cudnnDataType_t prec = CUDNN_DATA_FLOAT, int64_t axis = -1) {
    Desc pw = make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    set(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, "pointwise mode");
    set(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec, "pointwise precision");
    if (mode == CUDNN_POINTWISE_GEN_INDEX) set(pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis, "axis");
    CK(p_cudnnBackendFinalize(pw), "finalize pointwise");
    Desc op = make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw, "pw desc");
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x, "pw x");
    if (b) set(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b, "pw b");
    if (t) set(op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &t, "pw t");
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y, "pw y");
    float one = 1.0f;
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, 1, &one, "pw alpha1");
    if (b) set(op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1, &one, "pw alpha2");
    CK(p_cudnnBackendFinalize(op), ("finalize pointwise op mode " + std::to_string((int)mode)).c_str());
    ops.push_back(op);
  }
  void reduction(cudnnReduceTensorOp_t mode, Desc x, Desc y) {
    Desc r = make(CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
    cudnnDataType_t f = CUDNN_DATA_FLOAT;
    set(r, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f, "reduction type");
    set(r, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &mode, "reduction mode");
    CK(p_cudnnBackendFinalize(r), "finalize reduction");
    Desc op = make(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
    set(op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &r, "red desc");
    set(op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x, "red x");
    set(op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y, "red y");
    CK(p_cudnnBackendFinalize(op), "finalize reduction op");
    ops.push_back(op);
  }
  void matmul(Desc a, Desc b, Desc c) {
    Desc m = make(CUDNN_BACKEND_MATMUL_DESCRIPTOR);
    cudnnDataType_t f = CUDNN_DATA_FLOAT;
    set(m, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f, "matmul type");
    CK(p_cudnnBackendFinalize(m), "finalize matmul");
    Desc op = make(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
    set(op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &a, "mm a");
    set(op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b, "mm b");
    set(op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &c, "mm c");
    set(op, CUDNN_ATTR_OPERATION_MATMUL_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &m, "mm desc");
    CK(p_cudnnBackendFinalize(op), "finalize matmul op");
    ops.push_back(op);
  }
  void reshape(Desc x, Desc y) {
    Desc op = make(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR);
    set(op, CUDNN_ATTR_OPERATION_RESHAPE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x, "reshape x");
    set(op, CUDNN_ATTR_OPERATION_RESHAPE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y, "reshape y");
    CK(p_cudnnBackendFinalize(op), "finalize reshape op");
    ops.push_back(op);
  }
};

// An executable plan for a finished graph: the first engine configuration of heuristics mode A
// that finalizes, else of the fallback list.
struct Plan {
  Graph g;
  Desc plan = nullptr;
  int64_t workspace = 0;
  std::string engine;
};

static bool buildPlan(Plan& p, cudnnHandle_t h, const char* name) {
  Graph& g = p.g;
  Desc og = g.make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  g.set(og, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h, "graph handle");
  g.set(og, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, (int64_t)g.ops.size(), g.ops.data(),
        "graph ops");
  CK(p_cudnnBackendFinalize(og), "finalize operation graph");
  cudnnBackendHeurMode_t modes[] = {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK};
  for (cudnnBackendHeurMode_t mode : modes) {
    Desc heur = g.make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    g.set(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &og, "heur graph");
    g.set(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, "heur mode");
    cudnnStatus_t st = p_cudnnBackendFinalize(heur);
    if (st != CUDNN_STATUS_SUCCESS) {
      fail("finalize heuristics", st);
      continue;
    }
    int64_t count = 0;
    CK(p_cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                  nullptr),
       "heuristics count");
    printf("  %s: heuristics mode %d offers %lld engine configs\n", name, (int)mode, (long long)count);
    if (count == 0) continue;
    std::vector<Desc> cfgs(count);
    for (auto& c : cfgs) c = g.make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    int64_t got = 0;
    CK(p_cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got,
                                  cfgs.data()),
       "heuristics results");
    if (got == 0) printf("  %s: heuristics returned no configs\n", name);
    for (int64_t i = 0; i < got; i++) {
      Desc plan;
      if (p_cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan) != CUDNN_STATUS_SUCCESS) {
        printf("  %s: cannot create plan descriptor\n", name);
        continue;
      }
      p_cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
      p_cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                 &cfgs[i]);
      cudnnStatus_t fst = p_cudnnBackendFinalize(plan);
      if (fst != CUDNN_STATUS_SUCCESS) {
        fflush(stdout);
        fail("finalize plan", fst);
        p_cudnnBackendDestroyDescriptor(plan);
        continue;
      }
      g.owned.push_back(plan);
      int64_t ws = 0, n = 0;
      p_cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n, &ws);
      char json[256] = {0};
      p_cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION, CUDNN_TYPE_CHAR,
                                 sizeof json - 1, &n, json);
      p.plan = plan;
      p.workspace = ws;
      p.engine = std::string(json).substr(0, 120);
      printf("  %s: plan from config %lld of mode %d, workspace %lld bytes, %s\n", name, (long long)i, (int)mode,
             (long long)ws, p.engine.c_str());
      return true;
    }
  }
  return false;
}

struct Shape {
  int64_t b, hq, hk, s, d, window;  // window <= 0: causal only
};

// uids of the graphs' real tensors
enum : int64_t { Q = 1, KT = 2, V = 3, O = 4, STATS = 5, SCALE = 6, NEGINF = 7, DO = 8, DQ = 9, DK = 10, DV = 11,
                 ONE = 12, SOFTSUM = 13, DQACC = 14, VT = 15, WINDOW = 16 };

static std::vector<int64_t> bshd(const Shape& s, int64_t h) { return {s.s * h * s.d, s.d, h * s.d, 1}; }
static std::vector<int64_t> bhsd(const Shape& s, int64_t h) { return {h * s.s * s.d, s.s * s.d, s.d, 1}; }

// The causal (+ window) mask on scores S (float, b hq s s): returns the masked virtual tensor.
static Desc mask(Graph& g, const Shape& s, Desc S, Desc negInf, Desc window) {
  std::vector<int64_t> sd = {s.b, s.hq, s.s, s.s}, ss = {s.hq * s.s * s.s, s.s * s.s, s.s, 1};
  Desc row = g.virt(CUDNN_DATA_INT32, sd, ss);
  g.pointwise(CUDNN_POINTWISE_GEN_INDEX, S, nullptr, nullptr, row, CUDNN_DATA_FLOAT, 2);
  Desc col = g.virt(CUDNN_DATA_INT32, sd, ss);
  g.pointwise(CUDNN_POINTWISE_GEN_INDEX, S, nullptr, nullptr, col, CUDNN_DATA_FLOAT, 3);
  Desc keep = g.virt(CUDNN_DATA_BOOLEAN, sd, ss);
  g.pointwise(CUDNN_POINTWISE_CMP_GE, row, col, nullptr, keep, CUDNN_DATA_BOOLEAN);
  Desc out = g.virt(CUDNN_DATA_FLOAT, sd, ss);
  g.pointwise(CUDNN_POINTWISE_BINARY_SELECT, S, negInf, keep, out);
  if (s.window > 0) {  // keep col + window > row (Mistral's sliding window), fresh indices
    Desc row2 = g.virt(CUDNN_DATA_INT32, sd, ss);
    g.pointwise(CUDNN_POINTWISE_GEN_INDEX, out, nullptr, nullptr, row2, CUDNN_DATA_FLOAT, 2);
    Desc col2 = g.virt(CUDNN_DATA_INT32, sd, ss);
    g.pointwise(CUDNN_POINTWISE_GEN_INDEX, out, nullptr, nullptr, col2, CUDNN_DATA_FLOAT, 3);
    Desc colw = g.virt(CUDNN_DATA_FLOAT, sd, ss);
    g.pointwise(CUDNN_POINTWISE_ADD, col2, window, nullptr, colw);
    Desc inWin = g.virt(CUDNN_DATA_BOOLEAN, sd, ss);
    g.pointwise(CUDNN_POINTWISE_CMP_GT, colw, row2, nullptr, inWin, CUDNN_DATA_BOOLEAN);
    Desc out2 = g.virt(CUDNN_DATA_FLOAT, sd, ss);
    g.pointwise(CUDNN_POINTWISE_BINARY_SELECT, out, negInf, inWin, out2);
    out = out2;
  }
  return out;
}

static void buildForward(Graph& g, const Shape& s) {
  std::vector<int64_t> sd = {s.b, s.hq, s.s, s.s}, ss = {s.hq * s.s * s.s, s.s * s.s, s.s, 1};
  std::vector<int64_t> rd = {s.b, s.hq, s.s, 1}, rs = {s.hq * s.s, s.s, 1, 1};
  Desc q = g.tensor(Q, CUDNN_DATA_BFLOAT16, {s.b, s.hq, s.s, s.d}, bshd(s, s.hq));
  Desc kt = g.tensor(KT, CUDNN_DATA_BFLOAT16, {s.b, s.hk, s.d, s.s}, {s.s * s.hk * s.d, s.d, 1, s.hk * s.d});
  Desc v = g.tensor(V, CUDNN_DATA_BFLOAT16, {s.b, s.hk, s.s, s.d}, bshd(s, s.hk));
  Desc o = g.tensor(O, CUDNN_DATA_BFLOAT16, {s.b, s.hq, s.s, s.d}, bshd(s, s.hq));
  Desc stats = g.tensor(STATS, CUDNN_DATA_FLOAT, rd, {s.s * s.hq, 1, s.hq, 1});  // lse (B*T, Hq)
  Desc scale = g.scalar(SCALE), negInf = g.scalar(NEGINF);
  Desc window = s.window > 0 ? g.scalar(WINDOW) : nullptr;
  Desc S = g.virt(CUDNN_DATA_FLOAT, sd, ss);
  g.matmul(q, kt, S);
  Desc S1 = g.virt(CUDNN_DATA_FLOAT, sd, ss);
  g.pointwise(CUDNN_POINTWISE_MUL, S, scale, nullptr, S1);
  Desc S2 = mask(g, s, S1, negInf, window);
  Desc M = g.virt(CUDNN_DATA_FLOAT, rd, rs);
  g.reduction(CUDNN_REDUCE_TENSOR_MAX, S2, M);
  Desc S3 = g.virt(CUDNN_DATA_FLOAT, sd, ss);
  g.pointwise(CUDNN_POINTWISE_SUB, S2, M, nullptr, S3);
  Desc E = g.virt(CUDNN_DATA_FLOAT, sd, ss);
  g.pointwise(CUDNN_POINTWISE_EXP, S3, nullptr, nullptr, E);
  Desc Z = g.virt(CUDNN_DATA_FLOAT, rd, rs);
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, E, Z);
  Desc L = g.virt(CUDNN_DATA_FLOAT, rd, rs);
  g.pointwise(CUDNN_POINTWISE_LOG, Z, nullptr, nullptr, L);
  g.pointwise(CUDNN_POINTWISE_ADD, M, L, nullptr, stats);
  Desc P = g.virt(CUDNN_DATA_BFLOAT16, sd, ss);
  g.pointwise(CUDNN_POINTWISE_DIV, E, Z, nullptr, P);
  g.matmul(P, v, o);
}

static void buildBackward(Graph& g, const Shape& s) {
  std::vector<int64_t> sd = {s.b, s.hq, s.s, s.s}, ss = {s.hq * s.s * s.s, s.s * s.s, s.s, 1};
  std::vector<int64_t> sts = {s.hq * s.s * s.s, s.s * s.s, 1, s.s};  // the transpose's strides
  std::vector<int64_t> rd = {s.b, s.hq, s.s, 1}, rs = {s.hq * s.s, s.s, 1, 1};
  std::vector<int64_t> ktd = {s.b, s.hk, s.d, s.s}, kts = {s.s * s.hk * s.d, s.d, 1, s.hk * s.d};
  Desc q = g.tensor(Q, CUDNN_DATA_BFLOAT16, {s.b, s.hq, s.s, s.d}, bshd(s, s.hq));
  Desc kt = g.tensor(KT, CUDNN_DATA_BFLOAT16, ktd, kts);
  Desc vt = g.tensor(VT, CUDNN_DATA_BFLOAT16, ktd, kts);
  Desc o = g.tensor(O, CUDNN_DATA_BFLOAT16, {s.b, s.hq, s.s, s.d}, bshd(s, s.hq));
  Desc dO = g.tensor(DO, CUDNN_DATA_BFLOAT16, {s.b, s.hq, s.s, s.d}, bshd(s, s.hq));
  Desc stats = g.tensor(STATS, CUDNN_DATA_FLOAT, rd, {s.s * s.hq, 1, s.hq, 1});  // lse (B*T, Hq)
  Desc dQ = g.tensor(DQ, CUDNN_DATA_BFLOAT16, {s.b, s.hq, s.s, s.d}, bshd(s, s.hq));
  Desc dK = g.tensor(DK, CUDNN_DATA_BFLOAT16, {s.b, s.hk, s.s, s.d}, bshd(s, s.hk));
  Desc dV = g.tensor(DV, CUDNN_DATA_BFLOAT16, {s.b, s.hk, s.s, s.d}, bshd(s, s.hk));
  Desc scale = g.scalar(SCALE), negInf = g.scalar(NEGINF), one = g.scalar(ONE);
  Desc window = s.window > 0 ? g.scalar(WINDOW) : nullptr;
  Desc softSum = g.tensor(SOFTSUM, CUDNN_DATA_FLOAT, rd, rs);
  Desc dQacc = g.tensor(DQACC, CUDNN_DATA_FLOAT, {s.b, s.hq, s.s, s.d}, bhsd(s, s.hq));

  // softmax_sum = rowsum(dO * O)
  Desc a = g.virt(CUDNN_DATA_FLOAT, {s.b, s.hq, s.s, s.d}, bshd(s, s.hq));
  g.pointwise(CUDNN_POINTWISE_MUL, dO, o, nullptr, a);
  Desc r = g.virt(CUDNN_DATA_FLOAT, rd, rs);
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, a, r);
  g.pointwise(CUDNN_POINTWISE_MUL, r, one, nullptr, softSum);
  // P = exp(scale * Q K^T (masked) - stats)
  Desc S = g.virt(CUDNN_DATA_FLOAT, sd, ss);
  g.matmul(q, kt, S);
  Desc S1 = g.virt(CUDNN_DATA_FLOAT, sd, ss);
  g.pointwise(CUDNN_POINTWISE_MUL, S, scale, nullptr, S1);
  Desc S2 = mask(g, s, S1, negInf, window);
  Desc S3 = g.virt(CUDNN_DATA_FLOAT, sd, ss);
  g.pointwise(CUDNN_POINTWISE_SUB, S2, stats, nullptr, S3);
  Desc E = g.virt(CUDNN_DATA_FLOAT, sd, ss);
  g.pointwise(CUDNN_POINTWISE_EXP, S3, nullptr, nullptr, E);
  // dV = P^T dO (per query head, then summed over each kv head's group)
  Desc PT = g.virt(CUDNN_DATA_BFLOAT16, {s.b, s.hq, s.s, s.s}, sts);
  g.reshape(E, PT);
  if (s.hq == s.hk) {
    g.matmul(PT, dO, dV);
  } else {
    Desc dVf = g.virt(CUDNN_DATA_BFLOAT16, {s.b, s.hq, s.s, s.d}, bhsd(s, s.hq));
    g.matmul(PT, dO, dVf);
    g.reduction(CUDNN_REDUCE_TENSOR_ADD, dVf, dV);
  }
  // dS = scale * P * (dO V^T - softmax_sum)
  Desc dP = g.virt(CUDNN_DATA_FLOAT, sd, ss);
  g.matmul(dO, vt, dP);
  Desc t1 = g.virt(CUDNN_DATA_FLOAT, sd, ss);
  g.pointwise(CUDNN_POINTWISE_SUB, dP, softSum, nullptr, t1);
  Desc t2 = g.virt(CUDNN_DATA_FLOAT, sd, ss);
  g.pointwise(CUDNN_POINTWISE_MUL, t1, E, nullptr, t2);
  Desc dS = g.virt(CUDNN_DATA_FLOAT, sd, ss);
  g.pointwise(CUDNN_POINTWISE_MUL, t2, scale, nullptr, dS);
  // dK = dS^T Q
  Desc dST = g.virt(CUDNN_DATA_BFLOAT16, {s.b, s.hq, s.s, s.s}, sts);
  g.reshape(dS, dST);
  if (s.hq == s.hk) {
    g.matmul(dST, q, dK);
  } else {
    Desc dKf = g.virt(CUDNN_DATA_BFLOAT16, {s.b, s.hq, s.s, s.d}, bhsd(s, s.hq));
    g.matmul(dST, q, dKf);
    g.reduction(CUDNN_REDUCE_TENSOR_ADD, dKf, dK);
  }
  // dQ = dS K, accumulated in float
  Desc k = g.virt(CUDNN_DATA_BFLOAT16, {s.b, s.hk, s.s, s.d}, bshd(s, s.hk));
  g.reshape(kt, k);
  g.matmul(dS, k, dQacc);
  g.pointwise(CUDNN_POINTWISE_IDENTITY, dQacc, nullptr, nullptr, dQ);
}

static float bf(__nv_bfloat16 x) { return __bfloat162float(x); }

struct Buffers {
  size_t nq, nk, ns;
  __nv_bfloat16 *q, *k, *v, *o, *dO, *dQ, *dK, *dV;
  float *stats, *softSum, *dQacc;
  void* ws = nullptr;
  size_t wsBytes = 0;
};

static void run(cudnnHandle_t h, Plan& p, Buffers& B, float scale, float window, bool backward) {
  if ((size_t)p.workspace > B.wsBytes) {
    if (B.ws) CUDA(cudaFree(B.ws));
    CUDA(cudaMalloc(&B.ws, p.workspace));
    B.wsBytes = p.workspace;
  }
  float negInf = -std::numeric_limits<float>::infinity(), one = 1.0f;
  std::vector<int64_t> uids;
  std::vector<void*> ptrs;
  auto add = [&](int64_t u, void* ptr) { uids.push_back(u); ptrs.push_back(ptr); };
  add(Q, B.q);
  add(KT, B.k);
  add(O, B.o);
  add(STATS, B.stats);
  add(SCALE, &scale);
  add(NEGINF, &negInf);
  if (window > 0) add(WINDOW, &window);
  if (!backward) {
    add(V, B.v);
  } else {
    add(VT, B.v);
    add(DO, B.dO);
    add(DQ, B.dQ);
    add(DK, B.dK);
    add(DV, B.dV);
    add(ONE, &one);
    add(SOFTSUM, B.softSum);
    add(DQACC, B.dQacc);
  }
  Graph vg;
  Desc vp = vg.make(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  vg.set(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, (int64_t)uids.size(), uids.data(), "vp uids");
  vg.set(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, (int64_t)ptrs.size(), ptrs.data(),
         "vp pointers");
  vg.set(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &B.ws, "vp workspace");
  CK(p_cudnnBackendFinalize(vp), "finalize variant pack");
  CK(p_cudnnBackendExecute(h, p.plan, vp), backward ? "execute backward" : "execute forward");
}

// float32 reference of forward and backward on the bf16 inputs (small shapes only)
static void reference(const Shape& s, const std::vector<float>& q, const std::vector<float>& k,
                      const std::vector<float>& v, const std::vector<float>& dO, float scale, std::vector<float>& o,
                      std::vector<float>& lse, std::vector<float>& dq, std::vector<float>& dk,
                      std::vector<float>& dv) {
  int64_t T = s.s, D = s.d, G = s.hq / s.hk;
  o.assign(s.b * T * s.hq * D, 0);
  lse.assign(s.b * s.hq * T, 0);
  dq.assign(o.size(), 0);
  dk.assign(s.b * T * s.hk * D, 0);
  dv.assign(dk.size(), 0);
  std::vector<double> p(T), dp(T);
  for (int64_t b = 0; b < s.b; b++)
    for (int64_t h = 0; h < s.hq; h++) {
      int64_t kh = h / G;
      for (int64_t i = 0; i < T; i++) {
        const float* qi = &q[((b * T + i) * s.hq + h) * D];
        double mx = -1e300;
        for (int64_t j = 0; j < T; j++) {
          bool keep = j <= i && (s.window <= 0 || j + s.window > i);
          if (!keep) { p[j] = -1e300; continue; }
          const float* kj = &k[((b * T + j) * s.hk + kh) * D];
          double acc = 0;
          for (int64_t d = 0; d < D; d++) acc += (double)qi[d] * kj[d];
          p[j] = acc * scale;
          mx = std::max(mx, p[j]);
        }
        double z = 0;
        for (int64_t j = 0; j < T; j++) { p[j] = p[j] <= -1e299 ? 0 : std::exp(p[j] - mx); z += p[j]; }
        lse[(b * T + i) * s.hq + h] = (float)(mx + std::log(z));
        for (int64_t j = 0; j < T; j++) p[j] /= z;
        float* oi = &o[((b * T + i) * s.hq + h) * D];
        for (int64_t j = 0; j < T; j++)
          if (p[j] != 0)
            for (int64_t d = 0; d < D; d++) oi[d] += (float)(p[j] * v[((b * T + j) * s.hk + kh) * D + d]);
        // backward of this row
        const float* doi = &dO[((b * T + i) * s.hq + h) * D];
        double rowdot = 0;
        for (int64_t d = 0; d < D; d++) rowdot += (double)doi[d] * oi[d];
        for (int64_t j = 0; j < T; j++) {
          if (p[j] == 0) { dp[j] = 0; continue; }
          double acc = 0;
          for (int64_t d = 0; d < D; d++) acc += (double)doi[d] * v[((b * T + j) * s.hk + kh) * D + d];
          dp[j] = p[j] * (acc - rowdot) * scale;
        }
        for (int64_t j = 0; j < T; j++) {
          if (p[j] == 0) continue;
          for (int64_t d = 0; d < D; d++) {
            dq[((b * T + i) * s.hq + h) * D + d] += (float)(dp[j] * k[((b * T + j) * s.hk + kh) * D + d]);
            dk[((b * T + j) * s.hk + kh) * D + d] += (float)(dp[j] * qi[d]);
            dv[((b * T + j) * s.hk + kh) * D + d] += (float)(p[j] * doi[d]);
          }
        }
      }
    }
}

static double relErr(const std::vector<float>& ref, const __nv_bfloat16* dev, size_t n) {
  std::vector<__nv_bfloat16> h(n);
  CUDA(cudaMemcpy(h.data(), dev, n * 2, cudaMemcpyDeviceToHost));
  double num = 0, den = 0, mx = 0;
  for (size_t i = 0; i < n; i++) {
    double e = bf(h[i]) - ref[i];
    if (!std::isfinite(bf(h[i]))) return INFINITY;
    num += e * e;
    den += (double)ref[i] * ref[i];
    mx = std::max(mx, std::fabs(e));
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

static Buffers alloc(const Shape& s, std::vector<float>* hq, std::vector<float>* hk, std::vector<float>* hv,
                     std::vector<float>* hdo) {
  Buffers B{};
  B.nq = s.b * s.s * s.hq * s.d;
  B.nk = s.b * s.s * s.hk * s.d;
  B.ns = s.b * s.hq * s.s;
  CUDA(cudaMalloc(&B.q, B.nq * 2));
  CUDA(cudaMalloc(&B.o, B.nq * 2));
  CUDA(cudaMalloc(&B.dO, B.nq * 2));
  CUDA(cudaMalloc(&B.dQ, B.nq * 2));
  CUDA(cudaMalloc(&B.k, B.nk * 2));
  CUDA(cudaMalloc(&B.v, B.nk * 2));
  CUDA(cudaMalloc(&B.dK, B.nk * 2));
  CUDA(cudaMalloc(&B.dV, B.nk * 2));
  CUDA(cudaMalloc(&B.stats, B.ns * 4));
  CUDA(cudaMalloc(&B.softSum, B.ns * 4));
  CUDA(cudaMalloc(&B.dQacc, B.nq * 4));
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  auto fill = [&](__nv_bfloat16* dst, size_t n, std::vector<float>* keep) {
    std::vector<__nv_bfloat16> h(n);
    for (size_t i = 0; i < n; i++) h[i] = __float2bfloat16(nd(rng));
    if (keep) {
      keep->resize(n);
      for (size_t i = 0; i < n; i++) (*keep)[i] = bf(h[i]);
    }
    CUDA(cudaMemcpy(dst, h.data(), n * 2, cudaMemcpyHostToDevice));
  };
  fill(B.q, B.nq, hq);
  fill(B.k, B.nk, hk);
  fill(B.v, B.nk, hv);
  fill(B.dO, B.nq, hdo);
  return B;
}

static void release(Buffers& B) {
  for (void* p : {(void*)B.q, (void*)B.o, (void*)B.dO, (void*)B.dQ, (void*)B.k, (void*)B.v, (void*)B.dK,
                  (void*)B.dV, (void*)B.stats, (void*)B.softSum, (void*)B.dQacc, B.ws})
    if (p) cudaFree(p);
}

static int check(cudnnHandle_t h, const Shape& s) {
  printf("check b=%lld hq=%lld hk=%lld T=%lld hd=%lld window=%lld\n", (long long)s.b, (long long)s.hq,
         (long long)s.hk, (long long)s.s, (long long)s.d, (long long)s.window);
  std::vector<float> q, k, v, dO, o, lse, dq, dk, dv;
  Buffers B = alloc(s, &q, &k, &v, &dO);
  float scale = 1.0f / std::sqrt((float)s.d);
  reference(s, q, k, v, dO, scale, o, lse, dq, dk, dv);
  int bad = 0;
  try {
    Plan f;
    buildForward(f.g, s);
    if (!buildPlan(f, h, "forward")) { printf("  forward: NO PLAN\n"); release(B); return 1; }
    run(h, f, B, scale, (float)s.window, false);
    CUDA(cudaDeviceSynchronize());
    std::vector<float> st(B.ns);
    CUDA(cudaMemcpy(st.data(), B.stats, B.ns * 4, cudaMemcpyDeviceToHost));
    double lerr = 0;
    for (size_t i = 0; i < B.ns; i++) lerr = std::max(lerr, (double)std::fabs(st[i] - lse[i]));
    double oe = relErr(o, B.o, B.nq);
    printf("  forward: O rel rms err %.2e, stats max abs err %.2e\n", oe, lerr);
    bad += !(oe < 1e-2 && lerr < 1e-2);
    Plan bw;
    buildBackward(bw.g, s);
    if (!buildPlan(bw, h, "backward")) { printf("  backward: NO PLAN\n"); release(B); return bad + 1; }
    run(h, bw, B, scale, (float)s.window, true);
    CUDA(cudaDeviceSynchronize());
    double eq = relErr(dq, B.dQ, B.nq), ek = relErr(dk, B.dK, B.nk), ev = relErr(dv, B.dV, B.nk);
    printf("  backward: dQ %.2e dK %.2e dV %.2e (rel rms err)\n", eq, ek, ev);
    bad += !(eq < 2e-2 && ek < 2e-2 && ev < 2e-2);
  } catch (Failed& f) {
    printf("  FAILED at %s\n", f.what.c_str());
    bad++;
  }
  release(B);
  printf("  %s\n", bad ? "MISMATCH/FAIL" : "ok");
  return bad;
}

static double median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

static void timeShape(cudnnHandle_t h, const Shape& s, int reps) {
  Buffers B = alloc(s, nullptr, nullptr, nullptr, nullptr);
  float scale = 1.0f / std::sqrt((float)s.d);
  try {
    Plan f, bw;
    buildForward(f.g, s);
    buildBackward(bw.g, s);
    if (!buildPlan(f, h, "forward") || !buildPlan(bw, h, "backward")) {
      printf("| %lld | %lld | no plan |\n", (long long)s.s, (long long)s.d);
      release(B);
      return;
    }
    cudaEvent_t a, c;
    CUDA(cudaEventCreate(&a));
    CUDA(cudaEventCreate(&c));
    std::vector<float> tf, tb;
    for (int i = 0; i < reps + 3; i++) {
      CUDA(cudaEventRecord(a));
      run(h, f, B, scale, (float)s.window, false);
      CUDA(cudaEventRecord(c));
      CUDA(cudaEventSynchronize(c));
      float ms;
      CUDA(cudaEventElapsedTime(&ms, a, c));
      if (i >= 3) tf.push_back(ms);
      CUDA(cudaEventRecord(a));
      run(h, bw, B, scale, (float)s.window, true);
      CUDA(cudaEventRecord(c));
      CUDA(cudaEventSynchronize(c));
      CUDA(cudaEventElapsedTime(&ms, a, c));
      if (i >= 3) tb.push_back(ms);
    }
    double flopsF = 4.0 * s.b * s.hq * (double)s.s * s.s * s.d / 2.0;
    double mf = median(tf), mb = median(tb);
    printf("| %lld | %lld | %.3f | %.3f | %.0f | %.0f |\n", (long long)s.s, (long long)s.d, mf, mb,
           flopsF / mf / 1e9, 2.5 * flopsF / mb / 1e9);
  } catch (Failed& f) {
    printf("| %lld | %lld | failed at %s |\n", (long long)s.s, (long long)s.d, f.what.c_str());
  }
  release(B);
}

int main(int argc, char** argv) {
  const char* lib = argc > 1 ? argv[1] : "libcudnn.so.9";
  void* so = dlopen(lib, RTLD_NOW | RTLD_GLOBAL);
  if (!so) { fprintf(stderr, "cannot load %s: %s\n", lib, dlerror()); return 3; }
#define LOAD(name)                                                          \
  p_##name = (decltype(p_##name))dlsym(so, #name);                          \
  if (!p_##name) { fprintf(stderr, "%s lacks %s\n", lib, #name); return 3; }
  LOAD(cudnnGetVersion);
  LOAD(cudnnCreate);
  LOAD(cudnnSetStream);
  LOAD(cudnnGetErrorString);
  LOAD(cudnnGetLastErrorString);
  LOAD(cudnnBackendCreateDescriptor);
  LOAD(cudnnBackendDestroyDescriptor);
  LOAD(cudnnBackendSetAttribute);
  LOAD(cudnnBackendGetAttribute);
  LOAD(cudnnBackendFinalize);
  LOAD(cudnnBackendExecute);
  CUDA(cudaFree(0));
  cudnnHandle_t h;
  CK(p_cudnnCreate(&h), "cudnnCreate");
  printf("cuDNN %zu from %s\n", p_cudnnGetVersion(), lib);
  int bad = 0;
  bad += check(h, {2, 4, 2, 128, 64, 0});
  bad += check(h, {2, 4, 2, 128, 128, 0});
  bad += check(h, {1, 4, 4, 192, 64, 0});
  bad += check(h, {2, 4, 2, 128, 64, 40});
  printf("\n| T | hd | fwd ms | bwd ms | fwd TFLOP/s | bwd TFLOP/s |\n|---|---|---|---|---|---|\n");
  for (int64_t d : {128, 64})
    for (int64_t t : {2048, 4096}) timeShape(h, {16384 / t, 32, 8, t, d, 0}, 20);
  printf("\nchecks: %s\n", bad ? "FAILED" : "all passed");
  return bad ? 1 : 0;
}
