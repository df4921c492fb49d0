package moetune.engine.backend.cuda;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import moetune.engine.backend.AttnSpec;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
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
 * <p>Packed documents and padding (the doc ids of {@link AttnSpec}) run as ragged batches: every
 * contiguous run of one document in a row becomes a sequence of its own, found by cuDNN through
 * ragged offsets (its first element in our packed (B*T, H, hd) buffers) and masked to its length by
 * the padding mask and the matmuls' M/N/K overrides, as cudnn-frontend builds its THD layout;
 * causal and window masks then count from each document's start, which is exactly the doc-id mask.
 * Padding tokens belong to no sequence: their outputs are zeroed and their log-sum-exp set to
 * -infinity before the call (the oracle's convention), their gradients zeroed.
 *
 * <p>Plans are built once per (batch or ragged capacity, length, heads, kv heads, head dim, window)
 * and cached with their device scratch (workspace; the backward's softmax sums and dQ accumulator),
 * so a call allocates nothing: {@link Cudnn.Graph#execute} keeps a finalized variant pack per
 * pointer set. {@link #unsupported} says which calls cuDNN does not take (they run on moetune's own
 * kernels).
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
      WINDOW = 16,
      SEQ_Q = 17,
      SEQ_KV = 18,
      RO_QO = 19,
      RO_KV = 20,
      RO_ST = 21;

  /**
   * A plan's shape: batch is B, or for a ragged plan the sequence capacity (documents rounded up to
   * a power of two); tokens the B*T rows of the packed buffers.
   */
  private record Key(
      int batch,
      int len,
      int hq,
      int hk,
      int hd,
      int window,
      boolean backward,
      boolean ragged,
      long tokens) {}

  /** The descriptors of a ragged graph's sequence lengths and ragged offsets. */
  private record Ragged(long seqQ, long seqKv, long roQO, long roKV, long roSt) {}

  private final Cudnn cudnn;

  /**
   * A built graph, the host scalars its variant pack passes by value, its device scratch (kept for
   * the plan's life), and the uids and pointer array every call fills in place.
   */
  private static final class Plan implements AutoCloseable {
    final Cudnn.Graph graph;
    final long scale, negInf, one, window;
    final CudaTensor workspace, softSum, dqAcc;
    final long[] uids, ptrs;
    final String what;

    Plan(Cudnn.Graph graph, Key k, CudaContext b) {
      this.graph = graph;
      scale = graph.hostFloat((float) (1.0 / Math.sqrt(k.hd)));
      negInf = graph.hostFloat(Float.NEGATIVE_INFINITY);
      one = graph.hostFloat(1f);
      window = graph.hostFloat(k.window);
      long rows = k.tokens * k.hq;
      String op = "attention";
      CudaTensor ws = null, ss = null, acc = null;
      try {
        ws = b.ct(b.empty(DType.F32, Math.max(1, (graph.workspace() + 3) / 4)), op, "workspace");
        if (k.backward) {
          ss = b.ct(b.empty(DType.F32, rows), op, "cuDNN softmax sums");
          acc = b.ct(b.empty(DType.F32, rows * k.hd), op, "cuDNN dQ accumulator");
        }
      } catch (RuntimeException e) {
        if (ws != null) ws.close();
        if (ss != null) ss.close();
        throw e;
      }
      workspace = ws;
      softSum = ss;
      dqAcc = acc;
      List<Long> u = new ArrayList<>();
      if (k.backward) {
        u.addAll(
            List.of(Q, KT, VT, O, DO, STATS, DQ, DK, DV, SCALE, NEG_INF, ONE, SOFT_SUM, DQ_ACC));
      } else {
        u.addAll(List.of(Q, KT, V, O, STATS, SCALE, NEG_INF));
      }
      if (k.window > 0) u.add(WINDOW);
      if (k.ragged) u.addAll(List.of(SEQ_Q, SEQ_KV, RO_QO, RO_KV, RO_ST));
      uids = u.stream().mapToLong(Long::longValue).toArray();
      ptrs = new long[uids.length];
      what = "cuDNN attention " + (k.backward ? "backward " : "forward ") + k;
    }

    /** Device bytes this plan holds: workspace, and for the backward its sums and accumulator. */
    long scratchBytes() {
      long n = workspace.numel();
      if (softSum != null) n += softSum.numel() + dqAcc.numel();
      return 4 * n;
    }

    @Override
    public void close() {
      graph.close();
      workspace.close();
      if (softSum != null) softSum.close();
      if (dqAcc != null) dqAcc.close();
    }
  }

  private final Map<Key, Plan> plans = new HashMap<>();

  /** The sequences of the last doc-id tensor seen (one per batch of a training step). */
  private Tensor lastDocIds;

  private Documents lastDocs;

  CudnnAttention(Cudnn cudnn) {
    this.cudnn = cudnn;
  }

  Cudnn cudnn() {
    return cudnn;
  }

  /**
   * Why cuDNN does not take this call, or null when it does (doc ids are checked by {@link
   * #unsupportedDocuments}, which needs their values).
   */
  static String unsupported(AttnSpec spec, int hd, CudaTensor... ts) {
    if (spec.queryLen() != spec.keyLen()) {
      // one wording for every length, so the note is said once per run, not once per decoded token
      return "query length < key length (decoding with a cache)";
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

  /** Why cuDNN does not take this call's packed documents, or null (also when there are none). */
  String unsupportedDocuments(CudaContext b, AttnSpec spec, int hd) {
    if (spec.docIds() == null) {
      return null;
    }
    if (hd % 16 != 0) {
      return "packed documents with head dim " + hd + " (cuDNN's ragged layout: multiples of 16)";
    }
    return documents(b, spec).unsupported();
  }

  /**
   * The documents of a doc-id tensor, worked out once per tensor (a batch's ids are uploaded once
   * and shared by every layer's forward and backward; moetune never rewrites them) from the host
   * copy the spec carries (the model's batch passes the array it uploaded), or else read from the
   * device.
   */
  private Documents documents(CudaContext b, AttnSpec spec) {
    Tensor ids = spec.docIds();
    if (ids != lastDocIds) {
      if (lastDocs != null) lastDocs.close();
      lastDocs = null;
      lastDocIds = null;
      int[] host = spec.hostDocIds() != null ? spec.hostDocIds() : b.download(ids).toIntArray();
      lastDocs = Documents.of(host, spec.batch(), spec.keyLen());
      lastDocIds = ids;
    }
    return lastDocs;
  }

  /**
   * The contiguous runs of one document id in each row: sequence n starts at token start[n] (of the
   * B*T rows) and has len[n] tokens; the graph's batch is {@code capacity} (a power of two, at
   * least B), the sequences past {@code count} empty.
   */
  static final class Documents implements AutoCloseable {
    final int count, capacity;
    final long[] start;
    final int[] len;
    final boolean coversAll;
    private final String unsupported;
    private Tensor offsets, lengths; // device copies for (hq, hk, hd) = uploadedFor
    private long uploadedFor = -1;

    private Documents(
        int count, int capacity, long[] start, int[] len, boolean coversAll, String unsupported) {
      this.count = count;
      this.capacity = capacity;
      this.start = start;
      this.len = len;
      this.coversAll = coversAll;
      this.unsupported = unsupported;
    }

    String unsupported() {
      return unsupported;
    }

    static Documents of(int[] ids, int batch, int t) {
      List<long[]> runs = new ArrayList<>();
      boolean all = true;
      String why = null;
      for (int r = 0; r < batch && why == null; r++) {
        java.util.Set<Integer> seen = new java.util.HashSet<>();
        int i = 0;
        while (i < t) {
          int id = ids[r * t + i];
          if (id < 0) {
            all = false;
            i++;
            continue;
          }
          int s = i;
          while (i < t && ids[r * t + i] == id) i++;
          if (!seen.add(id)) {
            why = "a document split into separate runs of one row";
            break;
          }
          runs.add(new long[] {(long) r * t + s, i - s});
        }
      }
      int count = runs.size();
      int cap = Math.max(batch, count <= 1 ? 1 : Integer.highestOneBit(count - 1) << 1);
      long[] start = new long[cap];
      int[] len = new int[cap];
      long end = (long) batch * t;
      for (int n = 0; n < cap; n++) {
        start[n] = n < count ? runs.get(n)[0] : end;
        len[n] = n < count ? (int) runs.get(n)[1] : 0;
      }
      return new Documents(count, cap, start, len, all, why);
    }

    /** Longs per ragged-offset array, even so that each array stays 16-byte aligned. */
    int stride() {
      return (capacity + 2) & ~1;
    }

    /**
     * The device arrays for these heads: three INT64 ragged-offset arrays (q/o/dq/do, k/v/dk/dv,
     * lse/softmax sums, in elements) and the INT32 sequence lengths.
     */
    void upload(CudaContext b, int hq, int hk, int hd) {
      long key = ((long) hq << 40) | ((long) hk << 20) | hd;
      if (key == uploadedFor) return;
      closeDevice();
      int st = stride();
      int[] words = new int[2 * 3 * st];
      long[] mult = {(long) hq * hd, (long) hk * hd, hq};
      for (int a = 0; a < 3; a++) {
        for (int n = 0; n <= capacity; n++) {
          long tok = 0;
          if (n < capacity) {
            tok = start[n];
          } else {
            for (int m = 0; m < capacity; m++) tok = Math.max(tok, start[m] + len[m]);
          }
          long v = tok * mult[a];
          words[2 * (a * st + n)] = (int) v;
          words[2 * (a * st + n) + 1] = (int) (v >>> 32);
        }
      }
      offsets = b.upload(HostTensor.ofInts(words, words.length), DType.I32);
      lengths = b.upload(HostTensor.ofInts(len.clone(), len.length), DType.I32);
      uploadedFor = key;
    }

    long offsets(CudaContext b, int which) {
      return b.ptr(offsets, "attention", "cuDNN ragged offsets") + 8L * which * stride();
    }

    long lengths(CudaContext b) {
      return b.ptr(lengths, "attention", "cuDNN sequence lengths");
    }

    private void closeDevice() {
      if (offsets != null) offsets.close();
      if (lengths != null) lengths.close();
      offsets = lengths = null;
      uploadedFor = -1;
    }

    @Override
    public void close() {
      closeDevice();
    }
  }

  private static long[] bshd(long b, long s, long h, long d) {
    return new long[] {s * h * d, d, h * d, 1};
  }

  private static long[] bhsd(long b, long s, long h, long d) {
    return new long[] {h * s * d, s * d, d, 1};
  }

  private static long[] scoreDims(Key k) {
    return new long[] {k.batch, k.hq, k.len, k.len};
  }

  private static long[] scoreStrides(Key k) {
    return new long[] {(long) k.hq * k.len * k.len, (long) k.len * k.len, k.len, 1};
  }

  /** scale * Q K^T (float), masked: the scores both plain graphs start from. */
  private static long scores(
      Cudnn.Graph g, Key k, long q, long kt, long scale, long negInf, long window) {
    long sc = g.virt(Cudnn.FLOAT, scoreDims(k), scoreStrides(k));
    g.matmul(q, kt, sc);
    long s1 = g.virt(Cudnn.FLOAT, scoreDims(k), scoreStrides(k));
    g.pointwise(Cudnn.PW_MUL, sc, scale, s1);
    return mask(g, k, s1, negInf, window);
  }

  /**
   * Rows and columns past each sequence's length masked (cudnn-frontend's padding mask: row <
   * seq_len_q and col < seq_len_kv).
   */
  private static long padding(Cudnn.Graph g, Key k, long scores, long negInf, Ragged r) {
    long[] sd = scoreDims(k), ss = scoreStrides(k);
    long row = g.virt(Cudnn.INT32, sd, ss);
    g.pointwise(Cudnn.PW_GEN_INDEX, scores, 0, 0, row, Cudnn.FLOAT, 2);
    long col = g.virt(Cudnn.INT32, sd, ss);
    g.pointwise(Cudnn.PW_GEN_INDEX, scores, 0, 0, col, Cudnn.FLOAT, 3);
    long rowOk = g.virt(Cudnn.BOOLEAN, sd, ss);
    g.pointwise(Cudnn.PW_CMP_LT, row, r.seqQ, 0, rowOk, Cudnn.BOOLEAN, -1);
    long colOk = g.virt(Cudnn.BOOLEAN, sd, ss);
    g.pointwise(Cudnn.PW_CMP_LT, col, r.seqKv, 0, colOk, Cudnn.BOOLEAN, -1);
    long ok = g.virt(Cudnn.BOOLEAN, sd, ss);
    g.pointwise(Cudnn.PW_LOGICAL_AND, rowOk, colOk, 0, ok, Cudnn.BOOLEAN, -1);
    long out = g.virt(Cudnn.FLOAT, sd, ss);
    g.pointwise(Cudnn.PW_BINARY_SELECT, scores, negInf, ok, out, Cudnn.FLOAT, -1);
    return out;
  }

  /** Keep col <= row (causal), and col + window > row when a window is set. */
  private static long mask(Cudnn.Graph g, Key k, long scores, long negInf, long window) {
    long[] sd = scoreDims(k), ss = scoreStrides(k);
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

  /** The sequence lengths and ragged offsets of a ragged graph (null for a plain one). */
  private static Ragged ragged(Cudnn.Graph g, Key k) {
    if (!k.ragged) return null;
    long[] one = {1, 1, 1, 1};
    long[] lens = {k.batch, 1, 1, 1};
    long[] offs = {k.batch + 1L, 1, 1, 1};
    return new Ragged(
        g.tensor(SEQ_Q, Cudnn.INT32, lens, one),
        g.tensor(SEQ_KV, Cudnn.INT32, lens, one),
        g.tensor(RO_QO, Cudnn.INT64, offs, one),
        g.tensor(RO_KV, Cudnn.INT64, offs, one),
        g.tensor(RO_ST, Cudnn.INT64, offs, one));
  }

  private Cudnn.Graph forwardGraph(Key k) {
    Cudnn.Graph g = cudnn.new Graph();
    try {
      long b = k.batch, s = k.len, hq = k.hq, hk = k.hk, d = k.hd;
      long[] sd = scoreDims(k), ss = scoreStrides(k);
      long[] rd = {b, hq, s, 1}, rs = {s * hq, 1, hq, 1}; // lse (B*T, H)
      Ragged r = ragged(g, k);
      long roQO = r == null ? 0 : r.roQO, roKV = r == null ? 0 : r.roKV;
      long q = g.tensor(Q, Cudnn.BFLOAT16, new long[] {b, hq, s, d}, bshd(b, s, hq, d), roQO);
      long kt =
          g.tensor(
              KT,
              Cudnn.BFLOAT16,
              new long[] {b, hk, d, s},
              new long[] {s * hk * d, d, 1, hk * d},
              roKV);
      long v = g.tensor(V, Cudnn.BFLOAT16, new long[] {b, hk, s, d}, bshd(b, s, hk, d), roKV);
      long o = g.tensor(O, Cudnn.BFLOAT16, new long[] {b, hq, s, d}, bshd(b, s, hq, d), roQO);
      long stats = g.tensor(STATS, Cudnn.FLOAT, rd, rs, r == null ? 0 : r.roSt);
      long scale = g.scalar(SCALE), negInf = g.scalar(NEG_INF);
      long window = k.window > 0 ? g.scalar(WINDOW) : 0;
      long s2;
      if (r == null) {
        s2 = scores(g, k, q, kt, scale, negInf, window);
      } else {
        long sc = g.virt(Cudnn.FLOAT, sd, ss);
        g.matmul(q, kt, sc, r.seqQ, r.seqKv, 0, true);
        long s1 = g.virt(Cudnn.FLOAT, sd, ss);
        g.pointwise(Cudnn.PW_MUL, sc, scale, s1);
        s2 = mask(g, k, padding(g, k, s1, negInf, r), negInf, window);
      }
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
      if (r == null) {
        g.matmul(p, v, o);
      } else {
        g.matmul(p, v, o, r.seqQ, 0, r.seqKv, false);
      }
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
      long[] sd = scoreDims(k), ss = scoreStrides(k);
      long[] sts = {hq * s * s, s * s, 1, s}; // the transposes
      long[] rd = {b, hq, s, 1}, rs = {s * hq, 1, hq, 1}, rsc = {hq * s, s, 1, 1};
      long[] ktd = {b, hk, d, s}, kts = {s * hk * d, d, 1, hk * d};
      long[] qd = {b, hq, s, d}, kd = {b, hk, s, d};
      Ragged r = ragged(g, k);
      long roQO = r == null ? 0 : r.roQO, roKV = r == null ? 0 : r.roKV;
      long roSt = r == null ? 0 : r.roSt;
      long seqQ = r == null ? 0 : r.seqQ, seqKv = r == null ? 0 : r.seqKv;
      long q = g.tensor(Q, Cudnn.BFLOAT16, qd, bshd(b, s, hq, d), roQO);
      long kt = g.tensor(KT, Cudnn.BFLOAT16, ktd, kts, roKV);
      long vt = g.tensor(VT, Cudnn.BFLOAT16, ktd, kts, roKV);
      long o = g.tensor(O, Cudnn.BFLOAT16, qd, bshd(b, s, hq, d), roQO);
      long dO = g.tensor(DO, Cudnn.BFLOAT16, qd, bshd(b, s, hq, d), roQO);
      long stats = g.tensor(STATS, Cudnn.FLOAT, rd, rs, roSt);
      long dQ = g.tensor(DQ, Cudnn.BFLOAT16, qd, bshd(b, s, hq, d), roQO);
      long dK = g.tensor(DK, Cudnn.BFLOAT16, kd, bshd(b, s, hk, d), roKV);
      long dV = g.tensor(DV, Cudnn.BFLOAT16, kd, bshd(b, s, hk, d), roKV);
      long scale = g.scalar(SCALE), negInf = g.scalar(NEG_INF), one = g.scalar(ONE);
      long window = k.window > 0 ? g.scalar(WINDOW) : 0;
      // ragged: the sums and the dQ accumulator in the packed layouts of the lse and dQ (sized by
      // the tokens, as cudnn-frontend sizes them with max_total_seq_len), else (b, h, s[, d])
      long softSum =
          r == null
              ? g.tensor(SOFT_SUM, Cudnn.FLOAT, rd, rsc)
              : g.tensor(SOFT_SUM, Cudnn.FLOAT, rd, rs, roSt);
      long dQacc =
          r == null
              ? g.tensor(DQ_ACC, Cudnn.FLOAT, qd, bhsd(b, s, hq, d))
              : g.tensor(DQ_ACC, Cudnn.FLOAT, qd, bshd(b, s, hq, d), roQO);
      // rowsum(dO * O)
      long a = g.virt(Cudnn.FLOAT, qd, bshd(b, s, hq, d));
      g.pointwise(Cudnn.PW_MUL, dO, o, a);
      long rsum = g.virt(Cudnn.FLOAT, rd, rsc);
      g.reduction(Cudnn.RED_ADD, a, rsum);
      g.pointwise(Cudnn.PW_MUL, rsum, one, softSum);
      // P = exp(masked scale Q K^T - lse)
      long e = g.virt(Cudnn.FLOAT, sd, ss);
      if (r == null) {
        long s2 = scores(g, k, q, kt, scale, negInf, window);
        long s3 = g.virt(Cudnn.FLOAT, sd, ss);
        g.pointwise(Cudnn.PW_SUB, s2, stats, s3);
        g.pointwise(Cudnn.PW_EXP, s3, 0, e);
      } else {
        // cudnn-frontend's order: scale, padding mask, - lse, causal/band mask, exp
        long sc = g.virt(Cudnn.FLOAT, sd, ss);
        g.matmul(q, kt, sc, seqQ, seqKv, 0, false);
        long s1 = g.virt(Cudnn.FLOAT, sd, ss);
        g.pointwise(Cudnn.PW_MUL, sc, scale, s1);
        long s2 = padding(g, k, s1, negInf, r);
        long s3 = g.virt(Cudnn.FLOAT, sd, ss);
        g.pointwise(Cudnn.PW_SUB, s2, stats, s3);
        g.pointwise(Cudnn.PW_EXP, mask(g, k, s3, negInf, window), 0, e);
      }
      // dV = P^T dO, summed over each kv head's query heads
      long pt = g.virt(Cudnn.BFLOAT16, sd, sts);
      g.reshape(e, pt);
      if (hq == hk) {
        g.matmul(pt, dO, dV, seqKv, 0, seqQ, false);
      } else {
        long dVf = g.virt(Cudnn.BFLOAT16, qd, bhsd(b, s, hq, d));
        g.matmul(pt, dO, dVf, seqKv, 0, seqQ, false);
        g.reduction(Cudnn.RED_ADD, dVf, dV);
      }
      // dS = scale P (dO V^T - rowsum)
      long dP = g.virt(Cudnn.FLOAT, sd, ss);
      g.matmul(dO, vt, dP, seqQ, seqKv, 0, false);
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
        g.matmul(dST, q, dK, seqKv, 0, seqQ, false);
      } else {
        long dKf = g.virt(Cudnn.BFLOAT16, qd, bhsd(b, s, hq, d));
        g.matmul(dST, q, dKf, seqKv, 0, seqQ, false);
        g.reduction(Cudnn.RED_ADD, dKf, dK);
      }
      // dQ = dS K through a float accumulator
      long kk = g.virt(Cudnn.BFLOAT16, kd, bshd(b, s, hk, d), roKV);
      g.reshape(kt, kk);
      g.matmul(dS, kk, dQacc, seqQ, 0, seqKv, false);
      g.pointwise(Cudnn.PW_IDENTITY, dQacc, 0, dQ);
      g.build("attention backward " + k);
      return g;
    } catch (RuntimeException ex) {
      g.close();
      throw ex;
    }
  }

  private Plan plan(CudaContext b, Key k) {
    Plan p = plans.get(k);
    if (p == null) {
      Cudnn.Graph g = k.backward ? backwardGraph(k) : forwardGraph(k);
      try {
        p = new Plan(g, k, b);
      } catch (RuntimeException e) {
        g.close();
        throw e;
      }
      plans.put(k, p);
    }
    return p;
  }

  private static Key key(AttnSpec spec, Documents docs, int hq, int hk, int hd, boolean backward) {
    long tokens = (long) spec.batch() * spec.queryLen();
    return docs == null
        ? new Key(spec.batch(), spec.queryLen(), hq, hk, hd, spec.window(), backward, false, tokens)
        : new Key(
            docs.capacity, spec.queryLen(), hq, hk, hd, spec.window(), backward, true, tokens);
  }

  /** The engine cuDNN chose for this shape (building its plan if needed). */
  String engine(CudaContext b, AttnSpec spec, int hq, int hk, int hd, boolean backward) {
    return plan(b, key(spec, null, hq, hk, hd, backward)).graph.engine();
  }

  /**
   * Device bytes the forward and backward plans of this shape hold for the run (building them if
   * needed): cuDNN's workspaces, the backward's softmax sums and dQ accumulator.
   */
  long scratchBytes(CudaContext b, AttnSpec spec, int hq, int hk, int hd) {
    return plan(b, key(spec, null, hq, hk, hd, false)).scratchBytes()
        + plan(b, key(spec, null, hq, hk, hd, true)).scratchBytes();
  }

  /** Variant packs the plans keep now (tests: a repeated call must add none). */
  int variantPacks() {
    int n = 0;
    for (Plan p : plans.values()) n += p.graph.variantPacks();
    return n;
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
    Documents docs = raggedFor(b, spec, hq, hk, hd);
    Plan p = plan(b, key(spec, docs, hq, hk, hd, false));
    if (docs != null && !docs.coversAll) {
      b.fill(out, 0f);
      b.fill(lse, Float.NEGATIVE_INFINITY);
    }
    execute(
        b,
        p,
        spec,
        docs,
        q.address(),
        k.address(),
        v.address(),
        out.address(),
        lse.address(),
        p.scale,
        p.negInf);
  }

  /**
   * Runs a plan. Its variant pack, in the order of the plan's uids: the call's own pointers and
   * scalars ({@code first}), then the window's scalar with a window, then the ragged arrays with
   * documents.
   */
  private static void execute(CudaContext b, Plan p, AttnSpec spec, Documents docs, long... first) {
    long[] x = p.ptrs;
    System.arraycopy(first, 0, x, 0, first.length);
    int i = first.length;
    if (spec.window() > 0) x[i++] = p.window;
    if (docs != null) i = raggedPointers(b, docs, x, i);
    p.graph.execute(p.uids, x, p.workspace.address(), p.what);
  }

  /**
   * The call's documents, checked and their offsets on the device for these heads; null without doc
   * ids.
   */
  private Documents raggedFor(CudaContext b, AttnSpec spec, int hq, int hk, int hd) {
    if (spec.docIds() == null) {
      return null;
    }
    Documents docs = documents(b, spec);
    if (docs.unsupported() != null) {
      throw new CudaException("cuDNN attention: " + docs.unsupported());
    }
    docs.upload(b, hq, hk, hd);
    return docs;
  }

  private static int raggedPointers(CudaContext b, Documents docs, long[] x, int i) {
    long lens = docs.lengths(b);
    x[i++] = lens;
    x[i++] = lens;
    x[i++] = docs.offsets(b, 0);
    x[i++] = docs.offsets(b, 1);
    x[i++] = docs.offsets(b, 2);
    return i;
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
    Documents docs = raggedFor(b, spec, hq, hk, hd);
    Plan p = plan(b, key(spec, docs, hq, hk, hd, true));
    if (docs != null && !docs.coversAll) {
      b.fill(dq, 0f);
      b.fill(dk, 0f);
      b.fill(dv, 0f);
    }
    execute(
        b,
        p,
        spec,
        docs,
        q.address(),
        k.address(),
        v.address(),
        out.address(),
        dOut.address(),
        lse.address(),
        dq.address(),
        dk.address(),
        dv.address(),
        p.scale,
        p.negInf,
        p.one,
        p.softSum.address(),
        p.dqAcc.address());
  }

  @Override
  public void close() {
    for (Plan p : plans.values()) p.close();
    plans.clear();
    if (lastDocs != null) lastDocs.close();
    lastDocs = null;
    lastDocIds = null;
    cudnn.close();
  }
}
