package moetune.engine.model;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import moetune.engine.backend.Backend;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.backend.cuda.CudaBackend;
import moetune.engine.backend.cuda.CudaProbe;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.tensor.DType;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A small random Mixtral at head dim 64 and 128, where the tensor-core attention kernels apply, on
 * every GPU attention path (cuDNN, where cuDNN 9.19+ is installed, with the packed documents as
 * ragged sequences; own; scalar) against the float32 CPU oracle on the same weights: logits, losses
 * and every parameter's gradient, on a batch of 2 x 150 tokens (several query and key tiles) with
 * packed documents in one row and trailing padding in the other. Each path is checked to have run
 * where it should (the own path's calls are counted by the backend).
 *
 * <p>Each bf16 path against the float32 CPU: logits 3e-2 relative, the loss 2e-3, and each tensor's
 * gradient error against the global gradient norm 3e-2 (a per-tensor relative bound would measure
 * the rounding noise of small gradients, as {@link MixtralModelGpuTest} explains). This model's
 * bf16 floor, measured on the H200 (2026-12-02, first run of this test): logits 7.7e-3 to 8.1e-3,
 * loss 0.9e-4 to 1.9e-4, gradients 1.79e-2 (scalar path, hd 128) to 2.13e-2 (own path, hd 64; both
 * in layer 0's o_proj), so the gradient bound keeps the 1.4x headroom of MixtralModelGpuTest's
 * bounds (its 2e-2, first used here, failed on the own path at 2.13e-2: that was the bf16 floor of
 * this model, not of attention). The own path against the scalar path on the same bf16 model, where
 * only the attention kernels differ: 1.5e-2 on logits and gradients (measured 5.5e-3 and 8.4e-3 at
 * hd 128). The two experts are both chosen for every token (top-2 of 2), so bf16 rounding cannot
 * change a token's experts. A wrong mask or a wrong gradient term in attention shows as an error of
 * order one.
 */
@Tag("gpu")
class MixtralAttentionPathsGpuTest {
  static final int T = 150;

  static MixtralConfig config(int headDim) {
    MixtralConfig.Builder b = MixtralConfig.builder();
    b.vocabSize = 64;
    b.hiddenSize = 96;
    b.intermediateSize = 64;
    b.numHiddenLayers = 2;
    b.numAttentionHeads = 4;
    b.numKeyValueHeads = 2;
    b.headDim = headDim;
    b.numLocalExperts = 2;
    b.numExpertsPerTok = 2;
    b.maxPositionEmbeddings = 256;
    b.ropeTheta = 10000;
    b.routerAuxLossCoef = 0.02;
    b.bosTokenId = 1;
    b.eosTokenIds = List.of(2);
    return b.build();
  }

  /** Two plain rows of T tokens: no packing, no padding (cuDNN's plain, non-ragged graphs). */
  static Batch plainBatch() {
    java.util.SplittableRandom rnd = new java.util.SplittableRandom(19);
    int[][] ids = new int[2][T];
    int[][] labels = new int[2][T];
    for (int b = 0; b < 2; b++) {
      for (int t = 0; t < T; t++) {
        ids[b][t] = 3 + rnd.nextInt(60);
        labels[b][t] = t == 0 ? Batch.IGNORE_INDEX : ids[b][t];
      }
    }
    return Batch.of(ids, labels);
  }

  /** Row 0 packs two documents (positions restart, no target crosses); row 1 ends in padding. */
  static Batch batch() {
    java.util.SplittableRandom rnd = new java.util.SplittableRandom(17);
    int[][] ids = new int[2][T];
    int[][] labels = new int[2][T];
    int[][] pos = new int[2][T];
    int[][] docs = new int[2][T];
    int[][] mask = new int[2][T];
    int split = 83, pad = 121;
    for (int t = 0; t < T; t++) {
      for (int b = 0; b < 2; b++) {
        ids[b][t] = 3 + rnd.nextInt(60);
        mask[b][t] = b == 1 && t >= pad ? 0 : 1;
        docs[b][t] = b == 0 && t >= split ? 1 : 0;
        pos[b][t] = b == 0 && t >= split ? t - split : t;
        boolean firstOfDoc = t == 0 || (b == 0 && t == split);
        labels[b][t] = firstOfDoc || mask[b][t] == 0 ? Batch.IGNORE_INDEX : ids[b][t];
      }
    }
    return Batch.of(ids, labels).withPacking(pos, docs).withAttentionMask(mask);
  }

  record Result(double loss, float[] logits, Map<String, float[]> grads) {}

  static Result run(MixtralConfig c, Map<String, float[]> w, Backend be, DType act) {
    return run(c, w, be, act, batch());
  }

  static Result run(MixtralConfig c, Map<String, float[]> w, Backend be, DType act, Batch batch) {
    try (MixtralModel m = RandomMixtral.create(c, w, be, new ModelOptions(act, 0))) {
      m.zeroGrad();
      Loss loss = m.forward(batch);
      float[] logits = m.logits().toFloatArray();
      m.backward();
      Map<String, float[]> grads = new java.util.LinkedHashMap<>();
      for (String name : m.parameters().hubNames()) {
        grads.put(name, m.gradient(name).toFloatArray());
      }
      return new Result(loss.total(), logits, grads);
    }
  }

  /** The largest per-tensor gradient error against the reference's global gradient norm. */
  static String worstGradient(Result got, Result want, double[] worst) {
    double global = 0;
    for (float[] g : want.grads().values()) {
      for (float x : g) {
        global += (double) x * x;
      }
    }
    global = Math.sqrt(global);
    worst[0] = 0;
    String at = "";
    for (Map.Entry<String, float[]> e : want.grads().entrySet()) {
      float[] a = e.getValue();
      float[] b = got.grads().get(e.getKey());
      double d = 0;
      for (int i = 0; i < a.length; i++) {
        d += ((double) b[i] - a[i]) * ((double) b[i] - a[i]);
      }
      double err = Math.sqrt(d) / global;
      if (err > worst[0]) {
        worst[0] = err;
        at = e.getKey();
      }
    }
    return at;
  }

  /** Prints the errors of got against want; returns a failure message, or null within tol. */
  static String compare(String what, Result got, Result want, double tol) {
    double logits = Parity.relError(got.logits(), want.logits());
    double loss = Math.abs(got.loss() - want.loss()) / Math.abs(want.loss());
    double[] worst = new double[1];
    String at = worstGradient(got, want, worst);
    System.out.printf(
        "%s: logits %.2e, loss %.2e, worst gradient error against the global norm %.2e (%s)%n",
        what, logits, loss, worst[0], at);
    if (!(logits <= tol && loss <= 2e-3 && worst[0] <= tol)) {
      return String.format(
          "%s: logits %.2e, gradient %.2e at %s (bound %.1e), loss %.2e (bound 2e-3)",
          what, logits, worst[0], at, tol, loss);
    }
    return null;
  }

  @ParameterizedTest(name = "head dim {0}")
  @ValueSource(ints = {64, 128})
  void bothAttentionPathsMatchTheCpu(int headDim) {
    String why = CudaProbe.unavailableReason(0);
    Assumptions.assumeTrue(why == null, () -> "GPU test skipped: " + why);
    MixtralConfig c = config(headDim);
    Assertions.assertEquals(headDim, c.headDim());
    Map<String, float[]> w = RandomMixtral.weights(c, 23);
    Result cpu;
    try (CpuBackend be = new CpuBackend(2)) {
      cpu = run(c, w, be, DType.F32);
    }
    List<Result> paths = new ArrayList<>();
    Result cudnn = null;
    try (CudaBackend gpu = new CudaBackend(0, false)) {
      if (!"0".equals(System.getenv("MOETUNE_TEST_CUDNN"))) {
        // packed documents and padding as cuDNN's ragged sequences: every call on cuDNN
        gpu.attentionPath("cudnn");
        long before = gpu.cudnnAttentionCalls();
        Result r = run(c, w, gpu, DType.BF16);
        long calls = gpu.cudnnAttentionCalls() - before;
        System.out.println(
            gpu.attentionPlan(DType.BF16, headDim) + ": " + calls + " calls on cuDNN");
        if (!gpu.cudnnStatus().startsWith("cuDNN unavailable")) {
          Assertions.assertEquals(
              2L * c.numHiddenLayers,
              calls,
              "every forward and backward attention call of the packed batch on cuDNN");
          cudnn = r;
        }
      }
      for (String path : new String[] {"own", "scalar"}) {
        gpu.attentionPath(path);
        long before = gpu.ownAttentionCalls();
        Result r = run(c, w, gpu, DType.BF16);
        long own = gpu.ownAttentionCalls() - before;
        // own: at least one forward and one backward call per layer on the tensor-core kernels
        boolean ok = path.equals("own") ? own >= 2L * c.numHiddenLayers : own == 0;
        Assertions.assertTrue(
            ok, path + " path: " + own + " attention calls ran on the tensor-core kernels");
        System.out.println(gpu.attentionPlan(DType.BF16, headDim));
        paths.add(r);
      }
    }
    List<String> failures = new ArrayList<>();
    String p = "hd " + headDim + " ";
    failures.add(compare(p + "own (bf16) vs cpu (f32)", paths.get(0), cpu, 3e-2));
    failures.add(compare(p + "scalar (bf16) vs cpu (f32)", paths.get(1), cpu, 3e-2));
    failures.add(compare(p + "own vs scalar (bf16)", paths.get(0), paths.get(1), 1.5e-2));
    if (cudnn != null) {
      failures.add(compare(p + "cudnn (bf16) vs cpu (f32)", cudnn, cpu, 3e-2));
      failures.add(compare(p + "cudnn vs own (bf16)", cudnn, paths.get(0), 1.5e-2));
    }
    failures.removeIf(java.util.Objects::isNull);
    Assertions.assertTrue(failures.isEmpty(), String.join("; ", failures));
  }

  /**
   * cuDNN's fused attention (MOETUNE_ATTENTION=cudnn) in the model on plain rows (no ragged
   * offsets, the plain graphs): logits, loss and every gradient against the float32 CPU and against
   * the own kernels, and every attention call ran on cuDNN. Skipped visibly where no cuDNN >= 9.19
   * is installed.
   */
  @ParameterizedTest(name = "head dim {0}")
  @ValueSource(ints = {64, 128})
  void cudnnPathMatchesTheCpuOnPlainRows(int headDim) {
    String why = CudaProbe.unavailableReason(0);
    Assumptions.assumeTrue(why == null, () -> "GPU test skipped: " + why);
    Assumptions.assumeFalse(
        "0".equals(System.getenv("MOETUNE_TEST_CUDNN")), "cuDNN tests off (MOETUNE_TEST_CUDNN=0)");
    MixtralConfig c = config(headDim);
    Map<String, float[]> w = RandomMixtral.weights(c, 29);
    Result cpu;
    try (CpuBackend be = new CpuBackend(2)) {
      cpu = run(c, w, be, DType.F32, plainBatch());
    }
    Result own, cudnn;
    try (CudaBackend gpu = new CudaBackend(0, false)) {
      gpu.attentionPath("own");
      own = run(c, w, gpu, DType.BF16, plainBatch());
      gpu.attentionPath("cudnn");
      cudnn = run(c, w, gpu, DType.BF16, plainBatch());
      long calls = gpu.cudnnAttentionCalls();
      System.out.println(gpu.cudnnStatus() + ", " + calls + " attention calls on cuDNN");
      Assumptions.assumeTrue(
          calls > 0 || !gpu.cudnnStatus().startsWith("cuDNN unavailable"),
          () -> "cuDNN path skipped: " + gpu.cudnnStatus());
      Assertions.assertEquals(
          2L * c.numHiddenLayers, calls, "every forward and backward attention call on cuDNN");
    }
    List<String> failures = new ArrayList<>();
    String p = "hd " + headDim + " plain rows ";
    failures.add(compare(p + "cudnn (bf16) vs cpu (f32)", cudnn, cpu, 3e-2));
    failures.add(compare(p + "own (bf16) vs cpu (f32)", own, cpu, 3e-2));
    failures.add(compare(p + "cudnn vs own (bf16)", cudnn, own, 1.5e-2));
    failures.removeIf(java.util.Objects::isNull);
    Assertions.assertTrue(failures.isEmpty(), String.join("; ", failures));
  }
}
