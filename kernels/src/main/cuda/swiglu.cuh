// SwiGLU's element math, written once: swiglu.cu's passes and the fused epilogues of the
// grouped products (moe_wgmma_ws.cu, variant 10) both call these, so a fused result is the
// unfused one bit for bit (same operations on the same rounded inputs).
#pragma once

// The hardware exponential and a fast divide (MUFU.EX2, MUFU.RCP): a few ulp of float32, far below
// bf16's rounding, and cheap enough for the products' epilogues, where this math runs while the
// tensor cores wait (IEEE expf and division made the fused epilogue slower than a separate pass:
// H200 2026-12-03 10:22 UTC). For g < -88, exp overflows to inf and the sigmoid is 0.
__device__ __forceinline__ float sigmoidf_(float g) { return __fdividef(1.f, 1.f + __expf(-g)); }

// a = silu(g) * u
__device__ __forceinline__ float swiglu_fwd(float g, float u) { return g * sigmoidf_(g) * u; }

// From dA and the forward's (g, u) with s = sigmoid(g): dgate = dA * u * s * (1 + g * (1 - s)),
// dup = dA * g * s.
__device__ __forceinline__ void swiglu_bwd_s(float d, float g, float u, float s, float& dg,
                                             float& du) {
  dg = d * u * s * (1.f + g * (1.f - s));
  du = d * g * s;
}
__device__ __forceinline__ void swiglu_bwd(float d, float g, float u, float& dg, float& du) {
  swiglu_bwd_s(d, g, u, sigmoidf_(g), dg, du);
}
