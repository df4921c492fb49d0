package moetune.engine.backend.cpu;

import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.Tensor;

/** Token embedding lookup and its scatter-add backward. */
final class CpuEmbedding {
  /** Columns per task in the backward: each task owns a column range of dTable. */
  private static final int COLS_PER_TASK = 32;

  private final Parallel par;

  CpuEmbedding(Parallel par) {
    this.par = par;
  }

  /** out[n] = table[ids[n]]; ids I32 (N), table (V, D), out (N, D) overwrite. */
  void forward(Tensor idst, Tensor tablet, Tensor outt) {
    String op = "embeddingForward";
    CpuTensor ids = Args.i32(op, "ids", idst);
    CpuTensor table = Args.f32(op, "table", tablet);
    CpuTensor out = Args.f32(op, "out", outt);
    int[] nd = OpShapes.embedding(op, ids, table, "out", out);
    int n = nd[0], d = nd[1], v = nd[2];
    int[] idv = checkedIds(op, ids, v);
    float[] tab = table.floats();
    float[] o = out.floats();
    int to = table.offset();
    int oo = out.offset();
    par.forChunks(
        n,
        64,
        (s, e) -> {
          for (int i = s; i < e; i++) {
            System.arraycopy(tab, to + idv[i] * d, o, oo + i * d, d);
          }
        });
  }

  /**
   * dTable[ids[n]] += dOut[n]. Repeated ids would race if tokens were split across threads, so
   * tasks split the columns instead and each sums its columns over the tokens in order.
   */
  void backward(Tensor idst, Tensor doutt, Tensor dtablet) {
    String op = "embeddingBackward";
    CpuTensor ids = Args.i32(op, "ids", idst);
    CpuTensor dTable = Args.f32(op, "dTable", dtablet);
    CpuTensor dOut = Args.f32(op, "dOut", doutt);
    int[] nd = OpShapes.embedding(op, ids, dTable, "dOut", dOut);
    int n = nd[0], d = nd[1], v = nd[2];
    int[] idv = checkedIds(op, ids, v);
    float[] g = dOut.floats();
    float[] t = dTable.floats();
    int go = dOut.offset();
    int tOff = dTable.offset();
    par.forChunks(
        d,
        COLS_PER_TASK,
        (c0, c1) -> {
          for (int i = 0; i < n; i++) {
            int tr = tOff + idv[i] * d;
            int gr = go + i * d;
            for (int c = c0; c < c1; c++) {
              t[tr + c] += g[gr + c];
            }
          }
        });
  }

  private static int[] checkedIds(String op, CpuTensor ids, int vocab) {
    int[] out = new int[ids.size()];
    int[] src = ids.ints();
    for (int i = 0; i < out.length; i++) {
      int id = src[ids.offset() + i];
      if (id < 0 || id >= vocab) {
        throw new IllegalArgumentException(
            op + ": ids[" + i + "] = " + id + " is outside the table's " + vocab + " rows");
      }
      out[i] = id;
    }
    return out;
  }
}
