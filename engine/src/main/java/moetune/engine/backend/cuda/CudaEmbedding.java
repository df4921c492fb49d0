package moetune.engine.backend.cuda;

import static moetune.engine.backend.cuda.CudaContext.blockFor;
import static moetune.engine.backend.cuda.CudaContext.dt;

import moetune.engine.backend.OpShapes;
import moetune.engine.tensor.Tensor;

/**
 * embeddingForward and embeddingBackward on the GPU (embedding.cu), one block per token. The CPU
 * twin is {@code CpuEmbedding}; shapes are checked by {@link OpShapes#embedding}.
 */
final class CudaEmbedding {
  private final CudaContext ctx;

  CudaEmbedding(CudaContext ctx) {
    this.ctx = ctx;
  }

  /** out[n] = table[ids[n]]; ids I32 (N), table (V, D), out (N, D) overwrite. */
  void forward(Tensor ids, Tensor table, Tensor out) {
    String op = "embeddingForward";
    CudaTensor i = ctx.ct(ids, op, "ids"),
        t = ctx.ct(table, op, "table"),
        o = ctx.ct(out, op, "out");
    int[] nd = OpShapes.embedding(op, i, t, "out", o);
    ctx.kernel("embedding_forward_kernel")
        .shapes(i.describe() + " " + t.describe())
        .grid(nd[0])
        .block(blockFor(nd[1]))
        .ptr("ids", i.address())
        .ptr("table", t.address())
        .i32("tdt", dt(t, op, "table"))
        .ptr("out", o.address())
        .i32("odt", dt(o, op, "out"))
        .i32("D", nd[1])
        .i32("V", nd[2])
        .launch();
  }

  /** dTable[ids[n]] += dOut[n] (atomics: ids repeat). */
  void backward(Tensor ids, Tensor dOut, Tensor dTable) {
    String op = "embeddingBackward";
    CudaTensor i = ctx.ct(ids, op, "ids"),
        g = ctx.ct(dOut, op, "dOut"),
        t = ctx.ct(dTable, op, "dTable");
    int[] nd = OpShapes.embedding(op, i, t, "dOut", g);
    ctx.kernel("embedding_backward_kernel")
        .shapes(i.describe() + " " + t.describe())
        .grid(nd[0])
        .block(blockFor(nd[1]))
        .ptr("ids", i.address())
        .ptr("dout", g.address())
        .i32("gdt", dt(g, op, "dOut"))
        .ptr("dtable", t.address())
        .i32("tdt", dt(t, op, "dTable"))
        .i32("D", nd[1])
        .i32("V", nd[2])
        .launch();
  }
}
