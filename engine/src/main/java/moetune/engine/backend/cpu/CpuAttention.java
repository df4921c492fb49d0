package moetune.engine.backend.cpu;

import moetune.engine.backend.AttnSpec;
import moetune.engine.tensor.Tensor;

/**
 * Grouped-query attention, the readable way: one query at a time, one row of scores over the
 * keys it may see (AttnSpec's rules), softmax, weighted sum of values. Scores are (q . k) rounded
 * to float32 times the float32 scale hd^-0.5, as transformers' eager attention computes them;
 * sums run in double.
 *
 * <p>The backward is flash attention's, from the forward's out and lse: p = exp(s - lse), D =
 * rowsum(dOut * out), dS = p * (dOut . v - D). dq is computed query by query; dk and dv key by
 * key (looping over the query heads of the group and the queries that see the key), so every
 * gradient element is owned by one task and summed in a fixed order.
 */
final class CpuAttention {
  private static final int ROWS_PER_TASK = 16;

  private final Parallel par;

  CpuAttention(Parallel par) {
    this.par = par;
  }

  /** Shapes and the visibility rule of one call. */
  private static final class Geometry {
    final int b;
    final int tq;
    final int tk;
    final int h;
    final int hkv;
    final int hd;
    final int group; // query heads per key/value head
    final int window;
    final int[] doc; // (B*Tk) or null
    final int docOff;
    final float scale;

    Geometry(String op, Tensor q, Tensor k, Tensor v, AttnSpec spec) {
      b = spec.batch();
      tq = spec.queryLen();
      tk = spec.keyLen();
      hd = Math.toIntExact(q.cols());
      long qRows = (long) b * tq;
      long kRows = (long) b * tk;
      Args.check(q.numel() % (qRows * hd) == 0,
          op + ": q " + q.describe() + " is not (B*Tq=" + qRows + ", H, hd=" + hd + ")");
      h = Math.toIntExact(q.numel() / (qRows * hd));
      Args.check(k.numel() % (kRows * hd) == 0 && k.cols() == hd,
          op + ": k " + k.describe() + " is not (B*Tk=" + kRows + ", Hkv, hd=" + hd + ")");
      hkv = Math.toIntExact(k.numel() / (kRows * hd));
      Args.numel(op, "v", v, k.numel());
      Args.check(hkv > 0 && h % hkv == 0,
          op + ": " + h + " query heads are not a multiple of " + hkv + " key/value heads");
      group = h / hkv;
      window = spec.window();
      if (spec.docIds() != null) {
        CpuTensor d = Args.i32(op, "docIds", spec.docIds(), kRows);
        doc = d.ints();
        docOff = d.offset();
      } else {
        doc = null;
        docOff = 0;
      }
      scale = (float) Math.pow(hd, -0.5);
    }

    /** Whether key j of row bi is visible to the query at absolute position a of that row. */
    boolean visible(int bi, int a, int j) {
      if (j > a || (window > 0 && a - j >= window)) {
        return false;
      }
      if (doc != null) {
        int dj = doc[docOff + bi * tk + j];
        return dj >= 0 && dj == doc[docOff + bi * tk + a];
      }
      return true;
    }

    /** Smallest key index a query at absolute position a may see (before the doc rule). */
    int firstKey(int a) {
      return window > 0 ? Math.max(0, a - window + 1) : 0;
    }
  }

  /** Backend#attentionForward. */
  void forward(Tensor qt, Tensor kt, Tensor vt, AttnSpec spec, Tensor outt, Tensor lset) {
    String op = "attentionForward";
    CpuTensor q = Args.f32(op, "q", qt);
    CpuTensor k = Args.f32(op, "k", kt);
    CpuTensor v = Args.f32(op, "v", vt);
    Geometry g = new Geometry(op, q, k, v, spec);
    CpuTensor out = Args.f32(op, "out", outt, q.numel());
    CpuTensor lse = Args.f32(op, "lse", lset, (long) g.b * g.tq * g.h);
    float[] qv = q.floats();
    float[] kv = k.floats();
    float[] vv = v.floats();
    float[] ov = out.floats();
    float[] lv = lse.floats();
    int blocks = (g.tq + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
    par.forEach(g.b * g.h * blocks, task -> {
      int bi = task / (g.h * blocks);
      int hi = (task / blocks) % g.h;
      int i0 = (task % blocks) * ROWS_PER_TASK;
      int i1 = Math.min(g.tq, i0 + ROWS_PER_TASK);
      int kh = hi / g.group;
      float[] s = new float[g.tk];
      double[] acc = new double[g.hd];
      for (int i = i0; i < i1; i++) {
        int a = g.tk - g.tq + i;
        int qo = q.offset() + ((bi * g.tq + i) * g.h + hi) * g.hd;
        int oo = out.offset() + ((bi * g.tq + i) * g.h + hi) * g.hd;
        float max = Float.NEGATIVE_INFINITY;
        for (int j = g.firstKey(a); j <= a; j++) {
          if (g.visible(bi, a, j)) {
            int ko = k.offset() + ((bi * g.tk + j) * g.hkv + kh) * g.hd;
            s[j] = score(qv, qo, kv, ko, g);
            max = Math.max(max, s[j]);
          }
        }
        int lo = lse.offset() + (bi * g.tq + i) * g.h + hi;
        if (max == Float.NEGATIVE_INFINITY) {
          // No visible key: zero output, lse = -inf, no gradient (AttnSpec).
          java.util.Arrays.fill(ov, oo, oo + g.hd, 0f);
          lv[lo] = Float.NEGATIVE_INFINITY;
          continue;
        }
        double sum = 0;
        java.util.Arrays.fill(acc, 0);
        for (int j = g.firstKey(a); j <= a; j++) {
          if (g.visible(bi, a, j)) {
            double e = Math.exp(s[j] - max);
            sum += e;
            int vo = v.offset() + ((bi * g.tk + j) * g.hkv + kh) * g.hd;
            for (int d = 0; d < g.hd; d++) {
              acc[d] += e * vv[vo + d];
            }
          }
        }
        for (int d = 0; d < g.hd; d++) {
          ov[oo + d] = (float) (acc[d] / sum);
        }
        lv[lo] = (float) (max + Math.log(sum));
      }
    });
  }

  /** Backend#attentionBackward: dq, dk, dv overwrite. */
  void backward(
      Tensor doutt, Tensor qt, Tensor kt, Tensor vt, Tensor outt, Tensor lset, AttnSpec spec,
      Tensor dqt, Tensor dkt, Tensor dvt) {
    String op = "attentionBackward";
    CpuTensor q = Args.f32(op, "q", qt);
    CpuTensor k = Args.f32(op, "k", kt);
    CpuTensor v = Args.f32(op, "v", vt);
    Geometry g = new Geometry(op, q, k, v, spec);
    CpuTensor dOut = Args.f32(op, "dOut", doutt, q.numel());
    CpuTensor out = Args.f32(op, "out", outt, q.numel());
    CpuTensor lse = Args.f32(op, "lse", lset, (long) g.b * g.tq * g.h);
    CpuTensor dq = Args.f32(op, "dq", dqt, q.numel());
    CpuTensor dk = Args.f32(op, "dk", dkt, k.numel());
    CpuTensor dv = Args.f32(op, "dv", dvt, k.numel());
    float[] qv = q.floats();
    float[] kv = k.floats();
    float[] vv = v.floats();
    float[] gv = dOut.floats();
    float[] lv = lse.floats();

    // D[row, h] = dOut . out, per query and head.
    double[] dd = new double[g.b * g.tq * g.h];
    float[] ov = out.floats();
    par.forChunks(dd.length, 256, (r0, r1) -> {
      for (int r = r0; r < r1; r++) {
        dd[r] = dot(gv, dOut.offset() + r * g.hd, ov, out.offset() + r * g.hd, g.hd);
      }
    });

    // dq: query-centric.
    float[] dqv = dq.floats();
    int qBlocks = (g.tq + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
    par.forEach(g.b * g.h * qBlocks, task -> {
      int bi = task / (g.h * qBlocks);
      int hi = (task / qBlocks) % g.h;
      int i0 = (task % qBlocks) * ROWS_PER_TASK;
      int i1 = Math.min(g.tq, i0 + ROWS_PER_TASK);
      int kh = hi / g.group;
      double[] acc = new double[g.hd];
      for (int i = i0; i < i1; i++) {
        int a = g.tk - g.tq + i;
        int row = (bi * g.tq + i) * g.h + hi;
        int qo = q.offset() + row * g.hd;
        int go = dOut.offset() + row * g.hd;
        float l = lv[lse.offset() + row];
        java.util.Arrays.fill(acc, 0);
        if (l != Float.NEGATIVE_INFINITY) {
          for (int j = g.firstKey(a); j <= a; j++) {
            if (g.visible(bi, a, j)) {
              int ko = k.offset() + ((bi * g.tk + j) * g.hkv + kh) * g.hd;
              int vo = v.offset() + ((bi * g.tk + j) * g.hkv + kh) * g.hd;
              double p = Math.exp(score(qv, qo, kv, ko, g) - (double) l);
              double ds = p * (dot(gv, go, vv, vo, g.hd) - dd[row]);
              for (int d = 0; d < g.hd; d++) {
                acc[d] += ds * kv[ko + d];
              }
            }
          }
        }
        int dqo = dq.offset() + row * g.hd;
        for (int d = 0; d < g.hd; d++) {
          dqv[dqo + d] = (float) (acc[d] * g.scale);
        }
      }
    });

    // dk, dv: key-centric; a key j is seen by queries at absolute positions a in [j, j + window).
    float[] dkv = dk.floats();
    float[] dvv = dv.floats();
    int kBlocks = (g.tk + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
    par.forEach(g.b * g.hkv * kBlocks, task -> {
      int bi = task / (g.hkv * kBlocks);
      int kh = (task / kBlocks) % g.hkv;
      int j0 = (task % kBlocks) * ROWS_PER_TASK;
      int j1 = Math.min(g.tk, j0 + ROWS_PER_TASK);
      double[] accK = new double[g.hd];
      double[] accV = new double[g.hd];
      for (int j = j0; j < j1; j++) {
        int kRow = (bi * g.tk + j) * g.hkv + kh;
        int ko = k.offset() + kRow * g.hd;
        int vo = v.offset() + kRow * g.hd;
        java.util.Arrays.fill(accK, 0);
        java.util.Arrays.fill(accV, 0);
        int aEnd = g.window > 0 ? Math.min(g.tk, j + g.window) : g.tk;
        for (int hi = kh * g.group; hi < (kh + 1) * g.group; hi++) {
          for (int a = Math.max(j, g.tk - g.tq); a < aEnd; a++) {
            int i = a - (g.tk - g.tq);
            int row = (bi * g.tq + i) * g.h + hi;
            float l = lv[lse.offset() + row];
            if (l == Float.NEGATIVE_INFINITY || !g.visible(bi, a, j)) {
              continue;
            }
            int qo = q.offset() + row * g.hd;
            int go = dOut.offset() + row * g.hd;
            double p = Math.exp(score(qv, qo, kv, ko, g) - (double) l);
            double ds = p * (dot(gv, go, vv, vo, g.hd) - dd[row]);
            for (int d = 0; d < g.hd; d++) {
              accK[d] += ds * qv[qo + d];
              accV[d] += p * gv[go + d];
            }
          }
        }
        int dko = dk.offset() + kRow * g.hd;
        int dvo = dv.offset() + kRow * g.hd;
        for (int d = 0; d < g.hd; d++) {
          dkv[dko + d] = (float) (accK[d] * g.scale);
          dvv[dvo + d] = (float) accV[d];
        }
      }
    });
  }

  /** The scaled score: (q . k) rounded to float32, times the float32 scale. */
  private static float score(float[] qv, int qo, float[] kv, int ko, Geometry g) {
    return (float) dot(qv, qo, kv, ko, g.hd) * g.scale;
  }

  private static double dot(float[] a, int ao, float[] b, int bo, int n) {
    double s = 0;
    for (int d = 0; d < n; d++) {
      s += (double) a[ao + d] * b[bo + d];
    }
    return s;
  }
}
