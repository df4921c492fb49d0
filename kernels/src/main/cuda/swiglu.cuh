// SwiGLU's element math, written once: swiglu.cu's passes and the fused epilogues of the
// grouped products (moe_wgmma_ws.cu, variant 10) both call these, so a fused result is the
// unfused one bit for bit (same operations on the same rounded inputs).
#pragma once

__device__ __forceinline__ float sigmoidf_(float g) { return 1.f / (1.f + expf(-g)); }

// a = silu(g) * u
__device__ __forceinline__ float swiglu_fwd(float g, float u) { return g * sigmoidf_(g) * u; }

// From dA and the forward's (g, u): dgate = dA * u * sig * (1 + g * (1 - sig)), dup = dA * silu(g).
__device__ __forceinline__ void swiglu_bwd(float d, float g, float u, float& dg, float& du) {
  float s = sigmoidf_(g);
  dg = d * u * s * (1.f + g * (1.f - s));
  du = d * g * s;
}
