package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.CudaContext.dt;

import moetune.engine.tensor.Tensor;

/** randomNormal on the GPU (random.cu). The CPU twin is {@code CpuRandom}. */
final class CudaRandom {
  private final CudaContext ctx;

  CudaRandom(CudaContext ctx) {
    this.ctx = ctx;
  }

  void randomNormal(Tensor t, long seed, float std) {
    CudaTensor c = ctx.ct(t, "randomNormal", "t");
    if (c.numel() == 0) {
      return;
    }
    ctx.kernel("random_normal_kernel")
        .shapes(c.describe())
        .grid(ctx.gridFor(c.numel()))
        .block(256)
        .ptr("x", c.address())
        .i32("dt", dt(c, "randomNormal", "t"))
        .i64("seed", seed)
        .f32("std", std)
        .i64("n", c.numel())
        .launch();
  }
}
