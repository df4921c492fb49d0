// SwiGLU's element math, written once: swiglu.cu's passes and the fused epilogues of the
// grouped products (moe_wgmma_ws.cu, variant 10) both call these, so a fused result is the
// unfused one bit for bit (same operations on the same rounded inputs).
#pragma once

// The hardware exponential and a fast reciprocal (MUFU.EX2, MUFU.RCP): a few ulp of float32, far
// below bf16's rounding, and cheap enough for the products' epilogues, where this math runs while
// the tensor cores wait (IEEE expf and division made the fused epilogue slower than a separate pass:
// H200 2026-12-03 10:22 UTC). For g < -88, exp overflows to inf and the sigmoid is 0.
// Both in their flush-to-zero forms (ex2.approx.ftz, rcp.approx.ftz; the exponent scaled by
// __expf's log2(e), 0x3FB8AA3B): the plain forms (__expf, __fdividef without -ftz) guard subnormal
// inputs and results with a compare and predicated rescaling around each MUFU, and no subnormal can
// change the sigmoid's bits (exp's subnormal results vanish in 1 + e; the reciprocal of 1 + e >= 1
// is subnormal only where the plain divide gives 0 too). So this is __fdividef(1, 1 + __expf(-g))
// bit for bit on every float (kernels/lab/moe/sigmoid_check.cu compares the two on all 2^32 inputs;
// 0 differ on the H200, 2026-12-06) in about 380 fewer instructions a SwiGLU-backward tile
// (variant 35, kernels/lab/moe/README.md).
__device__ __forceinline__ float sigmoidf_(float g) {
  float e, s;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(-g * __int_as_float(0x3FB8AA3B)));
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(s) : "f"(1.f + e));
  return s;
}

// a = silu(g) * u
__device__ __forceinline__ float swiglu_fwd(float g, float u) { return g * sigmoidf_(g) * u; }

// From dA and the forward's (g, u) with s = sigmoid(g): dgate = dA * u * s * (1 + g * (1 - s)),
// dup = dA * g * s.
__device__ __forceinline__ void swiglu_bwd_s(float d, float g, float u, float s, float& dg,
                                             float& du) {
  dg = d * u * s * (1.f + g * (1.f - s));
  du = d * g * s;
}
// The SwiGLU backward's factors (variant 56), what dA is multiplied by: p = d a / d gate =
// up s (1 + gate (1 - s)) and q = d a / d up = gate s (silu(gate)), s = sigmoid(gate). The forward
// saves them (rounded) in place of h, so the backward is dH = [dA p | dA q] with no sigmoid.
// a = swiglu_fwd(gate, up) = (gate s) up is q up before q's rounding.
__device__ __forceinline__ void swiglu_factors_s(float g, float u, float s, float& p, float& q) {
  p = u * s * (1.f + g * (1.f - s));
  q = g * s;
}
__device__ __forceinline__ void swiglu_bwd(float d, float g, float u, float& dg, float& du) {
  swiglu_bwd_s(d, g, u, sigmoidf_(g), dg, du);
}
