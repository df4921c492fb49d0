package moetune.engine.backend.cpu;

import static moetune.engine.backend.cpu.CpuTesting.randn;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import moetune.engine.backend.AdamWCoefficients;
import moetune.engine.backend.AttnSpec;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * Runs every Backend op once, on inputs from a fixed seed and shapes large enough to split into
 * several parallel tasks, and returns every output by name. Used to compare backends with different
 * thread counts bit for bit.
 */
final class OpTour {
  private OpTour() {}

  static Map<String, float[]> run(CpuBackend be) {
    Random r = new Random(42);
    Map<String, float[]> out = new LinkedHashMap<>();
    // Dense: (70, 300) x (260, 300)^T, accumulated into a non-zero C.
    Tensor a = f(be, randn(r, 70 * 300, 1), 70, 300);
    Tensor w = f(be, randn(r, 260 * 300, 1), 260, 300);
    Tensor c = f(be, randn(r, 70 * 260, 1), 70, 260);
    be.matmul(a, false, w, true, c, 0.5f, 1f);
    out.put("matmul", get(be, c));
    Tensor dW = be.zeros(DType.F32, 300, 260);
    be.matmul(a, true, c, false, dW, 1f, 0f);
    out.put("matmul tA", get(be, dW));

    // Attention: B=2, T=40, H=4, Hkv=2, hd=16, packed documents, window 11.
    int b = 2;
    int t = 40;
    int[] doc = new int[b * t];
    for (int i = 0; i < doc.length; i++) {
      doc[i] = i % t < 25 ? 0 : 1;
    }
    AttnSpec spec = new AttnSpec(b, t, t, be.upload(HostTensor.ofInts(doc, doc.length)), 11);
    Tensor q = f(be, randn(r, b * t * 4 * 16, 1), b * t, 4, 16);
    Tensor k = f(be, randn(r, b * t * 2 * 16, 1), b * t, 2, 16);
    Tensor v = f(be, randn(r, b * t * 2 * 16, 1), b * t, 2, 16);
    Tensor pos = be.upload(HostTensor.ofInts(positions(b, t), b * t));
    be.ropeForward(q, pos, 1e6f);
    be.ropeForward(k, pos, 1e6f);
    Tensor o = be.empty(DType.F32, b * t, 4, 16);
    Tensor lse = be.empty(DType.F32, b * t, 4);
    be.attentionForward(q, k, v, spec, o, lse);
    out.put("attn out", get(be, o));
    out.put("attn lse", get(be, lse));
    Tensor dq = be.empty(DType.F32, b * t, 4, 16);
    Tensor dk = be.empty(DType.F32, b * t, 2, 16);
    Tensor dv = be.empty(DType.F32, b * t, 2, 16);
    be.attentionBackward(
        f(be, randn(r, b * t * 64, 1), b * t, 4, 16), q, k, v, o, lse, spec, dq, dk, dv);
    be.ropeBackward(dq, pos, 1e6f);
    out.put("attn dq", get(be, dq));
    out.put("attn dk", get(be, dk));
    out.put("attn dv", get(be, dv));

    // Norm, embedding, MoE and losses over N=80 tokens of D=64.
    int n = b * t;
    int d = 64;
    int vocab = 300;
    int[] ids = new int[n];
    for (int i = 0; i < n; i++) {
      ids[i] = r.nextInt(vocab);
    }
    Tensor idT = be.upload(HostTensor.ofInts(ids, n));
    Tensor table = f(be, randn(r, vocab * d, 1), vocab, d);
    Tensor x = be.empty(DType.F32, n, d);
    be.embeddingForward(idT, table, x);
    Tensor normW = f(be, randn(r, d, 1), d);
    Tensor xn = be.empty(DType.F32, n, d);
    Tensor rstd = be.empty(DType.F32, n);
    be.rmsnormForward(x, f(be, randn(r, n * d, 1), n, d), normW, 1e-5f, xn, rstd);
    out.put("rmsnorm", get(be, xn));
    int e = 5;
    int topK = 2;
    int ff = 48;
    Tensor gate = f(be, randn(r, e * d, 1), e, d);
    Tensor logits = be.empty(DType.F32, n, e);
    be.matmul(xn, false, gate, true, logits, 1f, 0f);
    Tensor probs = be.empty(DType.F32, n, e);
    Tensor topW = be.empty(DType.F32, n, topK);
    Tensor topI = be.empty(DType.I32, n, topK);
    be.routerTopK(logits, topK, probs, topW, topI);
    Tensor se = be.empty(DType.I32, n * topK);
    Tensor ss = be.empty(DType.I32, n * topK);
    Tensor offs = be.empty(DType.I32, e);
    be.flattenSortCount(topI, e, se, ss, offs);
    Tensor w1 = f(be, randn(r, e * 2 * ff * d, 0.2), e, 2 * ff, d);
    Tensor w2 = f(be, randn(r, e * d * ff, 0.2), e, d, ff);
    Tensor h = be.empty(DType.F32, n * topK, 2 * ff);
    be.scatter2scatter(xn, w1, null, true, topK, se, ss, false, true, h);
    Tensor act = be.empty(DType.F32, n * topK, ff);
    be.swigluForward(h, act);
    Tensor expanded = be.empty(DType.F32, n * topK, d);
    be.scatter2scatter(act, w2, null, true, 1, se, ss, true, false, expanded);
    Tensor y = be.empty(DType.F32, n, d);
    be.combine(expanded, topW, topK, y);
    out.put("moe y", get(be, y));
    Tensor dy = f(be, randn(r, n * d, 1), n, d);
    Tensor dGates = be.empty(DType.F32, n, topK);
    be.combineGatesBackward(dy, expanded, topK, dGates);
    Tensor dExp = be.empty(DType.F32, n * topK, d);
    be.group(dy, ss, topK, topW, dExp);
    Tensor dw2 = be.zeros(DType.F32, e, d, ff);
    be.groupXtY(act, dExp, offs, dw2, null);
    Tensor dA = be.empty(DType.F32, n * topK, ff);
    be.scatter2scatter(dExp, w2, null, false, 1, se, ss, true, true, dA);
    Tensor dH = be.empty(DType.F32, n * topK, 2 * ff);
    be.swigluBackward(dA, h, dH);
    Tensor dw1 = be.zeros(DType.F32, e, 2 * ff, d);
    Tensor xg = be.empty(DType.F32, n * topK, d);
    be.group(xn, ss, topK, null, xg);
    be.groupXtY(xg, dH, offs, dw1, null);
    out.put("moe dGates", get(be, dGates));
    out.put("moe dW1", get(be, dw1));
    out.put("moe dW2", get(be, dw2));
    Tensor dProbs = be.empty(DType.F32, n, e);
    Tensor aux = be.empty(DType.F32, 1);
    be.loadBalancingLoss(probs, topI, null, aux, dProbs, 0.02f);
    Tensor dLogits = be.empty(DType.F32, n, e);
    be.routerBackward(dGates, dProbs, probs, topI, dLogits);
    Tensor z = be.empty(DType.F32, 1);
    be.routerZLoss(logits, null, z, dLogits, 1e-3f);
    out.put("router dLogits", get(be, dLogits));
    out.put("aux", get(be, aux));
    out.put("z", get(be, z));

    Tensor dx = be.zeros(DType.F32, n, d);
    Tensor dNormW = be.zeros(DType.F32, d);
    be.rmsnormBackward(y, x, normW, rstd, dx, dNormW);
    out.put("rmsnorm dx", get(be, dx));
    out.put("rmsnorm dw", get(be, dNormW));
    Tensor dTable = be.zeros(DType.F32, vocab, d);
    be.embeddingBackward(idT, dx, dTable);
    out.put("embedding dTable", get(be, dTable));

    Tensor lm = be.empty(DType.F32, n, vocab);
    be.matmul(y, false, table, true, lm, 1f, 0f);
    Tensor losses = be.empty(DType.F32, n);
    int[] targets = ids.clone();
    targets[3] = -100;
    be.crossEntropy(lm, be.upload(HostTensor.ofInts(targets, n)), losses, lm, 1f / n);
    Tensor loss = be.empty(DType.F32, 1);
    be.sum(losses, 1f / n, loss);
    out.put("ce dLogits", get(be, lm));
    out.put("ce loss", get(be, loss));

    Tensor sq = be.zeros(DType.F32, 1);
    be.sumSquares(dTable, sq);
    be.sumSquares(dw1, sq);
    be.clipByNorm(dw1, sq, 0.1f);
    Tensor m = be.zeros(DType.F32, e, 2 * ff, d);
    Tensor vv = be.zeros(DType.F32, e, 2 * ff, d);
    be.adamwStep(w1, dw1, m, vv, AdamWCoefficients.of(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1), null);
    out.put("sumSquares", get(be, sq));
    out.put("adamw w1", get(be, w1));
    return out;
  }

  private static int[] positions(int b, int t) {
    int[] p = new int[b * t];
    for (int i = 0; i < p.length; i++) {
      p[i] = i % t;
    }
    return p;
  }

  private static Tensor f(CpuBackend be, float[] v, long... shape) {
    return be.upload(HostTensor.ofFloats(v, shape));
  }

  private static float[] get(CpuBackend be, Tensor t) {
    return be.download(t).toFloatArray();
  }
}
