package moetune.engine.backend;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * One case per {@link Backend} op, in the manner of ggml's test-backend-ops: each case builds its
 * inputs from a seeded generator (so two backends see identical numbers), runs the op on float32
 * tensors of awkward sizes (N = 37 tokens, D = 100, V = 301, E = 6 experts of which one gets no
 * rows, K = 2) with every output poisoned with NaN first, and returns every output by name. {@link
 * #missing()} lists the Backend methods that have neither a case nor a reason in {@link #NOT_OPS},
 * so a new op without a case fails {@code OpTableTest}.
 *
 * <p>Shape letters: N tokens, D model width, V vocabulary, E experts, K experts per token, M = N*K
 * routed rows, F expert width, H / Hkv query / key-value heads, hd head width.
 */
public final class OpTable {
  private OpTable() {}

  /** Builds inputs on one backend, runs one op, keeps its outputs. */
  @FunctionalInterface
  public interface OpCase {
    void run(Inputs in);
  }

  /** Backend methods that are not numeric ops, each with the reason it has no case. */
  public static final Map<String, String> NOT_OPS =
      Map.ofEntries(
          Map.entry("name", "a label"),
          Map.entry("describe", "a label"),
          Map.entry("supports", "a capability query"),
          Map.entry("swigluSavesFactors", "a capability query (MoeMlp's choice of saved tensor)"),
          Map.entry("dwBesideDx", "a setting query (ParallelLinear's choice of one call or two)"),
          Map.entry(
              "runDwBesideDx",
              "scheduling of the two joint calls' halves (their cases: swigluFactorsBackwardBesideDw,"
                  + " scatter2scatterBesideDw)"),
          Map.entry("newQueueClock", "profiling (OpProfilerTest)"),
          Map.entry("reportTensorsAs", "profiling (OpProfilerTest)"),
          Map.entry("bytesInUse", "memory accounting"),
          Map.entry("peakBytes", "memory accounting"),
          Map.entry("resetPeak", "memory accounting"),
          Map.entry("synchronize", "a barrier; every download below synchronizes"),
          Map.entry("close", "lifecycle"),
          Map.entry("empty", "makes every case's poisoned outputs"),
          Map.entry("upload", "makes every case's inputs"),
          Map.entry("download", "reads every case's outputs"));

  static final int N = 37;
  static final int D = 100;
  static final int V = 301;
  static final int E = 6;
  static final int K = 2;
  static final int M = N * K;
  static final int F = 48;
  static final int[] ROUTED_EXPERTS = {0, 1, 2, 4, 5}; // expert 3 gets no rows

  /** Every case by the Backend method it tests, in the interface's order. */
  public static final Map<String, OpCase> CASES = cases();

  /** Backend's method names with neither a case nor a NOT_OPS reason, and stale table entries. */
  public static List<String> missing() {
    return missing(Backend.class, CASES.keySet(), NOT_OPS.keySet());
  }

  /** The check of {@link #missing()} for any interface (tested on a made-up one). */
  static List<String> missing(Class<?> api, Set<String> cases, Set<String> notOps) {
    Set<String> methods = new TreeSet<>();
    for (Method m : api.getMethods()) {
      if (!Modifier.isStatic(m.getModifiers())) {
        methods.add(m.getName());
      }
    }
    List<String> out = new ArrayList<>();
    for (String m : methods) {
      if (!cases.contains(m) && !notOps.contains(m)) {
        out.add(m + ": no case in OpTable.CASES (add one, or a reason to NOT_OPS)");
      }
      if (cases.contains(m) && notOps.contains(m)) {
        out.add(m + ": both a case and a NOT_OPS reason");
      }
    }
    for (String k : cases) {
      if (!methods.contains(k)) {
        out.add(k + ": a case for a method Backend no longer has");
      }
    }
    for (String k : notOps) {
      if (!methods.contains(k)) {
        out.add(k + ": a NOT_OPS reason for a method Backend no longer has");
      }
    }
    return out;
  }

  /** Runs one case on a backend; the outputs by name, as floats (I32 outputs converted). */
  public static Map<String, float[]> run(String op, Backend be, long seed) {
    OpCase c = CASES.get(op);
    if (c == null) {
      throw new IllegalArgumentException("no op-table case '" + op + "'");
    }
    try (Inputs in = new Inputs(be, new Random(seed ^ op.hashCode()))) {
      c.run(in);
      return in.outputs;
    }
  }

  /** The tensors of one case on one backend; closes them all. */
  public static final class Inputs implements AutoCloseable {
    final Backend be;
    final Random r;
    private final List<Tensor> owned = new ArrayList<>();
    final Map<String, float[]> outputs = new LinkedHashMap<>();

    Inputs(Backend be, Random r) {
      this.be = be;
      this.r = r;
    }

    private Tensor own(Tensor t) {
      owned.add(t);
      return t;
    }

    Tensor floats(float[] v, long... shape) {
      return own(be.upload(HostTensor.ofFloats(v, shape), DType.F32));
    }

    Tensor randn(double scale, long... shape) {
      float[] v = new float[Math.toIntExact(HostTensor.numel(shape))];
      for (int i = 0; i < v.length; i++) {
        v[i] = (float) (r.nextGaussian() * scale);
      }
      return floats(v, shape);
    }

    /** |randn| * scale: second moments, masks of weights. */
    Tensor positive(double scale, long... shape) {
      float[] v = new float[Math.toIntExact(HostTensor.numel(shape))];
      for (int i = 0; i < v.length; i++) {
        v[i] = (float) Math.abs(r.nextGaussian() * scale);
      }
      return floats(v, shape);
    }

    Tensor ints(int[] v, long... shape) {
      return own(be.upload(HostTensor.ofInts(v, shape)));
    }

    /** An output to be overwritten, NaN everywhere so unwritten elements show. */
    Tensor nan(long... shape) {
      Tensor t = own(be.empty(DType.F32, shape));
      be.fill(t, Float.NaN);
      return t;
    }

    Tensor nanInts(long... shape) {
      Tensor t = own(be.empty(DType.I32, shape));
      be.fill(t, -7);
      return t;
    }

    /** K distinct experts per token, drawn from ROUTED_EXPERTS, (N, K). */
    Tensor routing(int n) {
      int[] idx = new int[n * K];
      for (int t = 0; t < n; t++) {
        List<Integer> pool = new ArrayList<>();
        for (int e : ROUTED_EXPERTS) {
          pool.add(e);
        }
        for (int j = 0; j < K; j++) {
          idx[t * K + j] = pool.remove(r.nextInt(pool.size()));
        }
      }
      return ints(idx, n, K);
    }

    /** 0/1 row weights with a few padding rows. */
    Tensor rowMask(int rows) {
      float[] m = new float[rows];
      for (int i = 0; i < rows; i++) {
        m[i] = i % 7 == 3 ? 0f : 1f;
      }
      return floats(m, rows);
    }

    void keep(String name, Tensor t) {
      HostTensor h = be.download(t);
      if (t.dtype() == DType.I32) {
        int[] v = h.toIntArray();
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) {
          f[i] = v[i];
        }
        outputs.put(name, f);
      } else {
        outputs.put(name, h.toFloatArray());
      }
    }

    @Override
    public void close() {
      for (Tensor t : owned) {
        t.close();
      }
    }
  }

  /** Routing of N tokens to K of E experts, sorted as ParallelLinear needs it. */
  private record Routed(Tensor topIdx, Tensor sortedExperts, Tensor sortedScattered, Tensor offs) {
    static Routed of(Inputs in) {
      Tensor idx = in.routing(N);
      Tensor se = in.nanInts(M);
      Tensor ss = in.nanInts(M);
      Tensor offs = in.nanInts(E);
      in.be.flattenSortCount(idx, E, se, ss, offs);
      return new Routed(idx, se, ss, offs);
    }
  }

  /** Two sequences of 23 tokens, two packed documents in each, a window of 11. */
  private static AttnSpec attnSpec(Inputs in, int b, int t) {
    int[] doc = new int[b * t];
    for (int i = 0; i < doc.length; i++) {
      doc[i] = i % t < 14 ? 0 : 1;
    }
    return new AttnSpec(b, t, t, in.ints(doc, doc.length), 11);
  }

  private static Tensor positions(Inputs in, int n) {
    int[] p = new int[n];
    for (int i = 0; i < n; i++) {
      p[i] = (i * 7) % 53;
    }
    return in.ints(p, n);
  }

  private static Map<String, OpCase> cases() {
    Map<String, OpCase> c = new LinkedHashMap<>();
    c.put(
        "zeros",
        in -> {
          in.keep("zeros", in.be.zeros(DType.F32, N, 3));
        });
    c.put(
        "copyFromHost",
        in -> {
          float[] v = new float[N * 3];
          for (int i = 0; i < v.length; i++) {
            v[i] = (float) in.r.nextGaussian();
          }
          Tensor t = in.nan(N, 3);
          in.be.copyFromHost(HostTensor.ofFloats(v, N, 3), t);
          in.keep("t", t);
        });
    c.put(
        "copy",
        in -> {
          Tensor a = in.randn(1, N, D);
          Tensor b = in.nan(N, D);
          in.be.copy(a, b);
          in.keep("dst", b);
        });
    c.put(
        "fill",
        in -> {
          Tensor t = in.nan(N, 3);
          in.be.fill(t, 1.5f);
          in.keep("t", t);
        });
    c.put(
        "randomNormal",
        in -> {
          Tensor t = in.nan(N, D + 1);
          in.be.randomNormal(t, in.r.nextLong(), 0.02f); // counter-based: same numbers everywhere
          in.keep("t", t);
        });
    c.put(
        "add",
        in -> {
          Tensor a = in.randn(1, 1237);
          Tensor b = in.randn(1, 1237);
          Tensor out = in.nan(1237);
          in.be.add(a, b, out);
          in.keep("out", out);
          in.be.add(a, b, a); // out may alias a
          in.keep("out aliasing a", a);
        });
    c.put(
        "axpy",
        in -> {
          Tensor a = in.randn(1, 1237);
          Tensor b = in.randn(1, 1237);
          in.be.axpy(-0.37f, a, b);
          in.keep("dst", b);
        });
    c.put(
        "scale",
        in -> {
          Tensor a = in.randn(1, 1237);
          in.be.scale(a, 1.7f);
          in.keep("x", a);
        });
    c.put(
        "matmul",
        in -> {
          int m = 37;
          int k = 100;
          int n = 51;
          for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
              Tensor a = ta ? in.randn(1, k, m) : in.randn(1, m, k);
              Tensor b = tb ? in.randn(1, n, k) : in.randn(1, k, n);
              Tensor c0 = in.nan(m, n);
              in.be.matmul(a, ta, b, tb, c0, 0.5f, 0f); // beta 0 overwrites NaN
              in.be.matmul(a, ta, b, tb, c0, 1f, 1f); // beta 1 accumulates
              in.keep("C tA=" + ta + " tB=" + tb, c0);
            }
          }
        });
    c.put(
        "embeddingForward",
        in -> {
          Tensor ids = embeddingIds(in);
          Tensor out = in.nan(N, D);
          in.be.embeddingForward(ids, in.randn(1, V, D), out);
          in.keep("out", out);
        });
    c.put(
        "embeddingBackward",
        in -> {
          Tensor ids = embeddingIds(in);
          Tensor dTable = in.randn(1, V, D);
          in.be.embeddingBackward(ids, in.randn(1, N, D), dTable); // repeated ids collide
          in.keep("dTable", dTable);
        });
    c.put(
        "rmsnormForward",
        in -> {
          Tensor w = in.randn(1, D);
          for (boolean delta : new boolean[] {false, true}) {
            Tensor res = in.randn(1, N, D);
            Tensor out = in.nan(N, D);
            Tensor rstd = in.nan(N);
            in.be.rmsnormForward(res, delta ? in.randn(1, N, D) : null, w, 1e-5f, out, rstd);
            in.keep("residual delta=" + delta, res);
            in.keep("out delta=" + delta, out);
            in.keep("rstd delta=" + delta, rstd);
          }
        });
    c.put(
        "rmsnormBackward",
        in -> {
          Tensor w = in.randn(1, D);
          Tensor x = in.randn(1, N, D);
          Tensor out = in.nan(N, D);
          Tensor rstd = in.nan(N);
          in.be.rmsnormForward(x, null, w, 1e-5f, out, rstd);
          Tensor dOut = in.randn(1, N, D);
          Tensor dx = in.randn(1, N, D);
          Tensor dw = in.randn(1, D);
          in.be.rmsnormBackward(dOut, x, w, rstd, dx, dw);
          in.keep("dx +=", dx);
          in.keep("dw +=", dw);
          Tensor dx2 = in.randn(1, N, D);
          in.be.rmsnormBackward(dOut, x, w, rstd, dx2, null); // frozen weight
          in.keep("dx dw=null", dx2);
        });
    c.put(
        "ropeForward",
        in -> {
          Tensor x = in.randn(1, N, 4, 64);
          in.be.ropeForward(x, positions(in, N), 1e6f);
          in.keep("x", x);
        });
    c.put(
        "ropeBackward",
        in -> {
          Tensor dx = in.randn(1, N, 4, 64);
          in.be.ropeBackward(dx, positions(in, N), 1e6f);
          in.keep("dx", dx);
        });
    c.put(
        "attentionForward",
        in -> {
          int b = 2;
          int t = 23;
          AttnSpec spec = attnSpec(in, b, t);
          Tensor q = in.randn(1, b * t, 4, 64);
          Tensor k = in.randn(1, b * t, 2, 64);
          Tensor v = in.randn(1, b * t, 2, 64);
          Tensor out = in.nan(b * t, 4, 64);
          Tensor lse = in.nan(b * t, 4);
          in.be.attentionForward(q, k, v, spec, out, lse);
          in.keep("out", out);
          in.keep("lse", lse);
        });
    c.put(
        "attentionBackward",
        in -> {
          int b = 2;
          int t = 23;
          AttnSpec spec = attnSpec(in, b, t);
          Tensor q = in.randn(1, b * t, 4, 64);
          Tensor k = in.randn(1, b * t, 2, 64);
          Tensor v = in.randn(1, b * t, 2, 64);
          Tensor out = in.nan(b * t, 4, 64);
          Tensor lse = in.nan(b * t, 4);
          in.be.attentionForward(q, k, v, spec, out, lse);
          Tensor dq = in.nan(b * t, 4, 64);
          Tensor dk = in.nan(b * t, 2, 64);
          Tensor dv = in.nan(b * t, 2, 64);
          in.be.attentionBackward(in.randn(1, b * t, 4, 64), q, k, v, out, lse, spec, dq, dk, dv);
          in.keep("dq", dq);
          in.keep("dk", dk);
          in.keep("dv", dv);
        });
    c.put(
        "routerTopK",
        in -> {
          Tensor probs = in.nan(N, E);
          Tensor topW = in.nan(N, K);
          Tensor topI = in.nanInts(N, K);
          in.be.routerTopK(in.randn(2, N, E), K, probs, topW, topI);
          in.keep("probs", probs);
          in.keep("topWeights", topW);
          in.keep("topIdx", topI);
        });
    c.put(
        "routerBackward",
        in -> {
          Tensor probs = in.nan(N, E);
          Tensor topW = in.nan(N, K);
          Tensor topI = in.nanInts(N, K);
          in.be.routerTopK(in.randn(2, N, E), K, probs, topW, topI);
          Tensor dTop = in.randn(1, N, K);
          Tensor dProbs = in.randn(1, N, E);
          for (int variant = 0; variant < 3; variant++) {
            Tensor dLogits = in.nan(N, E);
            in.be.routerBackward(
                variant == 1 ? null : dTop, variant == 2 ? null : dProbs, probs, topI, dLogits);
            in.keep("dLogits variant " + variant, dLogits);
          }
        });
    c.put(
        "flattenSortCount",
        in -> {
          Routed r = Routed.of(in);
          in.keep("sortedExpertIdxs", r.sortedExperts);
          in.keep("sortedScatteredIdxs", r.sortedScattered);
          in.keep("expertOffsets", r.offs);
        });
    c.put(
        "scatter2scatter",
        in -> {
          Routed r = Routed.of(in);
          for (boolean groupedIn : new boolean[] {false, true}) {
            for (boolean groupedOut : new boolean[] {false, true}) {
              for (boolean transW : new boolean[] {true, false}) {
                boolean bias = groupedIn == groupedOut;
                // W (E, O=F, I=D): transposed it maps D to F (w1), else F to D (w1's backward).
                int inW = transW ? D : F;
                int outW = transW ? F : D;
                Tensor x = in.randn(1, groupedIn ? M : N, inW);
                Tensor w = in.randn(0.2, E, F, D);
                Tensor y = in.nan(M, outW);
                in.be.scatter2scatter(
                    x,
                    w,
                    bias ? in.randn(1, E, outW) : null,
                    transW,
                    groupedIn ? 1 : K,
                    r.sortedExperts,
                    r.sortedScattered,
                    groupedIn,
                    groupedOut,
                    y);
                in.keep(
                    "y groupedIn="
                        + groupedIn
                        + " groupedOut="
                        + groupedOut
                        + " transW="
                        + transW
                        + " bias="
                        + bias,
                    y);
              }
            }
          }
        });
    c.put(
        "gateRowsBackward",
        in -> {
          Routed r = Routed.of(in);
          // V = 301 columns: off the 16-byte path; F = 48: on it
          for (int cols : new int[] {V, F}) {
            Tensor gates = in.randn(1, M);
            Tensor grouped = in.randn(1, M, cols);
            Tensor dGates = in.nan(M);
            in.be.gateRowsBackward(
                grouped, in.randn(1, M, cols), 1, r.sortedScattered, gates, dGates);
            in.keep("rows grouped C=" + cols, grouped);
            in.keep("dGates grouped C=" + cols, dGates);
            Tensor slots = in.randn(1, M, cols);
            Tensor dGatesSlots = in.nan(M);
            in.be.gateRowsBackward(slots, in.randn(1, N, cols), K, null, gates, dGatesSlots);
            in.keep("rows by slot C=" + cols, slots);
            in.keep("dGates by slot C=" + cols, dGatesSlots);
            Tensor scaleOnly = in.randn(1, M, cols);
            in.be.gateRowsBackward(scaleOnly, null, 1, r.sortedScattered, gates, null);
            in.keep("rows scaled only C=" + cols, scaleOnly);
          }
        });
    c.put(
        "group",
        in -> {
          Routed r = Routed.of(in);
          Tensor x = in.randn(1, N, D);
          Tensor gates = in.randn(1, M);
          for (boolean withGates : new boolean[] {false, true}) {
            Tensor out = in.nan(M, D);
            in.be.group(x, r.sortedScattered, K, withGates ? gates : null, out);
            in.keep("out gates=" + withGates, out);
          }
        });
    c.put(
        "groupXtY",
        in -> {
          Routed r = Routed.of(in);
          Tensor x = in.randn(1, M, D);
          Tensor dy = in.randn(1, M, F);
          Tensor dW = in.randn(1, E, F, D);
          Tensor db = in.randn(1, E, F);
          in.be.groupXtY(x, dy, r.offs, dW, db);
          in.keep("dW +=", dW);
          in.keep("db +=", db);
          Tensor dW2 = in.randn(1, E, F, D);
          in.be.groupXtY(x, dy, r.offs, dW2, null);
          in.keep("dW db=null", dW2);
        });
    c.put(
        "combine",
        in -> {
          Tensor expanded = in.randn(1, M, D);
          Tensor gates = in.randn(1, N, K);
          for (boolean withGates : new boolean[] {false, true}) {
            Tensor y = in.nan(N, D);
            in.be.combine(expanded, withGates ? gates : null, K, y);
            in.keep("y gates=" + withGates, y);
          }
        });
    c.put(
        "combineGatesBackward",
        in -> {
          Tensor dGates = in.nan(N, K);
          in.be.combineGatesBackward(in.randn(1, N, D), in.randn(1, M, D), K, dGates);
          in.keep("dGates", dGates);
        });
    c.put(
        "groupGatesBackward",
        in -> {
          Routed r = Routed.of(in);
          Tensor dY = in.randn(1, N, D);
          Tensor expanded = in.randn(1, M, D);
          Tensor gates = in.randn(1, M);
          for (boolean withGates : new boolean[] {false, true}) {
            Tensor dGates = in.nan(N, K);
            Tensor out = in.nan(M, D);
            in.be.groupGatesBackward(
                dY, r.sortedScattered, K, withGates ? gates : null, expanded, dGates, out);
            in.keep("dGates gates=" + withGates, dGates);
            in.keep("out gates=" + withGates, out);
          }
        });
    // the fused first product with SwiGLU, saving h or (variant 56) the backward's factors
    for (boolean factors : new boolean[] {false, true}) {
      c.put(
          factors ? "scatter2scatterSwigluFactors" : "scatter2scatterSwiglu",
          in -> {
            Routed r = Routed.of(in);
            Tensor h = in.nan(M, 2 * F);
            Tensor a = in.nan(M, F);
            Tensor x = in.randn(1, N, D);
            Tensor w = in.randn(0.2, E, 2 * F, D);
            if (factors) {
              in.be.scatter2scatterSwigluFactors(
                  x, w, K, r.sortedExperts, r.sortedScattered, false, h, a);
            } else {
              in.be.scatter2scatterSwiglu(x, w, K, r.sortedExperts, r.sortedScattered, false, h, a);
            }
            in.keep(factors ? "p" : "h", h);
            in.keep("a", a);
          });
    }
    c.put(
        "scatter2scatterSwigluBackward",
        in -> {
          Routed r = Routed.of(in);
          Tensor w = in.randn(0.2, E, D, F);
          Tensor h = in.randn(2, M, 2 * F);
          Tensor a = in.randn(1, M, F);
          Tensor gates = in.randn(1, M);
          for (boolean groupedIn : new boolean[] {false, true}) {
            Tensor dGates = in.nan(M);
            Tensor dH = in.nan(M, 2 * F);
            in.be.scatter2scatterSwigluBackward(
                in.randn(1, groupedIn ? M : N, D),
                w,
                groupedIn ? 1 : K,
                r.sortedExperts,
                r.sortedScattered,
                groupedIn,
                h,
                a,
                gates,
                dGates,
                dH);
            in.keep("dGates groupedIn=" + groupedIn, dGates);
            in.keep("dH groupedIn=" + groupedIn, dH);
          }
        });
    c.put(
        "scatter2scatterSwigluFactorsBackward",
        in -> {
          Routed r = Routed.of(in);
          Tensor dH = in.nan(M, 2 * F);
          in.be.scatter2scatterSwigluFactorsBackward(
              in.randn(1, M, D),
              in.randn(0.2, E, D, F),
              r.sortedExperts,
              r.sortedScattered,
              in.randn(1, M, 2 * F),
              dH);
          in.keep("dH", dH);
        });
    c.put(
        "swigluFactorsBackwardBesideDw",
        in -> {
          Routed r = Routed.of(in);
          Tensor a = in.randn(1, M, F);
          Tensor dYGrouped = in.randn(1, M, D);
          Tensor w = in.randn(0.2, E, D, F);
          Tensor factors = in.randn(1, M, 2 * F);
          for (boolean accumulate : new boolean[] {true, false}) {
            Tensor dW = in.randn(1, E, D, F);
            Tensor dH = in.nan(M, 2 * F);
            in.be.swigluFactorsBackwardBesideDw(
                a,
                dYGrouped,
                r.offs,
                dW,
                accumulate,
                w,
                r.sortedExperts,
                r.sortedScattered,
                factors,
                dH);
            in.keep("dW accumulate=" + accumulate, dW);
            in.keep("dH accumulate=" + accumulate, dH);
          }
        });
    c.put(
        "scatter2scatterBesideDw",
        in -> {
          Routed r = Routed.of(in);
          Tensor xGrouped = in.randn(1, M, D);
          Tensor dYGrouped = in.randn(1, M, F);
          Tensor w = in.randn(0.2, E, F, D);
          for (boolean groupedOut : new boolean[] {true, false}) {
            Tensor dW = in.randn(1, E, F, D);
            Tensor dX = in.nan(M, D);
            in.be.scatter2scatterBesideDw(
                xGrouped,
                dYGrouped,
                r.offs,
                dW,
                groupedOut,
                w,
                r.sortedExperts,
                r.sortedScattered,
                groupedOut,
                dX);
            in.keep("dW groupedOut=accumulate=" + groupedOut, dW);
            in.keep("dX groupedOut=" + groupedOut, dX);
          }
        });
    c.put(
        "swigluForward",
        in -> {
          Tensor a = in.nan(M, F);
          in.be.swigluForward(in.randn(2, M, 2 * F), a);
          in.keep("a", a);
        });
    c.put(
        "swigluBackward",
        in -> {
          Tensor dH = in.nan(M, 2 * F);
          in.be.swigluBackward(in.randn(1, M, F), in.randn(2, M, 2 * F), dH);
          in.keep("dH", dH);
        });
    c.put(
        "swigluFactors",
        in -> {
          Tensor h = in.randn(2, M, 2 * F);
          Tensor a = in.nan(M, F);
          in.be.swigluFactors(h, a);
          in.keep("p", h);
          in.keep("a", a);
        });
    c.put(
        "swigluBackwardFactors",
        in -> {
          Tensor dH = in.nan(M, 2 * F);
          in.be.swigluBackwardFactors(in.randn(1, M, F), in.randn(1, M, 2 * F), dH);
          in.keep("dH", dH);
        });
    c.put(
        "crossEntropy",
        in -> {
          int[] t = new int[N];
          for (int i = 0; i < N; i++) {
            t[i] = i % 5 == 2 ? -100 : in.r.nextInt(V);
          }
          Tensor targets = in.ints(t, N);
          Tensor logits = in.randn(3, N, V);
          Tensor losses = in.nan(N);
          Tensor dLogits = in.nan(N, V);
          in.be.crossEntropy(logits, targets, losses, dLogits, 0.25f);
          in.keep("losses", losses);
          in.keep("dLogits", dLogits);
          Tensor losses2 = in.nan(N);
          in.be.crossEntropy(logits, targets, losses2, null, 1f);
          in.keep("losses dLogits=null", losses2);
          in.be.crossEntropy(logits, targets, losses2, logits, 0.25f); // in place
          in.keep("dLogits in place", logits);
        });
    c.put(
        "lmHeadCrossEntropy",
        in -> {
          int[] t = new int[N];
          for (int i = 0; i < N; i++) {
            t[i] = i % 5 == 2 ? -100 : in.r.nextInt(V);
          }
          Tensor targets = in.ints(t, N);
          Tensor x = in.randn(1, N, D);
          Tensor w = in.randn(0.1, V, D);
          // chunks of 8 rows: four whole ones and a ragged fifth
          Tensor losses = in.nan(N);
          Tensor dx = in.nan(N, D);
          Tensor dw = in.randn(0.01, V, D); // += : starts from something
          in.be.lmHeadCrossEntropy(x, w, targets, losses, dx, dw, 0.25f, 8);
          in.keep("losses", losses);
          in.keep("dx", dx);
          in.keep("dw +=", dw);
          Tensor losses2 = in.nan(N);
          in.be.lmHeadCrossEntropy(x, w, targets, losses2, null, null, 0f, 8);
          in.keep("losses, no gradient", losses2);
          Tensor dx2 = in.nan(N, D);
          in.be.lmHeadCrossEntropy(x, w, targets, losses2, dx2, null, 0.5f, N);
          in.keep("dx, one chunk, dw=null", dx2);
        });
    c.put(
        "loadBalancingLoss",
        in -> {
          int rows = 2 * N; // two layers stacked
          Tensor probs = in.nan(rows, E);
          Tensor topW = in.nan(rows, K);
          Tensor topI = in.nanInts(rows, K);
          in.be.routerTopK(in.randn(2, rows, E), K, probs, topW, topI);
          for (boolean masked : new boolean[] {false, true}) {
            Tensor loss = in.nan(1);
            Tensor dProbs = in.nan(rows, E);
            in.be.loadBalancingLoss(
                probs, topI, masked ? in.rowMask(rows) : null, loss, dProbs, 0.02f);
            in.keep("loss masked=" + masked, loss);
            in.keep("dProbs masked=" + masked, dProbs);
          }
        });
    c.put(
        "routerZLoss",
        in -> {
          int rows = 2 * N;
          Tensor logits = in.randn(3, rows, E);
          for (boolean masked : new boolean[] {false, true}) {
            Tensor loss = in.nan(1);
            Tensor dLogits = in.randn(1, rows, E);
            in.be.routerZLoss(logits, masked ? in.rowMask(rows) : null, loss, dLogits, 1e-3f);
            in.keep("loss masked=" + masked, loss);
            in.keep("dLogits += masked=" + masked, dLogits);
          }
        });
    c.put(
        "expertLoadStats",
        in -> {
          int layers = 2;
          int rows = layers * N;
          Tensor probs = in.nan(rows, E);
          Tensor topW = in.nan(rows, K);
          Tensor topI = in.nanInts(rows, K);
          in.be.routerTopK(in.randn(2, rows, E), K, probs, topW, topI);
          for (boolean masked : new boolean[] {false, true}) {
            Tensor acc = in.positive(1, layers, E + 2);
            in.be.expertLoadStats(probs, topI, masked ? in.rowMask(rows) : null, acc);
            in.keep("acc += masked=" + masked, acc);
          }
        });
    c.put(
        "sum",
        in -> {
          Tensor out = in.nan(1);
          in.be.sum(in.randn(1, 1237), 0.5f, out);
          in.keep("out", out);
        });
    c.put(
        "sumSquares",
        in -> {
          Tensor acc = in.floats(new float[] {0.7f}, 1);
          in.be.sumSquares(in.randn(1, 1237), acc);
          in.keep("acc +=", acc);
        });
    c.put(
        "clipByNorm",
        in -> {
          Tensor g = in.randn(1, 1237);
          Tensor sq = in.floats(new float[] {0f}, 1);
          in.be.sumSquares(g, sq);
          in.be.clipByNorm(g, sq, 3f); // norm about 35: clipped
          in.keep("g clipped", g);
          Tensor g2 = in.randn(1, 1237);
          in.be.clipByNorm(g2, in.floats(new float[] {4f}, 1), 3f); // norm 2: unchanged
          in.keep("g unclipped", g2);
        });
    c.put(
        "adamwStep",
        in -> {
          int n = 1237;
          Tensor p = in.randn(1, n);
          Tensor g = in.randn(1, n);
          Tensor m = in.randn(0.1, n);
          Tensor v = in.positive(0.01, n);
          in.be.adamwStep(
              p, g, m, v, AdamWCoefficients.of(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 3), null);
          in.keep("param", p);
          in.keep("m", m);
          in.keep("v", v);
        });
    return java.util.Collections.unmodifiableMap(c);
  }

  private static Tensor embeddingIds(Inputs in) {
    int[] ids = new int[N];
    for (int i = 0; i < N; i++) {
      ids[i] = in.r.nextInt(i % 3 == 0 ? 5 : V); // small ids repeat, so the backward collides
    }
    return in.ints(ids, N);
  }

  /**
   * Compares one case's outputs: normwise relative error ‖a − e‖ / ‖e‖ within tol, NaN exactly
   * where expected has NaN (a poisoned element left unwritten shows as NaN). Returns the failures,
   * each with its first mismatching indices.
   */
  public static List<String> compare(
      String op, Map<String, float[]> expected, Map<String, float[]> actual, double tol) {
    List<String> fails = new ArrayList<>();
    if (!expected.keySet().equals(actual.keySet())) {
      fails.add(op + ": outputs " + actual.keySet() + ", expected " + expected.keySet());
      return fails;
    }
    for (String name : expected.keySet()) {
      float[] e = expected.get(name);
      float[] a = actual.get(name);
      String what = op + " " + name;
      if (e.length != a.length) {
        fails.add(what + ": " + a.length + " elements, expected " + e.length);
        continue;
      }
      double d2 = 0;
      double r2 = 0;
      List<String> bad = new ArrayList<>();
      for (int i = 0; i < e.length; i++) {
        boolean en = Float.isNaN(e[i]);
        if (en != Float.isNaN(a[i])) {
          if (bad.size() < 5) {
            bad.add(String.format("[%d] got %.7g expected %.7g", i, a[i], e[i]));
          }
          continue;
        }
        if (!en) {
          double d = (double) a[i] - e[i];
          d2 += d * d;
          r2 += (double) e[i] * e[i];
          if (tol == 0 && d != 0 && bad.size() < 5) {
            bad.add(String.format("[%d] got %.9g expected %.9g", i, a[i], e[i]));
          }
        }
      }
      // An all-zero expected output (rare) is measured against the inputs' unit scale.
      double rel = r2 == 0 ? Math.sqrt(d2 / Math.max(1, e.length)) : Math.sqrt(d2 / r2);
      if (!bad.isEmpty() || !(rel <= tol)) {
        fails.add(
            String.format(
                "%s: normwise rel err %.3g (tol %.1g); %s",
                what, rel, tol, String.join(", ", bad)));
      }
    }
    return fails;
  }

  /** The outputs that hold NaN although every input was finite: elements an op never wrote. */
  public static List<String> unwritten(String op, Map<String, float[]> outputs) {
    List<String> out = new ArrayList<>();
    for (var o : outputs.entrySet()) {
      float[] v = o.getValue();
      for (int i = 0; i < v.length; i++) {
        if (!Float.isFinite(v[i])) {
          out.add(op + " " + o.getKey() + ": element " + i + " is " + v[i] + " (never written?)");
          break;
        }
      }
    }
    return out;
  }
}
