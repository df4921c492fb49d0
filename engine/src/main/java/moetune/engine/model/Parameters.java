package moetune.engine.model;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import moetune.engine.backend.Backend;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * Every parameter of a Mixtral model as a view into one flat float32 master buffer, with its
 * gradient a view at the same offset of one flat float32 gradient buffer, so that the optimizer,
 * zeroing and the grad norm run over a few large tensors. In a low-precision mode a third flat
 * buffer holds the working copy (e.g. BF16) the forward and backward compute with; in float32 mode
 * the working copy is the master itself.
 *
 * <p>Parameters are named as transformers 5 names them in memory (the fused expert layout): {@code
 * model.layers.N.mlp.gate.weight}, {@code model.layers.N.mlp.experts.gate_up_proj} (E, 2F, D) and
 * {@code model.layers.N.mlp.experts.down_proj} (E, D, F). {@link #resolve} also accepts the hub
 * checkpoint names ({@code block_sparse_moe.gate.weight}, {@code
 * block_sparse_moe.experts.E.w1/w2/w3.weight}), each a contiguous slice of a fused tensor.
 *
 * <p>Layout: every matrix first, then the 1-D norm weights, so that the usual "no weight decay on
 * norms" choice splits the buffer into two runs.
 */
public final class Parameters implements AutoCloseable {

  /** One named tensor: its shape and its element offset in the flat buffers. */
  public record Slice(String name, long[] shape, long offset) {
    public long numel() {
      return HostTensor.numel(shape);
    }

    /** Whether this is a 1-D weight (a norm). */
    public boolean isVector() {
      return shape.length == 1;
    }
  }

  private static final Pattern HUB_EXPERT =
      Pattern.compile(
          "model\\.layers\\.(\\d+)\\.block_sparse_moe\\.experts\\.(\\d+)\\.(w[123])\\.weight");
  private static final Pattern HUB_GATE =
      Pattern.compile("model\\.layers\\.(\\d+)\\.block_sparse_moe\\.gate\\.weight");

  private final Backend backend; // the one that allocated the buffers (may wrap another)
  private final MixtralConfig config;
  private final List<Slice> slices; // layout order
  private final Map<String, Slice> byName;
  private final long total;
  private final Tensor master; // F32 (P)
  private final Tensor grad; // F32 (P)
  private final Tensor work; // working dtype (P); == master in float32 mode

  private Parameters(
      Backend backend,
      MixtralConfig config,
      List<Slice> slices,
      Tensor master,
      Tensor grad,
      Tensor work) {
    this.backend = backend;
    this.config = config;
    this.slices = List.copyOf(slices);
    Map<String, Slice> m = new LinkedHashMap<>();
    long t = 0;
    for (Slice s : slices) {
      m.put(s.name(), s);
      t += s.numel();
    }
    this.byName = Collections.unmodifiableMap(m);
    this.total = t;
    this.master = master;
    this.grad = grad;
    this.work = work;
  }

  /** Allocates zeroed buffers for the config's parameters; workDtype is F32 or a 16-bit float. */
  static Parameters allocate(Backend backend, MixtralConfig c, DType workDtype) {
    List<long[]> shapes = new ArrayList<>();
    List<String> names = new ArrayList<>();
    long d = c.hiddenSize;
    long hd = c.headDim();
    long e = c.numLocalExperts;
    long f = c.intermediateSize;
    names.add("model.embed_tokens.weight");
    shapes.add(new long[] {c.vocabSize, d});
    for (int l = 0; l < c.numHiddenLayers; l++) {
      String p = "model.layers." + l + ".";
      names.add(p + "self_attn.q_proj.weight");
      shapes.add(new long[] {c.numAttentionHeads * hd, d});
      names.add(p + "self_attn.k_proj.weight");
      shapes.add(new long[] {c.numKeyValueHeads * hd, d});
      names.add(p + "self_attn.v_proj.weight");
      shapes.add(new long[] {c.numKeyValueHeads * hd, d});
      names.add(p + "self_attn.o_proj.weight");
      shapes.add(new long[] {d, c.numAttentionHeads * hd});
      names.add(p + "mlp.gate.weight");
      shapes.add(new long[] {e, d});
      names.add(p + "mlp.experts.gate_up_proj");
      shapes.add(new long[] {e, 2 * f, d});
      names.add(p + "mlp.experts.down_proj");
      shapes.add(new long[] {e, d, f});
    }
    if (!c.tieWordEmbeddings) {
      names.add("lm_head.weight");
      shapes.add(new long[] {c.vocabSize, d});
    }
    for (int l = 0; l < c.numHiddenLayers; l++) {
      names.add("model.layers." + l + ".input_layernorm.weight");
      shapes.add(new long[] {d});
      names.add("model.layers." + l + ".post_attention_layernorm.weight");
      shapes.add(new long[] {d});
    }
    names.add("model.norm.weight");
    shapes.add(new long[] {d});
    List<Slice> slices = new ArrayList<>();
    long offset = 0;
    for (int i = 0; i < names.size(); i++) {
      slices.add(new Slice(names.get(i), shapes.get(i), offset));
      offset += HostTensor.numel(shapes.get(i));
    }
    Tensor master = backend.zeros(DType.F32, offset);
    Tensor grad = backend.zeros(DType.F32, offset);
    Tensor work = workDtype == DType.F32 ? master : backend.zeros(workDtype, offset);
    return new Parameters(backend, c, slices, master, grad, work);
  }

  /**
   * The backend the buffers were allocated with. Ops on the parameters go through it rather than
   * through {@code tensor.backend()}, so that a wrapping backend (the step benchmark's profiler)
   * sees them.
   */
  public Backend backend() {
    return backend;
  }

  /** The parameters in layout order (fused transformers-5 names). */
  public List<Slice> slices() {
    return slices;
  }

  /** P, the number of scalar parameters. */
  public long count() {
    return total;
  }

  /** The flat float32 master weights (P). */
  public Tensor masterFlat() {
    return master;
  }

  /** The flat float32 gradients (P), accumulated by backward until {@link #zeroGrad}. */
  public Tensor gradFlat() {
    return grad;
  }

  /** The flat working copy (P) the model computes with; the master itself in float32 mode. */
  public Tensor workFlat() {
    return work;
  }

  /** Whether the working copy is a separate low-precision buffer. */
  public boolean hasWorkingCopy() {
    return work != master;
  }

  /** The working-copy view of a fused-named parameter (what the forward reads). */
  Tensor weight(String name) {
    Slice s = slice(name);
    return work.view(s.offset(), s.shape());
  }

  /** The gradient view of a fused-named parameter. */
  Tensor grad(String name) {
    Slice s = slice(name);
    return grad.view(s.offset(), s.shape());
  }

  /** A parameter by fused name; throws naming it when there is none. */
  public Slice slice(String name) {
    Slice s = byName.get(name);
    if (s == null) {
      throw new IllegalArgumentException("no parameter named '" + name + "'");
    }
    return s;
  }

  /**
   * The slice a checkpoint name denotes: a fused transformers-5 name, or a hub name ({@code
   * block_sparse_moe.gate.weight}, {@code block_sparse_moe.experts.E.wN.weight}; with tied
   * embeddings, {@code lm_head.weight} is the embedding).
   */
  public Slice resolve(String hfName) {
    Slice s = byName.get(hfName);
    if (s != null) {
      return s;
    }
    Matcher g = HUB_GATE.matcher(hfName);
    if (g.matches()) {
      return renamed(slice("model.layers." + g.group(1) + ".mlp.gate.weight"), hfName);
    }
    Matcher m = HUB_EXPERT.matcher(hfName);
    if (m.matches()) {
      int layer = Integer.parseInt(m.group(1));
      int e = Integer.parseInt(m.group(2));
      if (layer >= config.numHiddenLayers || e >= config.numLocalExperts) {
        throw new IllegalArgumentException(
            "'"
                + hfName
                + "': the model has "
                + config.numHiddenLayers
                + " layers of "
                + config.numLocalExperts
                + " experts");
      }
      long d = config.hiddenSize;
      long f = config.intermediateSize;
      String p = "model.layers." + layer + ".mlp.experts.";
      return switch (m.group(3)) {
        case "w1" ->
            new Slice(
                hfName, new long[] {f, d}, slice(p + "gate_up_proj").offset() + e * 2 * f * d);
        case "w3" ->
            new Slice(
                hfName,
                new long[] {f, d},
                slice(p + "gate_up_proj").offset() + e * 2 * f * d + f * d);
        default ->
            new Slice(hfName, new long[] {d, f}, slice(p + "down_proj").offset() + e * d * f);
      };
    }
    if (hfName.equals("lm_head.weight") && config.tieWordEmbeddings) {
      return renamed(slice("model.embed_tokens.weight"), hfName);
    }
    throw new IllegalArgumentException(
        "no parameter named '"
            + hfName
            + "' (use a hub checkpoint name such as"
            + " model.layers.0.block_sparse_moe.experts.1.w1.weight or a fused transformers-5 name)");
  }

  /** The checkpoint names of the hub layout, in a stable order (what {@code save} writes). */
  public List<String> hubNames() {
    List<String> out = new ArrayList<>();
    for (Slice s : slices) {
      String n = s.name();
      if (n.endsWith(".mlp.gate.weight")) {
        out.add(n.replace(".mlp.gate.weight", ".block_sparse_moe.gate.weight"));
      } else if (n.endsWith(".mlp.experts.gate_up_proj")) {
        String p = n.substring(0, n.length() - ".mlp.experts.gate_up_proj".length());
        for (int e = 0; e < config.numLocalExperts; e++) {
          out.add(p + ".block_sparse_moe.experts." + e + ".w1.weight");
          out.add(p + ".block_sparse_moe.experts." + e + ".w3.weight");
        }
      } else if (n.endsWith(".mlp.experts.down_proj")) {
        String p = n.substring(0, n.length() - ".mlp.experts.down_proj".length());
        for (int e = 0; e < config.numLocalExperts; e++) {
          out.add(p + ".block_sparse_moe.experts." + e + ".w2.weight");
        }
      } else {
        out.add(n);
      }
    }
    return out;
  }

  /** A view of the flat buffer {@code flat} (master, grad, work or optimizer state) at a slice. */
  public static Tensor view(Tensor flat, Slice s) {
    return flat.view(s.offset(), s.shape());
  }

  /** Copies the master weights into the working copy (after loading or an external change). */
  public void syncWorkingCopy() {
    if (hasWorkingCopy()) {
      backend.copy(master, work);
    }
  }

  /** Sets every gradient to zero. */
  public void zeroGrad() {
    backend.fill(grad, 0f);
  }

  private static Slice renamed(Slice s, String name) {
    return new Slice(name, s.shape(), s.offset());
  }

  @Override
  public void close() {
    if (work != master) {
      work.close();
    }
    master.close();
    grad.close();
  }
}
