package moetune.engine.backend.cpu;

import java.util.Arrays;
import moetune.engine.backend.AttnSpec;
import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.Tensor;

/**
 * Grouped-query attention, the readable way: one query at a time, one row of scores over the keys
 * it may see (AttnSpec's rules), softmax, weighted sum of values. Scores are (q . k) in float32
 * times the float32 scale hd^-0.5, as transformers' eager attention computes them.
 *
 * <p>The backward is flash attention's, from the forward's out and lse: p = exp(s - lse), D =
 * rowsum(dOut * out), dS = p * (dOut . v - D), dq = scale * dS k, dk = scale * dS^T q, dv = p^T
 * dOut. One backward task owns a (batch row, key/value head): it walks the query heads of the group
 * and their queries in order, so every dk and dv element is summed in a fixed order.
 *
 * <p>Keys and values are first copied into small per-head arrays (K^T as hd rows of Tk, V rows as
 * Tk arrays of hd): every inner loop then runs over two arrays indexed alike, which C2 vectorises,
 * and each sum over d or j is still taken in ascending order.
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

    /** heads: {H, Hkv, hd} as OpShapes' attention checks derived them. */
    Geometry(String op, int[] heads, AttnSpec spec) {
      b = spec.batch();
      tq = spec.queryLen();
      tk = spec.keyLen();
      long kRows = (long) b * tk;
      h = heads[0];
      hkv = heads[1];
      hd = heads[2];
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

    /** Element offset of row `row` (of B*T rows) and head `head` in a (B*T, heads, hd) tensor. */
    int at(CpuTensor t, int row, int heads, int head) {
      return t.offset() + (row * heads + head) * hd;
    }
  }

  /**
   * One (batch row, key/value head) of K or V as hd arrays of Tk (transposed) or Tk arrays of hd.
   */
  private static float[][] keysTransposed(CpuTensor t, Geometry g, int bi, int kh) {
    float[] src = t.floats();
    float[][] out = new float[g.hd][g.tk];
    for (int j = 0; j < g.tk; j++) {
      int o = g.at(t, bi * g.tk + j, g.hkv, kh);
      for (int d = 0; d < g.hd; d++) {
        out[d][j] = src[o + d];
      }
    }
    return out;
  }

  private static float[][] keyRows(CpuTensor t, Geometry g, int bi, int kh) {
    float[][] out = new float[g.tk][];
    for (int j = 0; j < g.tk; j++) {
      int o = g.at(t, bi * g.tk + j, g.hkv, kh);
      out[j] = Arrays.copyOfRange(t.floats(), o, o + g.hd);
    }
    return out;
  }

  /** dots[j] = sum over d (ascending) of x[d] * rowsT[d][j], for j in [lo, hi], in float32. */
  private static void dots(float[] x, float[][] rowsT, int lo, int hi, float[] dots) {
    Arrays.fill(dots, lo, hi + 1, 0f);
    for (int d = 0; d < x.length; d++) {
      float xd = x[d];
      float[] col = rowsT[d];
      for (int j = lo; j <= hi; j++) {
        dots[j] += xd * col[j];
      }
    }
  }

  /** y += a * x over hd elements. */
  private static void axpy(float a, float[] x, float[] y) {
    for (int d = 0; d < y.length; d++) {
      y[d] += a * x[d];
    }
  }

  /** Backend#attentionForward. */
  void forward(Tensor qt, Tensor kt, Tensor vt, AttnSpec spec, Tensor outt, Tensor lset) {
    String op = "attentionForward";
    CpuTensor q = Args.f32(op, "q", qt);
    CpuTensor k = Args.f32(op, "k", kt);
    CpuTensor v = Args.f32(op, "v", vt);
    CpuTensor out = Args.f32(op, "out", outt);
    CpuTensor lse = Args.f32(op, "lse", lset);
    Geometry g = new Geometry(op, OpShapes.attentionForward(q, k, v, spec, out, lse), spec);
    float[][][] kT = new float[g.b * g.hkv][][];
    float[][][] vRows = new float[g.b * g.hkv][][];
    par.forEach(
        g.b * g.hkv,
        bk -> {
          kT[bk] = keysTransposed(k, g, bk / g.hkv, bk % g.hkv);
          vRows[bk] = keyRows(v, g, bk / g.hkv, bk % g.hkv);
        });
    float[] qv = q.floats();
    float[] ov = out.floats();
    float[] lv = lse.floats();
    int blocks = (g.tq + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
    par.forEach(
        g.b * g.h * blocks,
        task -> {
          int bi = task / (g.h * blocks);
          int hi = (task / blocks) % g.h;
          int i0 = (task % blocks) * ROWS_PER_TASK;
          int i1 = Math.min(g.tq, i0 + ROWS_PER_TASK);
          int bk = bi * g.hkv + hi / g.group;
          float[] s = new float[g.tk];
          float[] acc = new float[g.hd];
          for (int i = i0; i < i1; i++) {
            int a = g.tk - g.tq + i;
            int lo = g.firstKey(a);
            int qo = g.at(q, bi * g.tq + i, g.h, hi);
            int oo = g.at(out, bi * g.tq + i, g.h, hi);
            int lseAt = lse.offset() + (bi * g.tq + i) * g.h + hi;
            dots(Arrays.copyOfRange(qv, qo, qo + g.hd), kT[bk], lo, a, s);
            float max = Float.NEGATIVE_INFINITY;
            for (int j = lo; j <= a; j++) {
              s[j] = g.visible(bi, a, j) ? s[j] * g.scale : Float.NEGATIVE_INFINITY;
              max = Math.max(max, s[j]);
            }
            if (max == Float.NEGATIVE_INFINITY) {
              // No visible key: zero output, lse = -inf, no gradient (AttnSpec).
              Arrays.fill(ov, oo, oo + g.hd, 0f);
              lv[lseAt] = Float.NEGATIVE_INFINITY;
              continue;
            }
            double sum = 0;
            Arrays.fill(acc, 0f);
            for (int j = lo; j <= a; j++) {
              float e = (float) Math.exp(s[j] - max); // 0 for masked keys
              sum += e;
              axpy(e, vRows[bk][j], acc);
            }
            float fs = (float) sum;
            for (int d = 0; d < g.hd; d++) {
              ov[oo + d] = acc[d] / fs;
            }
            lv[lseAt] = (float) (max + Math.log(sum));
          }
        });
  }

  /** Backend#attentionBackward: dq, dk, dv overwrite. */
  void backward(
      Tensor doutt,
      Tensor qt,
      Tensor kt,
      Tensor vt,
      Tensor outt,
      Tensor lset,
      AttnSpec spec,
      Tensor dqt,
      Tensor dkt,
      Tensor dvt) {
    String op = "attentionBackward";
    CpuTensor q = Args.f32(op, "q", qt);
    CpuTensor k = Args.f32(op, "k", kt);
    CpuTensor v = Args.f32(op, "v", vt);
    CpuTensor dOut = Args.f32(op, "dOut", doutt);
    CpuTensor out = Args.f32(op, "out", outt);
    CpuTensor lse = Args.f32(op, "lse", lset);
    CpuTensor dq = Args.f32(op, "dq", dqt);
    CpuTensor dk = Args.f32(op, "dk", dkt);
    CpuTensor dv = Args.f32(op, "dv", dvt);
    Geometry g =
        new Geometry(
            op, OpShapes.attentionBackward(dOut, q, k, v, out, lse, spec, dq, dk, dv), spec);
    float[] lv = lse.floats();
    par.forEach(
        g.b * g.hkv,
        bk -> {
          int bi = bk / g.hkv;
          int kh = bk % g.hkv;
          float[][] kT = keysTransposed(k, g, bi, kh);
          float[][] kRows = keyRows(k, g, bi, kh);
          float[][] vT = keysTransposed(v, g, bi, kh);
          // dk and dv accumulate transposed, (hd, Tk), so their updates run along the keys.
          float[][] dkT = new float[g.hd][g.tk];
          float[][] dvT = new float[g.hd][g.tk];
          float[] s = new float[g.tk];
          float[] dp = new float[g.tk];
          float[] pr = new float[g.tk];
          float[] ds = new float[g.tk];
          float[] dqAcc = new float[g.hd];
          for (int hi = kh * g.group; hi < (kh + 1) * g.group; hi++) {
            for (int i = 0; i < g.tq; i++) {
              int row = bi * g.tq + i;
              int qo = g.at(q, row, g.h, hi);
              float l = lv[lse.offset() + row * g.h + hi];
              Arrays.fill(dqAcc, 0f);
              if (l != Float.NEGATIVE_INFINITY) {
                int a = g.tk - g.tq + i;
                int lo = g.firstKey(a);
                float[] qi = Arrays.copyOfRange(q.floats(), qo, qo + g.hd);
                int go = g.at(dOut, row, g.h, hi);
                float[] gi = Arrays.copyOfRange(dOut.floats(), go, go + g.hd);
                float di = dot(gi, out.floats(), g.at(out, row, g.h, hi));
                dots(qi, kT, lo, a, s);
                dots(gi, vT, lo, a, dp);
                for (int j = lo; j <= a; j++) {
                  boolean seen = g.visible(bi, a, j);
                  pr[j] = seen ? (float) Math.exp(s[j] * g.scale - (double) l) : 0f;
                  ds[j] = seen ? pr[j] * (dp[j] - di) : 0f;
                  axpy(ds[j], kRows[j], dqAcc);
                }
                for (int d = 0; d < g.hd; d++) {
                  float qd = qi[d];
                  float gd = gi[d];
                  float[] dkd = dkT[d];
                  float[] dvd = dvT[d];
                  for (int j = lo; j <= a; j++) {
                    dkd[j] += ds[j] * qd;
                    dvd[j] += pr[j] * gd;
                  }
                }
              }
              int dqo = g.at(dq, row, g.h, hi);
              for (int d = 0; d < g.hd; d++) {
                dq.floats()[dqo + d] = dqAcc[d] * g.scale;
              }
            }
          }
          for (int j = 0; j < g.tk; j++) {
            int ko = g.at(dk, bi * g.tk + j, g.hkv, kh);
            int vo = g.at(dv, bi * g.tk + j, g.hkv, kh);
            for (int d = 0; d < g.hd; d++) {
              dk.floats()[ko + d] = dkT[d][j] * g.scale;
              dv.floats()[vo + d] = dvT[d][j];
            }
          }
        });
  }

  /**
   * D = dOut . out for one query and head, in float32 summed over d in ascending order exactly as
   * {@link #dots} sums dOut . v: a query that sees a single key has out == v and gets dS = 0
   * exactly, as the exact gradient is.
   */
  private static float dot(float[] g, float[] out, int off) {
    float s = 0f;
    for (int d = 0; d < g.length; d++) {
      s += g[d] * out[off + d];
    }
    return s;
  }
}
