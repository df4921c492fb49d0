package moetune.engine.backend.cpu;

import moetune.engine.backend.AdamWCoefficients;
import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.Tensor;

/**
 * sumSquares, clipByNorm and adamwStep: global grad-norm clipping and the AdamW step, following
 * torch's operation order. The GPU twin is {@code CudaAdamW} (adamw.cu); shapes are checked by
 * {@link OpShapes}.
 */
final class CpuAdamW {
  private final Parallel par;
  private final CpuLosses sums;

  CpuAdamW(Parallel par, CpuLosses sums) {
    this.par = par;
    this.sums = sums;
  }

  /** Backend#sumSquares: acc[0] += sum x^2 (summed in double, added to acc in float32). */
  void sumSquares(Tensor xt, Tensor acct) {
    CpuTensor x = Args.f32("sumSquares", "x", xt);
    CpuTensor acc = Args.f32("sumSquares", "acc", acct);
    OpShapes.sumSquares(x, acc);
    float[] xv = x.floats();
    double total =
        sums.chunkedSum(
            x.size(),
            (s, e) -> {
              double a = 0;
              for (int i = s; i < e; i++) {
                double v = xv[x.offset() + i];
                a += v * v;
              }
              return a;
            });
    acc.floats()[acc.offset()] += (float) total;
  }

  /**
   * Backend#clipByNorm, as torch.nn.utils.clip_grad_norm_: clip_coef = max_norm / (total_norm +
   * 1e-6) (a Python scalar over a tensor is reciprocal() * scalar in torch), clamped to 1, and the
   * gradient is always multiplied.
   */
  void clipByNorm(Tensor gradt, Tensor sumSqt, float maxNorm) {
    CpuTensor grad = Args.f32("clipByNorm", "grad", gradt);
    CpuTensor sumSq = Args.f32("clipByNorm", "sumSq", sumSqt);
    OpShapes.clipByNorm(grad, sumSq);
    float norm = (float) Math.sqrt(sumSq.floats()[sumSq.offset()]);
    float coef = Math.min(1f, (1f / (norm + 1e-6f)) * maxNorm);
    float[] g = grad.floats();
    int off = grad.offset();
    par.forChunks(
        grad.size(),
        CpuElementwise.CHUNK,
        (s, e) -> {
          for (int i = s; i < e; i++) {
            g[off + i] *= coef;
          }
        });
  }

  /**
   * Backend#adamwStep, in the order of torch's _single_tensor_adamw: param.mul_(1 - lr * wd);
   * exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2); denom =
   * exp_avg_sq.sqrt() / sqrt(1 - beta2^t) + eps; param.addcdiv_(exp_avg, denom, -lr / (1 -
   * beta1^t)), with the constants {@link AdamWCoefficients} computed once per step on the host.
   */
  void adamwStep(
      Tensor paramt,
      Tensor gradt,
      Tensor mt,
      Tensor vt,
      AdamWCoefficients c,
      Tensor lowPrecisiont) {
    String op = "adamwStep";
    CpuTensor param = Args.f32(op, "param", paramt);
    CpuTensor grad = Args.f32(op, "grad", gradt);
    CpuTensor m = Args.f32(op, "m", mt);
    CpuTensor v = Args.f32(op, "v", vt);
    CpuTensor low = lowPrecisiont == null ? null : Args.f32(op, "lowPrecision", lowPrecisiont);
    int n = Math.toIntExact(OpShapes.adamwStep(param, grad, m, v, low));
    float decay = c.decay();
    float w1 = c.w1();
    float b2f = c.beta2();
    float w2 = c.w2();
    float negStepSize = c.negStepSize();
    float bc2Sqrt = c.bc2Sqrt();
    float epsF = c.eps();
    float[] p = param.floats();
    float[] g = grad.floats();
    float[] mv = m.floats();
    float[] vv = v.floats();
    float[] lv = low == null ? null : low.floats();
    par.forChunks(
        n,
        CpuElementwise.CHUNK,
        (s, e) -> {
          for (int i = s; i < e; i++) {
            float gi = g[grad.offset() + i];
            float pi = p[param.offset() + i] * decay;
            float mi = mv[m.offset() + i];
            // torch's vectorised lerp with |weight| < 0.5: fma(weight, end - self, self)
            mi = w1 < 0.5f ? Math.fma(w1, gi - mi, mi) : Math.fma(w1 - 1f, gi - mi, gi);
            float vi = vv[v.offset() + i] * b2f;
            vi = vi + w2 * gi * gi;
            float denom = (float) Math.sqrt(vi) / bc2Sqrt + epsF;
            pi = pi + negStepSize * mi / denom;
            p[param.offset() + i] = pi;
            mv[m.offset() + i] = mi;
            vv[v.offset() + i] = vi;
            if (lv != null) {
              lv[low.offset() + i] = pi;
            }
          }
        });
  }
}
