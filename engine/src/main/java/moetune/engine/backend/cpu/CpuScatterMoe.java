package moetune.engine.backend.cpu;

import java.util.ArrayList;
import java.util.List;
import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.Tensor;

/**
 * ScatterMoE's kernels on the CPU: scatter2scatter (the grouped product, reading and writing rows
 * through the routing indices), group, groupXtY, combine and the gates' gradient.
 *
 * <p>scatter2scatter and groupXtY run {@link CpuMatmul#tile} on each expert's run of rows; the tile
 * reads input rows through a row-offset table, so rows are gathered on the fly, never copied, as in
 * ScatterMoE.
 */
final class CpuScatterMoe {
  private static final int ROWS_PER_TASK = 32;

  private final Parallel par;

  CpuScatterMoe(Parallel par) {
    this.par = par;
  }

  /** One tile of scatter2scatter's work: rows [p0, p1) of one expert, one column panel. */
  private record Job(int expert, int p0, int p1, int panel) {}

  /** Backend#scatter2scatter. */
  void scatter2scatter(
      Tensor xt,
      Tensor wt,
      Tensor biast,
      boolean transW,
      int fanOut,
      Tensor sortedExpt,
      Tensor sortedScatt,
      boolean groupedIn,
      boolean groupedOut,
      Tensor yt) {
    String op = "scatter2scatter";
    CpuTensor w = Args.f32(op, "W", wt);
    CpuTensor sortedExp = Args.i32(op, "sortedExpertIdxs", sortedExpt);
    CpuTensor sortedScat = Args.i32(op, "sortedScatteredIdxs", sortedScatt);
    CpuTensor x = Args.f32(op, "X", xt);
    CpuTensor y = Args.f32(op, "Y", yt);
    CpuTensor bias = biast == null ? null : Args.f32(op, "bias", biast);
    int[] shape =
        OpShapes.scatter2scatter(x, w, bias, transW, fanOut, sortedExp, sortedScat, groupedIn, y);
    int e = shape[0], in = shape[1], out = shape[2], m = shape[3];
    int o = Math.toIntExact(w.dim(1));
    int i = Math.toIntExact(w.dim(2));
    CpuMatmul.checkNoOverlap(op, y, x, "X");
    int[] ev = routedExperts(op, sortedExp, e);
    int[] sv = permutation(op, sortedScat);

    // Row tables: where each routed row's input starts, where its output goes.
    int[] aRow = new int[m];
    int[] yRow = new int[m];
    for (int p = 0; p < m; p++) {
      aRow[p] = x.offset() + (groupedIn ? p : sv[p] / fanOut) * in;
      yRow[p] = y.offset() + (groupedOut ? p : sv[p]) * out;
    }
    // B' for expert e is (in, out): W[e]^T when transW, W[e] itself otherwise, packed into
    // column panels (see CpuMatmul) once per call for each expert that has rows.
    boolean[] used = new boolean[e];
    for (int p = 0; p < m; p++) {
      used[ev[p]] = true;
    }
    float[][][][] panels = new float[e][][][];
    float[] wv = w.floats();
    par.forEach(
        e,
        ex -> {
          if (used[ex]) {
            int off = w.offset() + ex * o * i;
            panels[ex] =
                transW
                    ? CpuMatmul.packTransposed(wv, off, in, out)
                    : CpuMatmul.packRows(wv, off, out, in, out);
          }
        });
    List<Job> jobs = jobs(ev, out);
    float[] xv = x.floats();
    float[] yv = y.floats();
    float[] bv = bias == null ? null : bias.floats();
    par.forEach(
        jobs.size(),
        t -> {
          Job job = jobs.get(t);
          int ex = job.expert();
          float[][] acc = CpuMatmul.accumulator(job.p1() - job.p0(), out, job.panel());
          CpuMatmul.tile(xv, aRow, 1, in, panels[ex][job.panel()], job.p0(), job.p1(), acc);
          int n0 = job.panel() * CpuMatmul.TILE_N;
          for (int p = job.p0(); p < job.p1(); p++) {
            float[] row = acc[p - job.p0()];
            int yo = yRow[p] + n0;
            if (bv == null) {
              System.arraycopy(row, 0, yv, yo, row.length);
            } else {
              int bo = bias.offset() + ex * out + n0;
              for (int j = 0; j < row.length; j++) {
                yv[yo + j] = row[j] + bv[bo + j];
              }
            }
          }
        });
  }

  /** Backend#group: out[p] = x[s_p / fanOut] * gates[s_p] (gates null: 1). */
  void group(Tensor xt, Tensor sortedScatt, int fanOut, Tensor gatest, Tensor outt) {
    String op = "group";
    CpuTensor sortedScat = Args.i32(op, "sortedScatteredIdxs", sortedScatt);
    CpuTensor x = Args.f32(op, "x", xt);
    CpuTensor out = Args.f32(op, "out", outt);
    CpuTensor gates = gatest == null ? null : Args.f32(op, "gates", gatest);
    int[] md = OpShapes.group(x, sortedScat, fanOut, gates, out);
    int m = md[0], d = md[1];
    CpuMatmul.checkNoOverlap(op, out, x, "x");
    int[] sv = permutation(op, sortedScat);
    float[] xv = x.floats();
    float[] ov = out.floats();
    float[] gv = gates == null ? null : gates.floats();
    par.forChunks(
        m,
        ROWS_PER_TASK,
        (p0, p1) -> {
          for (int p = p0; p < p1; p++) {
            int xo = x.offset() + (sv[p] / fanOut) * d;
            int oo = out.offset() + p * d;
            if (gv == null) {
              System.arraycopy(xv, xo, ov, oo, d);
            } else {
              float g = gv[gates.offset() + sv[p]];
              for (int c = 0; c < d; c++) {
                ov[oo + c] = xv[xo + c] * g;
              }
            }
          }
        });
  }

  /** Backend#groupXtY: dW[e] += dy_e^T x_e, db[e] += column sums of dy_e. */
  void groupXtY(Tensor xt, Tensor dyt, Tensor offsetst, Tensor dwt, Tensor dbt) {
    String op = "groupXtY";
    CpuTensor dw = Args.f32(op, "dW", dwt);
    CpuTensor offsets = Args.i32(op, "expertOffsets", offsetst);
    CpuTensor x = Args.f32(op, "x", xt);
    CpuTensor dy = Args.f32(op, "dy", dyt);
    CpuTensor db = dbt == null ? null : Args.f32(op, "db", dbt);
    int[] shape = OpShapes.groupXtY(x, dy, offsets, dw, db);
    int e = shape[0], o = shape[1], i = shape[2];
    int[] start = new int[e + 1];
    for (int ex = 0; ex < e; ex++) {
      start[ex + 1] = offsets.ints()[offsets.offset() + ex];
      if (!(start[ex + 1] >= start[ex])) {
        throw new IllegalArgumentException(
            op
                + ": expertOffsets decrease at expert "
                + ex
                + " ("
                + start[ex]
                + " > "
                + start[ex + 1]
                + ")");
      }
    }
    Args.check(
        start[e] == shape[3],
        op + ": expertOffsets end at row " + start[e] + ", x " + x.describe() + " has " + shape[3]);
    float[] xv = x.floats();
    float[] gv = dy.floats();
    float[] wv = dw.floats();
    // B' for expert e is its x rows (rows, I), packed into column panels.
    float[][][][] panels = new float[e][][][];
    par.forEach(
        e,
        ex -> {
          int rows = start[ex + 1] - start[ex];
          if (rows > 0) {
            panels[ex] = CpuMatmul.packRows(xv, x.offset() + start[ex] * i, i, rows, i);
          }
        });
    int tilesO = (o + CpuMatmul.TILE_M - 1) / CpuMatmul.TILE_M;
    int tilesI = CpuMatmul.panelCount(i);
    par.forEach(
        e * tilesO * tilesI,
        t -> {
          int ex = t / (tilesO * tilesI);
          int rows = start[ex + 1] - start[ex];
          if (rows == 0) {
            return; // an expert without tokens gets no gradient
          }
          int o0 = ((t / tilesI) % tilesO) * CpuMatmul.TILE_M;
          int o1 = Math.min(o, o0 + CpuMatmul.TILE_M);
          int panel = t % tilesI;
          // A'(r, p) = dy[start + p, r]: column r of the expert's dy rows, read with stride O.
          int[] aRow = new int[o1];
          for (int r = o0; r < o1; r++) {
            aRow[r] = dy.offset() + start[ex] * o + r;
          }
          float[][] acc = CpuMatmul.accumulator(o1 - o0, i, panel);
          CpuMatmul.tile(gv, aRow, o, rows, panels[ex][panel], o0, o1, acc);
          int n0 = panel * CpuMatmul.TILE_N;
          for (int r = o0; r < o1; r++) {
            float[] row = acc[r - o0];
            int wo = dw.offset() + (ex * o + r) * i + n0;
            for (int c = 0; c < row.length; c++) {
              wv[wo + c] += row[c];
            }
          }
        });
    if (db != null) {
      float[] bv = db.floats();
      par.forEach(
          e,
          ex -> {
            if (start[ex + 1] == start[ex]) {
              return;
            }
            float[] acc = new float[o];
            for (int p = start[ex]; p < start[ex + 1]; p++) {
              int go = dy.offset() + p * o;
              for (int r = 0; r < o; r++) {
                acc[r] += gv[go + r];
              }
            }
            for (int r = 0; r < o; r++) {
              bv[db.offset() + ex * o + r] += acc[r];
            }
          });
    }
  }

  /** Backend#combine: y[n] = sum_j g[n, j] * expanded[n*K + j] (g = 1 when gates is null). */
  void combine(Tensor expandedt, Tensor gatest, int k, Tensor yt) {
    String op = "combine";
    CpuTensor y = Args.f32(op, "y", yt);
    CpuTensor ex = Args.f32(op, "expanded", expandedt);
    CpuTensor gates = gatest == null ? null : Args.f32(op, "gates", gatest);
    int[] nd = OpShapes.combine(ex, gates, k, y);
    int n = nd[0], d = nd[1];
    CpuMatmul.checkNoOverlap(op, y, ex, "expanded");
    float[] xv = ex.floats();
    float[] yv = y.floats();
    float[] gv = gates == null ? null : gates.floats();
    par.forChunks(
        n,
        ROWS_PER_TASK,
        (r0, r1) -> {
          for (int r = r0; r < r1; r++) {
            int yo = y.offset() + r * d;
            java.util.Arrays.fill(yv, yo, yo + d, 0f);
            for (int j = 0; j < k; j++) {
              float g = gv == null ? 1f : gv[gates.offset() + r * k + j];
              int xo = ex.offset() + (r * k + j) * d;
              for (int c = 0; c < d; c++) {
                yv[yo + c] += g * xv[xo + c];
              }
            }
          }
        });
  }

  /** Backend#combineGatesBackward: dGates[n, j] = dot(dY[n], expanded[n*K + j]). */
  void combineGatesBackward(Tensor dyt, Tensor expandedt, int k, Tensor dGatest) {
    String op = "combineGatesBackward";
    CpuTensor dy = Args.f32(op, "dY", dyt);
    CpuTensor ex = Args.f32(op, "expanded", expandedt);
    CpuTensor dg = Args.f32(op, "dGates", dGatest);
    int[] nd = OpShapes.combineGatesBackward(dy, ex, k, dg);
    int n = nd[0], d = nd[1];
    float[] gv = dy.floats();
    float[] xv = ex.floats();
    float[] dv = dg.floats();
    par.forChunks(
        n,
        ROWS_PER_TASK,
        (r0, r1) -> {
          for (int r = r0; r < r1; r++) {
            for (int j = 0; j < k; j++) {
              double s = 0;
              int xo = ex.offset() + (r * k + j) * d;
              int go = dy.offset() + r * d;
              for (int c = 0; c < d; c++) {
                s += (double) gv[go + c] * xv[xo + c];
              }
              dv[dg.offset() + r * k + j] = (float) s;
            }
          }
        });
  }

  /** Tiles over each run of equal experts in expert order: TILE_M rows by one panel. */
  private static List<Job> jobs(int[] ev, int out) {
    List<Job> jobs = new ArrayList<>();
    int p = 0;
    while (p < ev.length) {
      int end = p;
      while (end < ev.length && ev[end] == ev[p]) {
        end++;
      }
      for (int r0 = p; r0 < end; r0 += CpuMatmul.TILE_M) {
        int r1 = Math.min(end, r0 + CpuMatmul.TILE_M);
        for (int t = 0; t < CpuMatmul.panelCount(out); t++) {
          jobs.add(new Job(ev[p], r0, r1, t));
        }
      }
      p = end;
    }
    return jobs;
  }

  private static int[] routedExperts(String op, CpuTensor sortedExp, int e) {
    int[] ev = new int[sortedExp.size()];
    int[] src = sortedExp.ints();
    for (int p = 0; p < ev.length; p++) {
      ev[p] = src[sortedExp.offset() + p];
      if (!(ev[p] >= 0 && ev[p] < e)) {
        throw new IllegalArgumentException(
            op
                + ": sortedExpertIdxs["
                + p
                + "] = "
                + ev[p]
                + " is not an expert in [0, "
                + e
                + ")");
      }
    }
    return ev;
  }

  /** The scattered indices, checked to be a permutation of [0, M) so every row is written once. */
  private static int[] permutation(String op, CpuTensor sortedScat) {
    int m = sortedScat.size();
    int[] sv = new int[m];
    boolean[] seen = new boolean[m];
    int[] src = sortedScat.ints();
    for (int p = 0; p < m; p++) {
      int s = src[sortedScat.offset() + p];
      if (!(s >= 0 && s < m && !seen[s])) {
        throw new IllegalArgumentException(
            op
                + ": sortedScatteredIdxs["
                + p
                + "] = "
                + s
                + " is "
                + (s >= 0 && s < m ? "repeated" : "outside [0, " + m + ")")
                + "; it must be a permutation of the routed rows");
      }
      seen[s] = true;
      sv[p] = s;
    }
    return sv;
  }
}
