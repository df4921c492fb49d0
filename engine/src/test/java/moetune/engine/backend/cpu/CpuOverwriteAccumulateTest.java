package moetune.engine.backend.cpu;

import static moetune.engine.backend.cpu.CpuTesting.f32;
import static moetune.engine.backend.cpu.CpuTesting.i32;
import static moetune.engine.backend.cpu.CpuTesting.randn;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.Random;
import moetune.engine.backend.AttnSpec;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The "overwrite" and "+=" halves of the Backend contract. Each overwrite op runs twice, into
 * outputs poisoned with NaN (and -7 for ints) and into zeroed outputs: both results must be equal
 * bit for bit and free of NaN, so every element was written and none was read. Each += op runs into
 * zeros (giving its contribution) and into random starting values: the result must be the start
 * plus the contribution.
 */
class CpuOverwriteAccumulateTest {
  static CpuBackend be;
  static final Random R = new Random(11);

  // Shared inputs: N=37 tokens of D=100, E=5 experts, top-3, expert 4 never chosen.
  static final int N = 37;
  static final int D = 100;
  static final int E = 5;
  static final int K = 3;
  static final int M = N * K;
  static Tensor x;
  static Tensor topIdx;
  static Tensor sortedExp;
  static Tensor sortedScat;
  static Tensor offsets;

  @BeforeAll
  static void start() {
    be = new CpuBackend(2);
    x = f32(be, randn(R, N * D, 1), N, D);
    CpuScatterMoeTest.Routing rt = CpuScatterMoeTest.Routing.random(R, N, K, E, 4);
    topIdx = i32(be, rt.topIdx(), N, K);
    sortedExp = i32(be, rt.sortedExp(), M);
    sortedScat = i32(be, rt.sortedScat(), M);
    offsets = i32(be, rt.offsets(), E);
  }

  @AfterAll
  static void stop() {
    be.close();
  }

  private static Tensor rand(long... shape) {
    int n = 1;
    for (long s : shape) {
      n *= (int) s;
    }
    return f32(be, randn(R, n, 1), shape);
  }

  private static float[][] snapshot(Tensor[] outs) {
    float[][] s = new float[outs.length][];
    for (int i = 0; i < outs.length; i++) {
      s[i] = be.download(outs[i]).toFloatArray();
    }
    return s;
  }

  private static void overwrites(String op, Runnable run, Tensor... outs) {
    for (Tensor t : outs) {
      be.fill(t, t.dtype() == DType.F32 ? Float.NaN : -7);
    }
    run.run();
    float[][] poisoned = snapshot(outs);
    for (Tensor t : outs) {
      be.fill(t, 0);
    }
    run.run();
    float[][] clean = snapshot(outs);
    for (int o = 0; o < outs.length; o++) {
      for (int i = 0; i < clean[o].length; i++) {
        if (Float.isNaN(poisoned[o][i])
            || Float.floatToRawIntBits(poisoned[o][i]) != Float.floatToRawIntBits(clean[o][i])) {
          fail(
              op
                  + ": output "
                  + o
                  + " element "
                  + i
                  + " not overwritten: "
                  + poisoned[o][i]
                  + " after poisoning, "
                  + clean[o][i]
                  + " after zeroing");
        }
      }
    }
  }

  private static void accumulates(String op, Runnable run, Tensor... outs) {
    for (Tensor t : outs) {
      be.fill(t, 0);
    }
    run.run();
    float[][] delta = snapshot(outs);
    float[][] start = new float[outs.length][];
    for (int o = 0; o < outs.length; o++) {
      start[o] = randn(R, (int) outs[o].numel(), 1);
      be.copyFromHost(
          moetune.engine.tensor.HostTensor.ofFloats(start[o], outs[o].shape()), outs[o]);
    }
    run.run();
    float[][] after = snapshot(outs);
    for (int o = 0; o < outs.length; o++) {
      double[] want = new double[start[o].length];
      boolean moved = false;
      for (int i = 0; i < want.length; i++) {
        want[i] = (double) start[o][i] + delta[o][i];
        moved |= delta[o][i] != 0;
      }
      assertTrue(moved, op + ": output " + o + " got no contribution, the check would be empty");
      CpuTesting.assertClose(op + " += output " + o, want, after[o], 1e-5, 1e-6);
    }
  }

  @Test
  void overwriteOpsWriteEveryElement() {
    Tensor w = rand(60, D);
    Tensor sumOut = be.empty(DType.F32, N, D);
    overwrites("add", () -> be.add(x, x, sumOut), sumOut);
    Tensor y = be.empty(DType.F32, N, 60);
    overwrites("matmul beta=0", () -> be.matmul(x, false, w, true, y, 1, 0), y);
    Tensor ids = i32(be, new int[] {1, 2, 3, 1}, 4);
    Tensor emb = be.empty(DType.F32, 4, D);
    overwrites("embeddingForward", () -> be.embeddingForward(ids, x, emb), emb);
    Tensor normOut = be.empty(DType.F32, N, D);
    Tensor rstd = be.empty(DType.F32, N);
    Tensor nw = rand(D);
    overwrites(
        "rmsnormForward",
        () -> be.rmsnormForward(x, null, nw, 1e-5f, normOut, rstd),
        normOut,
        rstd);

    AttnSpec spec = new AttnSpec(1, 5, 8, i32(be, new int[] {0, 0, 0, 1, 1, 1, 1, -1}, 8), 3);
    Tensor q = rand(5, 4, 6);
    Tensor k = rand(8, 2, 6);
    Tensor v = rand(8, 2, 6);
    Tensor ao = be.empty(DType.F32, 5, 4, 6);
    Tensor lse = be.empty(DType.F32, 5, 4);
    overwrites("attentionForward", () -> be.attentionForward(q, k, v, spec, ao, lse), ao, lse);
    // lse holds -inf for the padding query; poisoning must not leave NaN there.
    Tensor dOut = rand(5, 4, 6);
    Tensor dq = be.empty(DType.F32, 5, 4, 6);
    Tensor dk = be.empty(DType.F32, 8, 2, 6);
    Tensor dv = be.empty(DType.F32, 8, 2, 6);
    overwrites(
        "attentionBackward",
        () -> be.attentionBackward(dOut, q, k, v, ao, lse, spec, dq, dk, dv),
        dq,
        dk,
        dv);

    Tensor logits = rand(N, E);
    Tensor probs = be.empty(DType.F32, N, E);
    Tensor topW = be.empty(DType.F32, N, K);
    Tensor topI = be.empty(DType.I32, N, K);
    overwrites("routerTopK", () -> be.routerTopK(logits, K, probs, topW, topI), probs, topW, topI);
    Tensor dLogits = be.empty(DType.F32, N, E);
    Tensor dW = rand(N, K);
    overwrites("routerBackward", () -> be.routerBackward(dW, null, probs, topI, dLogits), dLogits);
    Tensor se = be.empty(DType.I32, M);
    Tensor ss = be.empty(DType.I32, M);
    Tensor off = be.empty(DType.I32, E);
    overwrites("flattenSortCount", () -> be.flattenSortCount(topIdx, E, se, ss, off), se, ss, off);

    Tensor w1 = rand(E, 2 * 40, D);
    for (boolean gin : new boolean[] {false, true}) {
      for (boolean gout : new boolean[] {false, true}) {
        Tensor in = gin ? rand(M, D) : x;
        Tensor h = be.empty(DType.F32, M, 80);
        Tensor bias = rand(E, 80);
        overwrites(
            "scatter2scatter in=" + gin + " out=" + gout,
            () -> be.scatter2scatter(in, w1, bias, true, K, sortedExp, sortedScat, gin, gout, h),
            h);
      }
    }
    Tensor h = rand(M, 80);
    Tensor a = be.empty(DType.F32, M, 40);
    overwrites("swigluForward", () -> be.swigluForward(h, a), a);
    Tensor dH = be.empty(DType.F32, M, 80);
    Tensor dA = rand(M, 40);
    overwrites("swigluBackward", () -> be.swigluBackward(dA, h, dH), dH);
    Tensor gates = rand(N, K);
    Tensor grouped = be.empty(DType.F32, M, D);
    overwrites("group", () -> be.group(x, sortedScat, K, gates, grouped), grouped);
    Tensor expanded = rand(M, D);
    Tensor comb = be.empty(DType.F32, N, D);
    overwrites("combine", () -> be.combine(expanded, gates, K, comb), comb);
    Tensor dGates = be.empty(DType.F32, N, K);
    overwrites(
        "combineGatesBackward", () -> be.combineGatesBackward(x, expanded, K, dGates), dGates);

    Tensor lm = rand(N, 300);
    int[] tg = new int[N];
    for (int i = 0; i < N; i++) {
      tg[i] = i % 4 == 0 ? -100 : (i * 7) % 300;
    }
    Tensor targets = i32(be, tg, N);
    Tensor losses = be.empty(DType.F32, N);
    Tensor dLm = be.empty(DType.F32, N, 300);
    overwrites("crossEntropy", () -> be.crossEntropy(lm, targets, losses, dLm, 0.5f), losses, dLm);
    Tensor aux = be.empty(DType.F32, 1);
    Tensor dProbs = be.empty(DType.F32, N, E);
    Tensor mask = f32(be, maskOf(N), N);
    overwrites(
        "loadBalancingLoss",
        () -> be.loadBalancingLoss(probs, topI, mask, aux, dProbs, 0.02f),
        aux,
        dProbs);
    Tensor z = be.empty(DType.F32, 1);
    overwrites("routerZLoss", () -> be.routerZLoss(logits, mask, z, null, 1f), z);
    Tensor s = be.empty(DType.F32, 1);
    overwrites("sum", () -> be.sum(x, 0.5f, s), s);
  }

  private static float[] maskOf(int n) {
    float[] m = new float[n];
    for (int i = 0; i < n; i++) {
      m[i] = i < n - 5 ? 1 : 0;
    }
    return m;
  }

  @Test
  void accumulateOpsAddToTheirOutputs() {
    Tensor src = rand(N, D);
    Tensor dst = be.empty(DType.F32, N, D);
    accumulates("axpy", () -> be.axpy(0.5f, src, dst), dst);
    Tensor w = rand(60, D);
    Tensor y = be.empty(DType.F32, N, 60);
    accumulates("matmul beta=1", () -> be.matmul(x, false, w, true, y, 1, 1), y);
    Tensor ids = i32(be, new int[] {1, 2, 3, 1}, 4);
    Tensor dTable = be.empty(DType.F32, 5, D);
    Tensor dEmb = rand(4, D);
    accumulates("embeddingBackward", () -> be.embeddingBackward(ids, dEmb, dTable), dTable);
    Tensor nw = rand(D);
    Tensor normOut = be.empty(DType.F32, N, D);
    Tensor rstd = be.empty(DType.F32, N);
    be.rmsnormForward(x, null, nw, 1e-5f, normOut, rstd);
    Tensor dx = be.empty(DType.F32, N, D);
    Tensor dw = be.empty(DType.F32, D);
    accumulates("rmsnormBackward", () -> be.rmsnormBackward(src, x, nw, rstd, dx, dw), dx, dw);
    Tensor xg = rand(M, D);
    Tensor dy = rand(M, 40);
    Tensor dW = be.empty(DType.F32, E, 40, D);
    Tensor db = be.empty(DType.F32, E, 40);
    accumulates("groupXtY", () -> be.groupXtY(xg, dy, offsets, dW, db), dW, db);
    Tensor logits = rand(N, E);
    Tensor z = be.empty(DType.F32, 1);
    Tensor dLogits = be.empty(DType.F32, N, E);
    accumulates("routerZLoss", () -> be.routerZLoss(logits, null, z, dLogits, 1f), dLogits);
    Tensor acc = be.empty(DType.F32, 1);
    accumulates("sumSquares", () -> be.sumSquares(x, acc), acc);
  }
}
