package moetune.engine.backend;

import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * The shape contract of each {@link Backend} op, written once and checked by both backends: {@code
 * CpuRmsNorm} and {@code CudaRmsNorm} call {@link #rmsnormForward} after checking that each tensor
 * lives on them (and, on the CPU, is float32). A failure is an IllegalArgumentException naming the
 * op, the argument and the shapes, as Backend's contract asks; the dims a check derives are
 * returned so the op does not derive them again.
 *
 * <p>Shape letters as in {@link Backend}: N rows (tokens), D hidden, V vocabulary, E experts, K
 * experts per token, F expert width.
 */
public final class OpShapes {
  private OpShapes() {}

  // ---------------------------------------------------------------- helpers

  /** Throws with message unless ok. The message is built eagerly: per call, never per element. */
  public static void check(boolean ok, String message) {
    if (!ok) {
      throw new IllegalArgumentException(message);
    }
  }

  /** t has exactly {@code expected} elements. */
  public static void numel(String op, String name, Tensor t, long expected) {
    if (t.numel() != expected) {
      throw new IllegalArgumentException(
          op
              + ": "
              + name
              + " "
              + t.describe()
              + " has "
              + t.numel()
              + " elements, expected "
              + expected);
    }
  }

  /** The number of rows of {@code t} read as (rows, cols); fails if numel is not a multiple. */
  public static int rows(String op, String name, Tensor t, long cols) {
    if (cols <= 0 || t.numel() % cols != 0) {
      throw new IllegalArgumentException(
          op + ": " + name + " " + t.describe() + " is not a whole number of rows of " + cols);
    }
    return Math.toIntExact(t.numel() / cols);
  }

  /** t has dtype d. */
  public static void dtype(String op, String name, Tensor t, DType d) {
    check(t.dtype() == d, op + ": " + name + " must be " + d + ", got " + t.describe());
  }

  /** The number of columns of t read as a matrix: its last dimension (1 for a scalar). */
  private static int cols(Tensor t) {
    return Math.toIntExact(t.cols());
  }

  // ---------------------------------------------------------------- elementwise

  /** add: a, b and out hold the same number of elements. */
  public static void add(Tensor a, Tensor b, Tensor out) {
    numel("add", "b", b, a.numel());
    numel("add", "out", out, a.numel());
  }

  /** axpy: src and dst hold the same number of elements. */
  public static void axpy(Tensor src, Tensor dst) {
    numel("axpy", "dst", dst, src.numel());
  }

  /**
   * gateRowsBackward: rows (M, C); x (M / xFan, C) or null (then dGates must be null); gateIdx (M)
   * or null; gates and dGates (M), dGates may be null. Returns {M, C}.
   */
  public static int[] gateRowsBackward(
      Tensor rows, Tensor x, int xFan, Tensor gateIdx, Tensor gates, Tensor dGates) {
    String op = "gateRowsBackward";
    int m = Math.toIntExact(rows.rows());
    int c = Math.toIntExact(rows.cols());
    check(xFan > 0 && m % xFan == 0, op + ": xFan=" + xFan + " does not divide M=" + m);
    check(x != null || dGates == null, op + ": dGates needs x (the forward's input rows)");
    if (x != null) {
      check(
          x.cols() == c && x.rows() == m / xFan,
          op
              + ": x "
              + x.describe()
              + " should be ("
              + m / xFan
              + ", "
              + c
              + ") for rows "
              + rows.describe()
              + " and xFan="
              + xFan);
    }
    if (gateIdx != null) {
      numel(op, "gateIdx", gateIdx, m);
    }
    numel(op, "gates", gates, m);
    if (dGates != null) {
      numel(op, "dGates", dGates, m);
    }
    return new int[] {m, c};
  }

  /** copy: src and dst hold the same number of elements. */
  public static void copy(Tensor src, Tensor dst) {
    numel("copy", "dst", dst, src.numel());
  }

  // ---------------------------------------------------------------- matmul

  /**
   * matmul: op(A) (M, K) and op(B) (K, N) from A and B read as matrices (their last dimension is
   * the column count), C holds M * N elements. Returns {M, N, K}.
   */
  public static long[] matmul(Tensor a, boolean transA, Tensor b, boolean transB, Tensor c) {
    long m = transA ? a.cols() : a.rows(), k = transA ? a.rows() : a.cols();
    long kb = transB ? b.cols() : b.rows(), n = transB ? b.rows() : b.cols();
    check(
        k == kb && c.numel() == m * n,
        "matmul: op(A) is ("
            + m
            + ", "
            + k
            + ") from A "
            + a.describe()
            + (transA ? "^T" : "")
            + ", op(B) is ("
            + kb
            + ", "
            + n
            + ") from B "
            + b.describe()
            + (transB ? "^T" : "")
            + ", C "
            + c.describe()
            + " must be ("
            + m
            + ", "
            + n
            + ")");
    return new long[] {m, n, k};
  }

  // ---------------------------------------------------------------- embedding

  /**
   * embeddingForward / embeddingBackward: ids I32 (N), table (V, D), rows (N, D) (out or dOut).
   * Returns {N, D, V}.
   */
  public static int[] embedding(String op, Tensor ids, Tensor table, String rowsName, Tensor rows) {
    dtype(op, "ids", ids, DType.I32);
    int n = Math.toIntExact(ids.numel()), d = cols(table), v = Math.toIntExact(table.rows());
    numel(op, rowsName, rows, (long) n * d);
    return new int[] {n, d, v};
  }

  // ---------------------------------------------------------------- rmsnorm

  /**
   * rmsnormForward: w (D); residual (N, D); delta (optional), out (N, D); rstd F32 (N). Returns {N,
   * D}.
   */
  public static int[] rmsnormForward(
      Tensor residual, Tensor delta, Tensor w, Tensor out, Tensor rstd) {
    String op = "rmsnormForward";
    int d = Math.toIntExact(w.numel());
    int n = rows(op, "residual", residual, d);
    if (delta != null) numel(op, "delta", delta, (long) n * d);
    numel(op, "out", out, (long) n * d);
    numel(op, "rstd", rstd, n);
    dtype(op, "rstd", rstd, DType.F32);
    return new int[] {n, d};
  }

  /** rmsnormBackward: w (D); x, dOut, dx (N, D); rstd F32 (N); dw (D) optional. Returns {N, D}. */
  public static int[] rmsnormBackward(
      Tensor dOut, Tensor x, Tensor w, Tensor rstd, Tensor dx, Tensor dw) {
    String op = "rmsnormBackward";
    int d = Math.toIntExact(w.numel());
    int n = rows(op, "x", x, d);
    numel(op, "dOut", dOut, (long) n * d);
    numel(op, "rstd", rstd, n);
    dtype(op, "rstd", rstd, DType.F32);
    numel(op, "dx", dx, (long) n * d);
    if (dw != null) numel(op, "dw", dw, d);
    return new int[] {n, d};
  }

  // ---------------------------------------------------------------- rope

  /**
   * ropeForward / ropeBackward: x (N, heads, hd) with an even hd, positions I32 (N), N >= 1.
   * Returns {N, heads, hd}.
   */
  public static int[] rope(String op, Tensor x, Tensor positions) {
    dtype(op, "positions", positions, DType.I32);
    int hd = cols(x);
    check(
        x.rank() >= 2 && hd % 2 == 0,
        op + ": x " + x.describe() + " must be (N, heads, hd) with an even head dim");
    int n = Math.toIntExact(positions.numel());
    check(
        n > 0 && x.numel() % ((long) n * hd) == 0,
        op + ": x " + x.describe() + " is not (N, heads, " + hd + ") for N=" + n + " positions");
    return new int[] {n, Math.toIntExact(x.numel() / ((long) n * hd)), hd};
  }

  // ---------------------------------------------------------------- attention

  /**
   * The attention ops' q, k, v against the spec: q (B*Tq, H, hd), k and v (B*Tk, Hkv, hd) with H a
   * multiple of Hkv; docIds (if any) I32 (its length is AttnSpec's). Returns {H, Hkv, hd}.
   */
  public static int[] attention(String op, Tensor q, Tensor k, Tensor v, AttnSpec spec) {
    long hd = q.cols();
    long qRows = (long) spec.batch() * spec.queryLen(), kRows = (long) spec.batch() * spec.keyLen();
    check(
        hd > 0 && q.numel() % (qRows * hd) == 0,
        op + ": q " + q.describe() + " is not (B*Tq=" + qRows + ", H, hd=" + hd + ")");
    check(
        k.cols() == hd && k.numel() % (kRows * hd) == 0,
        op + ": k " + k.describe() + " is not (B*Tk=" + kRows + ", Hkv, hd=" + hd + ")");
    numel(op, "v", v, k.numel());
    long h = q.numel() / (qRows * hd), hkv = k.numel() / (kRows * hd);
    check(
        hkv > 0 && h % hkv == 0,
        op + ": " + h + " query heads are not a multiple of " + hkv + " key/value heads");
    if (spec.docIds() != null) dtype(op, "docIds", spec.docIds(), DType.I32);
    return new int[] {(int) h, (int) hkv, (int) hd};
  }

  /** attentionForward: the q/k/v of {@link #attention}; out like q; lse F32 (B*Tq*H). */
  public static int[] attentionForward(
      Tensor q, Tensor k, Tensor v, AttnSpec spec, Tensor out, Tensor lse) {
    String op = "attentionForward";
    int[] d = attention(op, q, k, v, spec);
    numel(op, "out", out, q.numel());
    numel(op, "lse", lse, (long) spec.batch() * spec.queryLen() * d[0]);
    dtype(op, "lse", lse, DType.F32);
    return d;
  }

  /**
   * attentionBackward: the forward's shapes; dOut, out and dq like q; dk and dv like k; lse F32
   * (B*Tq*H). Returns {H, Hkv, hd}.
   */
  public static int[] attentionBackward(
      Tensor dOut,
      Tensor q,
      Tensor k,
      Tensor v,
      Tensor out,
      Tensor lse,
      AttnSpec spec,
      Tensor dq,
      Tensor dk,
      Tensor dv) {
    String op = "attentionBackward";
    int[] d = attention(op, q, k, v, spec);
    numel(op, "dOut", dOut, q.numel());
    numel(op, "out", out, q.numel());
    numel(op, "lse", lse, (long) spec.batch() * spec.queryLen() * d[0]);
    dtype(op, "lse", lse, DType.F32);
    numel(op, "dq", dq, q.numel());
    numel(op, "dk", dk, k.numel());
    numel(op, "dv", dv, k.numel());
    return d;
  }

  // ---------------------------------------------------------------- swiglu

  /** swigluForward: a (M, F), h (M, 2F). Returns {M, F}. */
  public static int[] swigluForward(Tensor h, Tensor a) {
    String op = "swigluForward";
    int f = cols(a);
    int m = rows(op, "a", a, f);
    numel(op, "h", h, 2L * m * f);
    return new int[] {m, f};
  }

  /** swigluBackward: dA (M, F), h and dH (M, 2F). Returns {M, F}. */
  public static int[] swigluBackward(Tensor dA, Tensor h, Tensor dH) {
    String op = "swigluBackward";
    int f = cols(dA);
    int m = rows(op, "dA", dA, f);
    numel(op, "h", h, 2L * m * f);
    numel(op, "dH", dH, 2L * m * f);
    return new int[] {m, f};
  }

  // ---------------------------------------------------------------- router

  /**
   * routerTopK: logits (N, E), 1 <= k <= E; probs F32 (N, E); topWeights F32 (N, K); topIdx I32 (N,
   * K). Returns {N, E}.
   */
  public static int[] routerTopK(
      Tensor logits, int k, Tensor probs, Tensor topWeights, Tensor topIdx) {
    String op = "routerTopK";
    int e = cols(logits);
    int n = rows(op, "logits", logits, e);
    check(k >= 1 && k <= e, op + ": k=" + k + " must be in [1, E=" + e + "]");
    numel(op, "probs", probs, (long) n * e);
    numel(op, "topWeights", topWeights, (long) n * k);
    numel(op, "topIdx", topIdx, (long) n * k);
    dtype(op, "probs", probs, DType.F32);
    dtype(op, "topWeights", topWeights, DType.F32);
    dtype(op, "topIdx", topIdx, DType.I32);
    return new int[] {n, e};
  }

  /**
   * routerBackward: probs F32 (N, E); topIdx I32 (N, K); dTopWeights F32 (N, K) and dProbs F32 (N,
   * E) optional; dLogits (N, E). Returns {N, E, K}.
   */
  public static int[] routerBackward(
      Tensor dTopWeights, Tensor dProbs, Tensor probs, Tensor topIdx, Tensor dLogits) {
    String op = "routerBackward";
    int e = cols(probs);
    int n = rows(op, "probs", probs, e);
    dtype(op, "probs", probs, DType.F32);
    dtype(op, "topIdx", topIdx, DType.I32);
    int k = n == 0 ? 0 : rows(op, "topIdx", topIdx, n);
    if (dTopWeights != null) {
      numel(op, "dTopWeights", dTopWeights, (long) n * k);
      dtype(op, "dTopWeights", dTopWeights, DType.F32);
    }
    if (dProbs != null) {
      numel(op, "dProbs", dProbs, (long) n * e);
      dtype(op, "dProbs", dProbs, DType.F32);
    }
    numel(op, "dLogits", dLogits, (long) n * e);
    return new int[] {n, e, k};
  }

  /**
   * flattenSortCount: topIdx I32 (M = N*K flat); sortedExpertIdxs, sortedScatteredIdxs I32 (M);
   * expertOffsets I32 (E), E >= 1. Returns M.
   */
  public static long flattenSortCount(
      Tensor topIdx,
      int numExperts,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      Tensor expertOffsets) {
    String op = "flattenSortCount";
    check(numExperts > 0, op + ": E=" + numExperts + " must be >= 1");
    long m = topIdx.numel();
    numel(op, "sortedExpertIdxs", sortedExpertIdxs, m);
    numel(op, "sortedScatteredIdxs", sortedScatteredIdxs, m);
    numel(op, "expertOffsets", expertOffsets, numExperts);
    dtype(op, "topIdx", topIdx, DType.I32);
    dtype(op, "sortedExpertIdxs", sortedExpertIdxs, DType.I32);
    dtype(op, "sortedScatteredIdxs", sortedScatteredIdxs, DType.I32);
    dtype(op, "expertOffsets", expertOffsets, DType.I32);
    return m;
  }

  // ---------------------------------------------------------------- grouped products

  /**
   * scatter2scatter: W (E, O, I); sortedExpertIdxs and sortedScatteredIdxs I32 (M); fanOut >= 1,
   * dividing M unless the input is grouped; x (M, in) grouped or (M / fanOut, in); y (M, out); bias
   * (E, out) optional; in = I and out = O with transW, the other way round without. Returns {E, in,
   * out, M}.
   */
  public static int[] scatter2scatter(
      Tensor x,
      Tensor w,
      Tensor bias,
      boolean transW,
      int fanOut,
      Tensor sortedExpertIdxs,
      Tensor sortedScatteredIdxs,
      boolean groupedIn,
      Tensor y) {
    String op = "scatter2scatter";
    check(w.rank() == 3, op + ": W " + w.describe() + " must be (E, O, I)");
    long e = w.dim(0), o = w.dim(1), i = w.dim(2);
    long in = transW ? i : o, out = transW ? o : i;
    dtype(op, "sortedExpertIdxs", sortedExpertIdxs, DType.I32);
    dtype(op, "sortedScatteredIdxs", sortedScatteredIdxs, DType.I32);
    long m = sortedExpertIdxs.numel();
    numel(op, "sortedScatteredIdxs", sortedScatteredIdxs, m);
    check(
        fanOut >= 1 && (groupedIn || m % fanOut == 0),
        op + ": fanOut=" + fanOut + " must be >= 1 and divide the " + m + " routed rows");
    long xRows = groupedIn ? m : m / fanOut;
    check(
        x.numel() == xRows * in,
        op
            + ": x "
            + x.describe()
            + " must be ("
            + xRows
            + ", "
            + in
            + ") for "
            + m
            + " routed rows, k="
            + fanOut
            + (groupedIn ? ", grouped" : "")
            + " and W "
            + w.describe()
            + (transW ? "^T" : ""));
    numel(op, "y", y, m * out);
    if (bias != null) numel(op, "bias", bias, e * out);
    return new int[] {(int) e, (int) in, (int) out, Math.toIntExact(m)};
  }

  /**
   * groupXtY: dW (E, O, I); expertOffsets I32 (E); x (M, I) and dy (M, O) grouped, M read from x;
   * db (E, O) optional. (That expertOffsets ends at M is the CPU's to check: it reads the offsets
   * on the host.) Returns {E, O, I, M}.
   */
  public static int[] groupXtY(Tensor x, Tensor dy, Tensor expertOffsets, Tensor dW, Tensor db) {
    String op = "groupXtY";
    check(dW.rank() == 3, op + ": dW " + dW.describe() + " must be (E, O, I)");
    long e = dW.dim(0), o = dW.dim(1), i = dW.dim(2);
    numel(op, "expertOffsets", expertOffsets, e);
    dtype(op, "expertOffsets", expertOffsets, DType.I32);
    long m = i == 0 ? 0 : rows(op, "x", x, i);
    numel(op, "dy", dy, m * o);
    if (db != null) numel(op, "db", db, e * o);
    return new int[] {(int) e, (int) o, (int) i, Math.toIntExact(m)};
  }

  // ---------------------------------------------------------------- group, combine

  /**
   * group: sortedScatteredIdxs I32 (M), fanOut >= 1 dividing M; x (M / fanOut, D); out (M, D);
   * gates F32 (M) optional. Returns {M, D}.
   */
  public static int[] group(
      Tensor x, Tensor sortedScatteredIdxs, int fanOut, Tensor gates, Tensor out) {
    String op = "group";
    dtype(op, "sortedScatteredIdxs", sortedScatteredIdxs, DType.I32);
    int m = Math.toIntExact(sortedScatteredIdxs.numel());
    check(
        fanOut >= 1 && m % fanOut == 0,
        op + ": fanOut=" + fanOut + " must be >= 1 and divide the " + m + " routed rows");
    int d = cols(x);
    numel(op, "x", x, (long) (m / fanOut) * d);
    numel(op, "out", out, (long) m * d);
    if (gates != null) {
      numel(op, "gates", gates, m);
      dtype(op, "gates", gates, DType.F32);
    }
    return new int[] {m, d};
  }

  /** combine: y (N, D); k >= 1; expanded (N*K, D); gates F32 (N, K) optional. Returns {N, D}. */
  public static int[] combine(Tensor expanded, Tensor gates, int k, Tensor y) {
    String op = "combine";
    int d = cols(y), n = Math.toIntExact(y.rows());
    check(k >= 1, op + ": k=" + k + " must be >= 1");
    numel(op, "expanded", expanded, (long) n * k * d);
    if (gates != null) {
      numel(op, "gates", gates, (long) n * k);
      dtype(op, "gates", gates, DType.F32);
    }
    return new int[] {n, d};
  }

  /** combineGatesBackward: dY (N, D); k >= 1; expanded (N*K, D); dGates F32 (N, K). */
  public static int[] combineGatesBackward(Tensor dY, Tensor expanded, int k, Tensor dGates) {
    String op = "combineGatesBackward";
    int d = cols(dY), n = Math.toIntExact(dY.rows());
    check(k >= 1, op + ": k=" + k + " must be >= 1");
    numel(op, "expanded", expanded, (long) n * k * d);
    numel(op, "dGates", dGates, (long) n * k);
    dtype(op, "dGates", dGates, DType.F32);
    return new int[] {n, d};
  }

  // ---------------------------------------------------------------- losses

  /**
   * crossEntropy: logits (N, V); targets I32 (N); losses F32 (N); dLogits (N, V) optional. Returns
   * {N, V}.
   */
  public static int[] crossEntropy(Tensor logits, Tensor targets, Tensor losses, Tensor dLogits) {
    String op = "crossEntropy";
    int n = Math.toIntExact(logits.rows()), v = cols(logits);
    numel(op, "targets", targets, n);
    dtype(op, "targets", targets, DType.I32);
    numel(op, "losses", losses, n);
    dtype(op, "losses", losses, DType.F32);
    if (dLogits != null) numel(op, "dLogits", dLogits, (long) n * v);
    return new int[] {n, v};
  }

  /**
   * The router losses' routing: probs F32 (R, E); topIdx I32 (R, K); rowMask F32 (R) optional.
   * Returns {R, E, K}.
   */
  private static int[] routing(String op, Tensor probs, Tensor topIdx, Tensor rowMask) {
    dtype(op, "probs", probs, DType.F32);
    dtype(op, "topIdx", topIdx, DType.I32);
    int r = Math.toIntExact(probs.rows()), e = cols(probs);
    int k = r == 0 ? 0 : rows(op, "topIdx", topIdx, r);
    rowMask(op, rowMask, r);
    return new int[] {r, e, k};
  }

  /** An optional row mask: F32 (R). */
  private static void rowMask(String op, Tensor rowMask, long r) {
    if (rowMask != null) {
      numel(op, "rowMask", rowMask, r);
      dtype(op, "rowMask", rowMask, DType.F32);
    }
  }

  /** A loss's output: F32 holding one value. */
  private static void scalar(String op, String name, Tensor t) {
    numel(op, name, t, 1);
    dtype(op, name, t, DType.F32);
  }

  /**
   * expertLoadStats: the routing of L layers stacked (probs F32 (R, E), topIdx I32 (R, K), rowMask
   * F32 (R) optional); acc F32 (L, E+2) with L dividing R. Returns {R, E, K, L}.
   */
  public static int[] expertLoadStats(Tensor probs, Tensor topIdx, Tensor rowMask, Tensor acc) {
    String op = "expertLoadStats";
    int[] rek = routing(op, probs, topIdx, rowMask);
    int r = rek[0], e = rek[1];
    dtype(op, "acc", acc, DType.F32);
    int layers = Math.toIntExact(acc.rows());
    check(
        acc.cols() == e + 2 && layers >= 1 && r % layers == 0,
        op
            + ": acc "
            + acc.describe()
            + " must be (L, E+2) = (L, "
            + (e + 2)
            + ") with L dividing the "
            + r
            + " rows of probs");
    return new int[] {r, e, rek[2], layers};
  }

  /**
   * loadBalancingLoss: probs F32 (R, E); topIdx I32 (R, K); rowMask F32 (R) optional; lossOut F32
   * (1); dProbs F32 (R, E) optional. Returns {R, E, K}.
   */
  public static int[] loadBalancingLoss(
      Tensor probs, Tensor topIdx, Tensor rowMask, Tensor lossOut, Tensor dProbs) {
    String op = "loadBalancingLoss";
    int[] rek = routing(op, probs, topIdx, rowMask);
    scalar(op, "lossOut", lossOut);
    if (dProbs != null) {
      numel(op, "dProbs", dProbs, (long) rek[0] * rek[1]);
      dtype(op, "dProbs", dProbs, DType.F32);
    }
    return rek;
  }

  /**
   * routerZLoss: logits F32 (R, E); rowMask F32 (R) optional; lossOut F32 (1); dLogits F32 (R, E)
   * optional. Returns {R, E}.
   */
  public static int[] routerZLoss(Tensor logits, Tensor rowMask, Tensor lossOut, Tensor dLogits) {
    String op = "routerZLoss";
    dtype(op, "logits", logits, DType.F32);
    int r = Math.toIntExact(logits.rows()), e = cols(logits);
    rowMask(op, rowMask, r);
    scalar(op, "lossOut", lossOut);
    if (dLogits != null) {
      numel(op, "dLogits", dLogits, (long) r * e);
      dtype(op, "dLogits", dLogits, DType.F32);
    }
    return new int[] {r, e};
  }

  /** sum: out F32 holds one value. */
  public static void sum(Tensor x, Tensor out) {
    scalar("sum", "out", out);
  }

  // ---------------------------------------------------------------- adamw

  /** sumSquares: acc F32 holds one value. */
  public static void sumSquares(Tensor x, Tensor acc) {
    scalar("sumSquares", "acc", acc);
  }

  /** clipByNorm: sumSq F32 holds one value. */
  public static void clipByNorm(Tensor grad, Tensor sumSq) {
    scalar("clipByNorm", "sumSq", sumSq);
  }

  /** adamwStep: param, m, v F32 (n); grad (n); lowPrecision (n) optional. Returns n. */
  public static long adamwStep(Tensor param, Tensor grad, Tensor m, Tensor v, Tensor lowPrecision) {
    String op = "adamwStep";
    long n = param.numel();
    numel(op, "grad", grad, n);
    numel(op, "m", m, n);
    numel(op, "v", v, n);
    if (lowPrecision != null) numel(op, "lowPrecision", lowPrecision, n);
    dtype(op, "param", param, DType.F32);
    dtype(op, "m", m, DType.F32);
    dtype(op, "v", v, DType.F32);
    return n;
  }
}
