package moetune.engine.backend.cuda;

import java.util.HashMap;
import java.util.Map;
import moetune.engine.backend.AttnSpec;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * cuDNN's fused flash attention (forward and backward) on moetune's layout, through {@link Cudnn}'s
 * backend API: the composite SDPA graph that cuDNN's runtime fusion engine matches (scaled Q K^T,
 * the causal and sliding-window masks from generated row/column indices, softmax with its
 * log-sum-exp saved, P V) and the flash backward graph (dO.O row sums, P recomputed from the saved
 * log-sum-exp, dV = P^T dO, dS = P (dO V^T - rowsum) scale, dK = dS^T Q, dQ = dS K through a float
 * accumulator, GQA by summing each kv head's group). The log-sum-exp is the same natural
 * log-sum-exp of the scaled scores that moetune's own kernels save, in the same (B*T, H) layout.
 * kernels/lab/cudnn/sdpa_probe.cu builds the same graphs in C.
 *
 * <p>Plans are built once per (batch, length, heads, kv heads, head dim, window) and cached. {@link
 * #unsupported} says which calls cuDNN does not take (they run on moetune's own kernels).
 */
final class CudnnAttention implements AutoCloseable {
  // uids of the graphs' real tensors (virtual ones are numbered from 1000 by Cudnn.Graph)
  private static final long Q = 1,
      KT = 2,
      V = 3,
      O = 4,
      STATS = 5,
      SCALE = 6,
      NEG_INF = 7,
      DO = 8,
      DQ = 9,
      DK = 10,
      DV = 11,
      ONE = 12,
      SOFT_SUM = 13,
      DQ_ACC = 14,
      VT = 15,
      WINDOW = 16;

  private record Key(int batch, int len, int hq, int hk, int hd, int window, boolean backward) {}

  private final Cudnn cudnn;

  /** A built graph and the host scalars its variant pack passes by value. */
  private record Plan(Cudnn.Graph graph, long scale, long negInf, long one, long window) {}

  private final Map<Key, Plan> plans = new HashMap<>();

  CudnnAttention(Cudnn cudnn) {
    this.cudnn = cudnn;
  }

  Cudnn cudnn() {
    return cudnn;
  }

  /** Why cuDNN does not take this call, or null when it does. */
  static String unsupported(AttnSpec spec, int hd, CudaTensor... ts) {
    if (spec.docIds() != null) {
      return "packed documents / padding (doc ids)";
    }
    if (spec.queryLen() != spec.keyLen()) {
      return "query length " + spec.queryLen() + " < key length " + spec.keyLen();
    }
    if (hd % 8 != 0 || hd > 128) {
      return "head dim " + hd + " (cuDNN takes multiples of 8 up to 128)";
    }
    for (CudaTensor t : ts) {
      if (t.dtype() != DType.BF16) {
        return t.dtype() + " tensors (bf16 only)";
      }
      if ((t.address() & 15) != 0) {
        return "a tensor not 16-byte aligned";
      }
    }
    return null;
  }

  private static long[] bshd(long b, long s, long h, long d) {
    return new long[] {s * h * d, d, h * d, 1};
  }

  private static long[] bhsd(long b, long s, long h, long d) {
    return new long[] {h * s * d, s * d, d, 1};
  }

  /** scale * Q K^T (float), masked: the scores both graphs start from. */
  private static long scores(
      Cudnn.Graph g, Key k, long q, long kt, long scale, long negInf, long window) {
    long[] sd = {k.batch, k.hq, k.len, k.len};
    long[] ss = {(long) k.hq * k.len * k.len, (long) k.len * k.len, k.len, 1};
    long sc = g.virt(Cudnn.FLOAT, sd, ss);
    g.matmul(q, kt, sc);
    long s1 = g.virt(Cudnn.FLOAT, sd, ss);
    g.pointwise(Cudnn.PW_MUL, sc, scale, s1);
    return mask(g, k, s1, negInf, window);
  }

  /** Keep col <= row (causal), and col + window > row when a window is set. */
  private static long mask(Cudnn.Graph g, Key k, long scores, long negInf, long window) {
    long[] sd = {k.batch, k.hq, k.len, k.len};
    long[] ss = {(long) k.hq * k.len * k.len, (long) k.len * k.len, k.len, 1};
    long row = g.virt(Cudnn.INT32, sd, ss);
    g.pointwise(Cudnn.PW_GEN_INDEX, scores, 0, 0, row, Cudnn.FLOAT, 2);
    long col = g.virt(Cudnn.INT32, sd, ss);
    g.pointwise(Cudnn.PW_GEN_INDEX, scores, 0, 0, col, Cudnn.FLOAT, 3);
    long keep = g.virt(Cudnn.BOOLEAN, sd, ss);
    g.pointwise(Cudnn.PW_CMP_GE, row, col, 0, keep, Cudnn.BOOLEAN, -1);
    long out = g.virt(Cudnn.FLOAT, sd, ss);
    g.pointwise(Cudnn.PW_BINARY_SELECT, scores, negInf, keep, out, Cudnn.FLOAT, -1);
    if (k.window > 0) {
      // fresh indices of the causal-masked scores, as cudnn-frontend's band mask builds them (the
      // fusion engine matched no plan when the first mask's index tensors were reused)
      long row2 = g.virt(Cudnn.INT32, sd, ss);
      g.pointwise(Cudnn.PW_GEN_INDEX, out, 0, 0, row2, Cudnn.FLOAT, 2);
      long col2 = g.virt(Cudnn.INT32, sd, ss);
      g.pointwise(Cudnn.PW_GEN_INDEX, out, 0, 0, col2, Cudnn.FLOAT, 3);
      long colw = g.virt(Cudnn.FLOAT, sd, ss);
      g.pointwise(Cudnn.PW_ADD, col2, window, colw);
      long inWindow = g.virt(Cudnn.BOOLEAN, sd, ss);
      g.pointwise(Cudnn.PW_CMP_GT, colw, row2, 0, inWindow, Cudnn.BOOLEAN, -1);
      long out2 = g.virt(Cudnn.FLOAT, sd, ss);
      g.pointwise(Cudnn.PW_BINARY_SELECT, out, negInf, inWindow, out2, Cudnn.FLOAT, -1);
      out = out2;
    }
    return out;
  }

  private Cudnn.Graph forwardGraph(Key k) {
    Cudnn.Graph g = cudnn.new Graph();
    try {
      long b = k.batch, s = k.len, hq = k.hq, hk = k.hk, d = k.hd;
      long[] sd = {b, hq, s, s}, ss = {hq * s * s, s * s, s, 1};
      long[] rd = {b, hq, s, 1}, rs = {s * hq, 1, hq, 1}; // lse (B*T, H)
      long q = g.tensor(Q, Cudnn.BFLOAT16, new long[] {b, hq, s, d}, bshd(b, s, hq, d));
      long kt =
          g.tensor(
              KT, Cudnn.BFLOAT16, new long[] {b, hk, d, s}, new long[] {s * hk * d, d, 1, hk * d});
      long v = g.tensor(V, Cudnn.BFLOAT16, new long[] {b, hk, s, d}, bshd(b, s, hk, d));
      long o = g.tensor(O, Cudnn.BFLOAT16, new long[] {b, hq, s, d}, bshd(b, s, hq, d));
      long stats = g.tensor(STATS, Cudnn.FLOAT, rd, rs);
      long scale = g.scalar(SCALE), negInf = g.scalar(NEG_INF);
      long window = k.window > 0 ? g.scalar(WINDOW) : 0;
      long s2 = scores(g, k, q, kt, scale, negInf, window);
      long m = g.virt(Cudnn.FLOAT, rd, new long[] {hq * s, s, 1, 1});
      g.reduction(Cudnn.RED_MAX, s2, m);
      long s3 = g.virt(Cudnn.FLOAT, sd, ss);
      g.pointwise(Cudnn.PW_SUB, s2, m, s3);
      long e = g.virt(Cudnn.FLOAT, sd, ss);
      g.pointwise(Cudnn.PW_EXP, s3, 0, e);
      long z = g.virt(Cudnn.FLOAT, rd, new long[] {hq * s, s, 1, 1});
      g.reduction(Cudnn.RED_ADD, e, z);
      long l = g.virt(Cudnn.FLOAT, rd, new long[] {hq * s, s, 1, 1});
      g.pointwise(Cudnn.PW_LOG, z, 0, l);
      g.pointwise(Cudnn.PW_ADD, m, l, stats);
      long p = g.virt(Cudnn.BFLOAT16, sd, ss);
      g.pointwise(Cudnn.PW_DIV, e, z, p);
      g.matmul(p, v, o);
      g.build("attention forward " + k);
      return g;
    } catch (RuntimeException ex) {
      g.close();
      throw ex;
    }
  }

  private Cudnn.Graph backwardGraph(Key k) {
    Cudnn.Graph g = cudnn.new Graph();
    try {
      long b = k.batch, s = k.len, hq = k.hq, hk = k.hk, d = k.hd;
      long[] sd = {b, hq, s, s}, ss = {hq * s * s, s * s, s, 1};
      long[] sts = {hq * s * s, s * s, 1, s}; // the transposes
      long[] rd = {b, hq, s, 1}, rs = {s * hq, 1, hq, 1}, rsc = {hq * s, s, 1, 1};
      long[] ktd = {b, hk, d, s}, kts = {s * hk * d, d, 1, hk * d};
      long[] qd = {b, hq, s, d}, kd = {b, hk, s, d};
      long q = g.tensor(Q, Cudnn.BFLOAT16, qd, bshd(b, s, hq, d));
      long kt = g.tensor(KT, Cudnn.BFLOAT16, ktd, kts);
      long vt = g.tensor(VT, Cudnn.BFLOAT16, ktd, kts);
      long o = g.tensor(O, Cudnn.BFLOAT16, qd, bshd(b, s, hq, d));
      long dO = g.tensor(DO, Cudnn.BFLOAT16, qd, bshd(b, s, hq, d));
      long stats = g.tensor(STATS, Cudnn.FLOAT, rd, rs);
      long dQ = g.tensor(DQ, Cudnn.BFLOAT16, qd, bshd(b, s, hq, d));
      long dK = g.tensor(DK, Cudnn.BFLOAT16, kd, bshd(b, s, hk, d));
      long dV = g.tensor(DV, Cudnn.BFLOAT16, kd, bshd(b, s, hk, d));
      long scale = g.scalar(SCALE), negInf = g.scalar(NEG_INF), one = g.scalar(ONE);
      long window = k.window > 0 ? g.scalar(WINDOW) : 0;
      long softSum = g.tensor(SOFT_SUM, Cudnn.FLOAT, rd, rsc);
      long dQacc = g.tensor(DQ_ACC, Cudnn.FLOAT, qd, bhsd(b, s, hq, d));
      // rowsum(dO * O)
      long a = g.virt(Cudnn.FLOAT, qd, bshd(b, s, hq, d));
      g.pointwise(Cudnn.PW_MUL, dO, o, a);
      long r = g.virt(Cudnn.FLOAT, rd, rsc);
      g.reduction(Cudnn.RED_ADD, a, r);
      g.pointwise(Cudnn.PW_MUL, r, one, softSum);
      // P = exp(masked scale Q K^T - lse)
      long s2 = scores(g, k, q, kt, scale, negInf, window);
      long s3 = g.virt(Cudnn.FLOAT, sd, ss);
      g.pointwise(Cudnn.PW_SUB, s2, stats, s3);
      long e = g.virt(Cudnn.FLOAT, sd, ss);
      g.pointwise(Cudnn.PW_EXP, s3, 0, e);
      // dV = P^T dO, summed over each kv head's query heads
      long pt = g.virt(Cudnn.BFLOAT16, sd, sts);
      g.reshape(e, pt);
      if (hq == hk) {
        g.matmul(pt, dO, dV);
      } else {
        long dVf = g.virt(Cudnn.BFLOAT16, qd, bhsd(b, s, hq, d));
        g.matmul(pt, dO, dVf);
        g.reduction(Cudnn.RED_ADD, dVf, dV);
      }
      // dS = scale P (dO V^T - rowsum)
      long dP = g.virt(Cudnn.FLOAT, sd, ss);
      g.matmul(dO, vt, dP);
      long t1 = g.virt(Cudnn.FLOAT, sd, ss);
      g.pointwise(Cudnn.PW_SUB, dP, softSum, t1);
      long t2 = g.virt(Cudnn.FLOAT, sd, ss);
      g.pointwise(Cudnn.PW_MUL, t1, e, t2);
      long dS = g.virt(Cudnn.FLOAT, sd, ss);
      g.pointwise(Cudnn.PW_MUL, t2, scale, dS);
      // dK = dS^T Q
      long dST = g.virt(Cudnn.BFLOAT16, sd, sts);
      g.reshape(dS, dST);
      if (hq == hk) {
        g.matmul(dST, q, dK);
      } else {
        long dKf = g.virt(Cudnn.BFLOAT16, qd, bhsd(b, s, hq, d));
        g.matmul(dST, q, dKf);
        g.reduction(Cudnn.RED_ADD, dKf, dK);
      }
      // dQ = dS K through a float accumulator
      long kk = g.virt(Cudnn.BFLOAT16, kd, bshd(b, s, hk, d));
      g.reshape(kt, kk);
      g.matmul(dS, kk, dQacc);
      g.pointwise(Cudnn.PW_IDENTITY, dQacc, 0, dQ);
      g.build("attention backward " + k);
      return g;
    } catch (RuntimeException ex) {
      g.close();
      throw ex;
    }
  }

  private Plan plan(Key k) {
    Plan p = plans.get(k);
    if (p == null) {
      Cudnn.Graph g = k.backward ? backwardGraph(k) : forwardGraph(k);
      p =
          new Plan(
              g,
              g.hostFloat((float) (1.0 / Math.sqrt(k.hd))),
              g.hostFloat(Float.NEGATIVE_INFINITY),
              g.hostFloat(1f),
              g.hostFloat(k.window));
      plans.put(k, p);
    }
    return p;
  }

  /** The engine cuDNN chose for the forward of this shape (building its plan if needed). */
  String engine(AttnSpec spec, int hq, int hk, int hd, boolean backward) {
    return plan(new Key(spec.batch(), spec.queryLen(), hq, hk, hd, spec.window(), backward))
        .graph()
        .engine();
  }

  void forward(
      CudaContext b,
      CudaTensor q,
      CudaTensor k,
      CudaTensor v,
      CudaTensor out,
      CudaTensor lse,
      AttnSpec spec,
      int hq,
      int hk,
      int hd) {
    Key key = new Key(spec.batch(), spec.queryLen(), hq, hk, hd, spec.window(), false);
    Plan p = plan(key);
    Cudnn.Graph g = p.graph();
    try (Tensor ws = b.empty(DType.F32, Math.max(1, (g.workspace() + 3) / 4))) {
      long w = b.ptr(ws, "attentionForward", "cuDNN workspace");
      long[] uids = spec.window() > 0 ? new long[8] : new long[7];
      long[] ptrs = new long[uids.length];
      int i = 0;
      uids[i] = Q;
      ptrs[i++] = q.address();
      uids[i] = KT;
      ptrs[i++] = k.address();
      uids[i] = V;
      ptrs[i++] = v.address();
      uids[i] = O;
      ptrs[i++] = out.address();
      uids[i] = STATS;
      ptrs[i++] = lse.address();
      uids[i] = SCALE;
      ptrs[i++] = p.scale();
      uids[i] = NEG_INF;
      ptrs[i++] = p.negInf();
      if (spec.window() > 0) {
        uids[i] = WINDOW;
        ptrs[i] = p.window();
      }
      g.execute(uids, ptrs, w, "cuDNN attention forward " + key);
    }
  }

  void backward(
      CudaContext b,
      CudaTensor dOut,
      CudaTensor q,
      CudaTensor k,
      CudaTensor v,
      CudaTensor out,
      CudaTensor lse,
      AttnSpec spec,
      CudaTensor dq,
      CudaTensor dk,
      CudaTensor dv,
      int hq,
      int hk,
      int hd) {
    Key key = new Key(spec.batch(), spec.queryLen(), hq, hk, hd, spec.window(), true);
    Plan p = plan(key);
    Cudnn.Graph g = p.graph();
    long rows = (long) spec.batch() * spec.queryLen() * hq;
    try (Tensor ws = b.empty(DType.F32, Math.max(1, (g.workspace() + 3) / 4));
        Tensor softSum = b.empty(DType.F32, rows);
        Tensor dqAcc = b.empty(DType.F32, rows * hd)) {
      String op = "attentionBackward";
      long[] uids = {
        Q, KT, VT, O, DO, STATS, DQ, DK, DV, SCALE, NEG_INF, ONE, SOFT_SUM, DQ_ACC, WINDOW
      };
      long[] ptrs = {
        q.address(),
        k.address(),
        v.address(),
        out.address(),
        dOut.address(),
        lse.address(),
        dq.address(),
        dk.address(),
        dv.address(),
        p.scale(),
        p.negInf(),
        p.one(),
        b.ptr(softSum, op, "cuDNN softmax sums"),
        b.ptr(dqAcc, op, "cuDNN dQ accumulator"),
        p.window()
      };
      int n = spec.window() > 0 ? uids.length : uids.length - 1;
      g.execute(
          java.util.Arrays.copyOf(uids, n),
          java.util.Arrays.copyOf(ptrs, n),
          b.ptr(ws, op, "cuDNN workspace"),
          "cuDNN attention backward " + key);
    }
  }

  @Override
  public void close() {
    for (Plan p : plans.values()) p.graph().close();
    plans.clear();
    cudnn.close();
  }
}
