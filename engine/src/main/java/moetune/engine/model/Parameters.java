package moetune.engine.model;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.function.Predicate;
import moetune.engine.backend.Backend;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * Every parameter of a Mixtral model, in two stores:
 *
 * <ul>
 *   <li>Trainable tensors are views into one flat float32 master buffer, with their gradient a view
 *       at the same offset of one flat float32 gradient buffer, so that the optimizer, zeroing and
 *       the grad norm run over a few large tensors. In a low-precision mode a third flat buffer
 *       holds the working copy (e.g. BF16) the forward and backward compute with; in float32 mode
 *       the working copy is the master itself.
 *   <li>Frozen tensors (chosen when the parameters are allocated) are stored once, in the working
 *       dtype (bf16 on the GPU, as a bf16 checkpoint stores them), in one flat buffer: no float32
 *       master, no gradient, no optimizer state. Their {@link #grad} is null and the model skips
 *       their weight-gradient products (the input gradient still flows through them).
 * </ul>
 *
 * <p>Parameters are named as transformers 5 names them in memory (the fused expert layout): {@code
 * model.layers.N.mlp.gate.weight}, {@code model.layers.N.mlp.experts.gate_up_proj} (E, 2F, D) and
 * {@code model.layers.N.mlp.experts.down_proj} (E, D, F). {@link #resolve} also accepts the hub
 * checkpoint names ({@code block_sparse_moe.gate.weight}, {@code
 * block_sparse_moe.experts.E.w1/w2/w3.weight}), each a contiguous slice of a fused tensor. LoRA
 * adapters (see {@link LoraConfig}) are trainable parameters named {@code <target>.lora_A.weight}
 * (r, in) and {@code <target>.lora_B.weight} (out, r) for the attention projections and the router,
 * and {@code model.layers.N.mlp.experts.gate_up_proj.lora_A} (E, r, D) / {@code .lora_B} (E, 2F,
 * r), {@code ...down_proj.lora_A} (E, r, F) / {@code .lora_B} (E, D, r) for the experts.
 *
 * <p>Layout of the trainable buffer: every matrix first, then the 1-D norm weights, so that the
 * usual "no weight decay on norms" choice splits the buffer into two runs.
 */
public final class Parameters implements AutoCloseable {

  /**
   * One named tensor: its shape, its element offset in its store, and which store: the trainable
   * flat buffers (master, grad, work) or the frozen one.
   */
  public record Slice(String name, long[] shape, long offset, boolean frozen) {
    public Slice(String name, long[] shape, long offset) {
      this(name, shape, offset, false);
    }

    public long numel() {
      return HostTensor.numel(shape);
    }

    /** Whether this is a 1-D weight (a norm). */
    public boolean isVector() {
      return shape.length == 1;
    }

    /** Whether this is a LoRA adapter tensor. */
    public boolean isLora() {
      return MixtralNames.isLora(name);
    }
  }

  private final MixtralConfig config;
  private final LoraConfig lora; // or null
  private final List<Slice> slices; // layout order
  private final Map<String, Slice> byName;
  private final long total; // trainable elements
  private final long frozenTotal; // frozen elements
  private final Tensor master; // F32 (P) trainable
  private final Tensor grad; // F32 (P)
  private final Tensor work; // working dtype (P); == master in float32 mode
  private final Tensor frozen; // working dtype (Pf), or null when nothing is frozen
  private final ExpertShard shard; // which experts this process holds
  private final long replicated; // trainable elements before this rank's own experts
  private List<DeferredZero> deferred = List.of(); // by offset; see zeroGradDeferring

  private Parameters(
      MixtralConfig config,
      LoraConfig lora,
      List<Slice> slices,
      Tensor master,
      Tensor grad,
      Tensor work,
      Tensor frozen,
      ExpertShard shard,
      long replicated) {
    this.config = config;
    this.lora = lora;
    this.slices = List.copyOf(slices);
    Map<String, Slice> m = new LinkedHashMap<>();
    long t = 0;
    long f = 0;
    for (Slice s : slices) {
      m.put(s.name(), s);
      if (s.frozen()) {
        f += s.numel();
      } else {
        t += s.numel();
      }
    }
    this.byName = Collections.unmodifiableMap(m);
    this.total = t;
    this.frozenTotal = f;
    this.master = master;
    this.grad = grad;
    this.work = work;
    this.frozen = frozen;
    this.shard = shard;
    this.replicated = replicated;
  }

  /** Allocates zeroed buffers for the config's parameters, all trainable, without adapters. */
  static Parameters allocate(Backend backend, MixtralConfig c, DType workDtype) {
    return allocate(backend, c, workDtype, name -> false, null);
  }

  /**
   * Allocates zeroed buffers; workDtype is F32 or a 16-bit float. A base parameter (fused name) is
   * frozen when {@code frozen} says so, and every base parameter is frozen when lora is not null
   * (which adds the adapters as the trainable parameters).
   */
  static Parameters allocate(
      Backend backend,
      MixtralConfig c,
      DType workDtype,
      Predicate<String> isFrozen,
      LoraConfig lora) {
    return allocate(backend, c, workDtype, isFrozen, lora, ExpertShard.ALL);
  }

  /**
   * As above, holding only the experts of {@code shard} (expert parallel): the fused expert tensors
   * are (E/ranks, 2F, D) and (E/ranks, D, F), this rank's block. Split, the trainable expert
   * tensors go last in the flat buffers, after every replicated parameter ({@link
   * #replicatedCount}), so that data parallel's ZeRO partition covers the replicated part and each
   * rank steps its own experts.
   */
  static Parameters allocate(
      Backend backend,
      MixtralConfig c,
      DType workDtype,
      Predicate<String> isFrozen,
      LoraConfig lora,
      ExpertShard shard) {
    List<long[]> shapes = new ArrayList<>();
    List<String> names = new ArrayList<>();
    long d = c.hiddenSize;
    long hd = c.headDim();
    long e = c.numLocalExperts;
    long el = shard.perRank(c.numLocalExperts);
    long f = c.intermediateSize;
    names.add(MixtralNames.EMBED);
    shapes.add(new long[] {c.vocabSize, d});
    for (int l = 0; l < c.numHiddenLayers; l++) {
      names.add(MixtralNames.weight(MixtralNames.attention(l, "q_proj")));
      shapes.add(new long[] {c.numAttentionHeads * hd, d});
      names.add(MixtralNames.weight(MixtralNames.attention(l, "k_proj")));
      shapes.add(new long[] {c.numKeyValueHeads * hd, d});
      names.add(MixtralNames.weight(MixtralNames.attention(l, "v_proj")));
      shapes.add(new long[] {c.numKeyValueHeads * hd, d});
      names.add(MixtralNames.weight(MixtralNames.attention(l, "o_proj")));
      shapes.add(new long[] {d, c.numAttentionHeads * hd});
      names.add(MixtralNames.fusedRouter(l));
      shapes.add(new long[] {e, d});
      names.add(MixtralNames.fusedGateUp(l));
      shapes.add(new long[] {el, 2 * f, d});
      names.add(MixtralNames.fusedDown(l));
      shapes.add(new long[] {el, d, f});
    }
    if (!c.tieWordEmbeddings) {
      names.add(MixtralNames.LM_HEAD);
      shapes.add(new long[] {c.vocabSize, d});
    }
    int baseMatrices = names.size();
    if (lora != null) {
      addLora(c, lora, names, shapes);
    }
    int loraEnd = names.size();
    for (int l = 0; l < c.numHiddenLayers; l++) {
      names.add(MixtralNames.inputNorm(l));
      shapes.add(new long[] {d});
      names.add(MixtralNames.postAttentionNorm(l));
      shapes.add(new long[] {d});
    }
    names.add(MixtralNames.NORM);
    shapes.add(new long[] {d});
    List<Slice> slices = new ArrayList<>();
    long offset = 0;
    long frozenOffset = 0;
    List<Integer> own = new ArrayList<>(); // split: this rank's trainable experts, placed last
    for (int i = 0; i < names.size(); i++) {
      boolean adapter = i >= baseMatrices && i < loraEnd;
      boolean frozen = !adapter && (lora != null || isFrozen.test(names.get(i)));
      long n = HostTensor.numel(shapes.get(i));
      if (frozen) {
        slices.add(new Slice(names.get(i), shapes.get(i), frozenOffset, true));
        frozenOffset += n;
      } else if (shard.split() && isExpertTensor(names.get(i))) {
        own.add(i);
        slices.add(null); // placed below
      } else {
        slices.add(new Slice(names.get(i), shapes.get(i), offset, false));
        offset += n;
      }
    }
    long replicated = offset;
    for (int i : own) {
      slices.set(i, new Slice(names.get(i), shapes.get(i), offset, false));
      offset += HostTensor.numel(shapes.get(i));
    }
    Tensor master = backend.zeros(DType.F32, offset);
    Tensor grad = backend.zeros(DType.F32, offset);
    Tensor work = workDtype == DType.F32 ? master : backend.zeros(workDtype, offset);
    Tensor frozen = frozenOffset == 0 ? null : backend.zeros(workDtype, frozenOffset);
    return new Parameters(c, lora, slices, master, grad, work, frozen, shard, replicated);
  }

  /** Whether a fused name is a layer's expert tensor (gate_up_proj or down_proj). */
  static boolean isExpertTensor(String fusedName) {
    int l = MixtralNames.layerOf(fusedName);
    return l >= 0
        && (fusedName.equals(MixtralNames.fusedGateUp(l))
            || fusedName.equals(MixtralNames.fusedDown(l)));
  }

  /** Which experts this process holds. */
  public ExpertShard expertShard() {
    return shard;
  }

  /**
   * The trainable elements every rank holds alike: the flat buffers' elements [0,
   * replicatedCount()); the rest, [replicatedCount(), count()), are this rank's own experts (none
   * unless the experts are split).
   */
  public long replicatedCount() {
    return replicated;
  }

  /**
   * Whether a checkpoint name (hub, fused or adapter) is held here: false only for another rank's
   * expert ({@code block_sparse_moe.experts.E.wN.weight} with E outside this rank's block).
   */
  public boolean holds(String hfName) {
    MixtralNames.ExpertWeight w = MixtralNames.parseExpert(hfName);
    return w == null || !shard.split() || shard.holds(w.expert(), config.numLocalExperts);
  }

  /**
   * The part of a checkpoint tensor this process stores: the tensor itself, or, for a fused expert
   * tensor of all E experts while the experts are split, this rank's block of it (a copy).
   */
  public HostTensor localPart(String hfName, HostTensor value) {
    if (!shard.split() || !isExpertTensor(hfName) || !byName.containsKey(hfName)) {
      return value;
    }
    Slice s = byName.get(hfName);
    long all = s.numel() * shard.ranks();
    if (value.numel() != all) {
      return value; // the caller names the shape mismatch
    }
    long bytes = s.numel() * value.dtype().bytes();
    java.nio.ByteBuffer src = value.bytes().duplicate().order(java.nio.ByteOrder.LITTLE_ENDIAN);
    src.position((int) (shard.rank() * bytes)).limit((int) ((shard.rank() + 1) * bytes));
    java.nio.ByteBuffer out =
        java.nio.ByteBuffer.allocate((int) bytes).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    out.put(src).flip();
    return new HostTensor(value.dtype(), s.shape(), out);
  }

  /**
   * The fused expert tensors (trainable or frozen), layer by layer, gate_up_proj then down_proj.
   */
  public List<Slice> expertSlices() {
    List<Slice> out = new ArrayList<>();
    for (Slice s : slices) {
      if (isExpertTensor(s.name())) {
        out.add(s);
      }
    }
    return out;
  }

  /**
   * The hub names of every expert of a fused expert tensor (all E, whichever rank holds them) with
   * the element offset of each inside one expert's (O, I) block and its shape, in {@link #hubNames}
   * order: w1 then w3 per expert for gate_up_proj, w2 for down_proj.
   */
  public List<Slice> hubPartsOfExpert(Slice fused, int expert) {
    String n = fused.name();
    long d = config.hiddenSize;
    long f = config.intermediateSize;
    int l = MixtralNames.layerOf(n);
    if (n.equals(MixtralNames.fusedGateUp(l))) {
      return List.of(
          new Slice(MixtralNames.expert(l, expert, "w1"), new long[] {f, d}, 0, fused.frozen()),
          new Slice(
              MixtralNames.expert(l, expert, "w3"), new long[] {f, d}, f * d, fused.frozen()));
    }
    return List.of(
        new Slice(MixtralNames.expert(l, expert, "w2"), new long[] {d, f}, 0, fused.frozen()));
  }

  /** The adapters' tensors by moetune name with their shapes, in layout order. */
  static Map<String, long[]> loraShapes(MixtralConfig c, LoraConfig lora) {
    List<String> names = new ArrayList<>();
    List<long[]> shapes = new ArrayList<>();
    addLora(c, lora, names, shapes);
    Map<String, long[]> out = new LinkedHashMap<>();
    for (int i = 0; i < names.size(); i++) {
      out.put(names.get(i), shapes.get(i));
    }
    return out;
  }

  /** The adapters' names and shapes, layer by layer in {@link LoraConfig#ALL_TARGETS} order. */
  private static void addLora(
      MixtralConfig c, LoraConfig lora, List<String> names, List<long[]> shapes) {
    long r = lora.r();
    long d = c.hiddenSize;
    long hd = c.headDim();
    long e = c.numLocalExperts;
    long f = c.intermediateSize;
    for (int l = 0; l < c.numHiddenLayers; l++) {
      long[][] inOut = {
        {d, c.numAttentionHeads * hd},
        {d, c.numKeyValueHeads * hd},
        {d, c.numKeyValueHeads * hd},
        {c.numAttentionHeads * hd, d}
      };
      List<String> proj = MixtralNames.ATTENTION_PROJECTIONS;
      for (int i = 0; i < proj.size(); i++) {
        if (lora.targets(proj.get(i))) {
          String module = MixtralNames.attention(l, proj.get(i));
          names.add(MixtralNames.lora(module, "A"));
          shapes.add(new long[] {r, inOut[i][0]});
          names.add(MixtralNames.lora(module, "B"));
          shapes.add(new long[] {inOut[i][1], r});
        }
      }
      if (lora.targets("gate")) {
        names.add(MixtralNames.lora(MixtralNames.fusedRouterModule(l), "A"));
        shapes.add(new long[] {r, d});
        names.add(MixtralNames.lora(MixtralNames.fusedRouterModule(l), "B"));
        shapes.add(new long[] {e, r});
      }
      if (lora.gateUp()) {
        names.add(MixtralNames.fusedLora(MixtralNames.fusedGateUp(l), "A"));
        shapes.add(new long[] {e, r, d});
        names.add(MixtralNames.fusedLora(MixtralNames.fusedGateUp(l), "B"));
        shapes.add(new long[] {e, 2 * f, r});
      }
      if (lora.down()) {
        names.add(MixtralNames.fusedLora(MixtralNames.fusedDown(l), "A"));
        shapes.add(new long[] {e, r, f});
        names.add(MixtralNames.fusedLora(MixtralNames.fusedDown(l), "B"));
        shapes.add(new long[] {e, d, r});
      }
    }
  }

  /** The adapters' settings, or null when the model has none. */
  public LoraConfig lora() {
    return lora;
  }

  /** Whether a parameter (fused or adapter name) exists. */
  public boolean has(String name) {
    return byName.containsKey(name);
  }

  /** The parameters in layout order (fused transformers-5 names and adapters), frozen or not. */
  public List<Slice> slices() {
    return slices;
  }

  /** The trainable parameters, in their order in the flat buffers. */
  public List<Slice> trainableSlices() {
    List<Slice> out = new ArrayList<>();
    for (Slice s : slices) {
      if (!s.frozen()) {
        out.add(s);
      }
    }
    return out;
  }

  /** P, the number of trainable scalar parameters (the length of the flat buffers). */
  public long count() {
    return total;
  }

  /** The number of frozen scalar parameters (stored once, in the working dtype). */
  public long frozenCount() {
    return frozenTotal;
  }

  /** The flat float32 master weights of the trainable parameters (P). */
  public Tensor masterFlat() {
    return master;
  }

  /**
   * The flat float32 gradients (P), accumulated by backward until {@link #zeroGrad}. A slice whose
   * zeroing {@link #zeroGradDeferring} left to its next backward and that no backward has written
   * yet is zeroed here first, so the caller reads what a full zeroGrad would have left.
   */
  public Tensor gradFlat() {
    settleDeferred(0, total);
    return grad;
  }

  /**
   * The view [offset, offset + numel) of the flat float32 gradients: the deferred slices
   * overlapping it are settled as {@link #gradFlat()} settles them, the others stay deferred, so a
   * data-parallel optimizer reducing one finished bucket during the backward does not zero the
   * expert gradients a later layer's backward is still to write.
   */
  public Tensor gradRange(long offset, long numel) {
    if (offset < 0 || numel < 0 || offset + numel > total) {
      throw new IllegalArgumentException(
          "gradRange: [" + offset + ", " + (offset + numel) + ") outside [0, " + total + ")");
    }
    settleDeferred(offset, offset + numel);
    return grad.view(offset, numel);
  }

  /** The flat working copy (P) the model computes with; the master itself in float32 mode. */
  public Tensor workFlat() {
    return work;
  }

  /** The flat store of the frozen parameters (working dtype), or null when none is frozen. */
  public Tensor frozenFlat() {
    return frozen;
  }

  /** Whether the working copy is a separate low-precision buffer. */
  public boolean hasWorkingCopy() {
    return work != master;
  }

  /** The working-copy view of a fused-named parameter (what the forward reads). */
  Tensor weight(String name) {
    Slice s = slice(name);
    return (s.frozen() ? frozen : work).view(s.offset(), s.shape());
  }

  /** The gradient view of a fused-named parameter, or null when it is frozen. */
  Tensor grad(String name) {
    Slice s = slice(name);
    return s.frozen() ? null : grad.view(s.offset(), s.shape());
  }

  /**
   * Where a slice's value lives: the float32 master for a trainable one, the frozen store for a
   * frozen one (what loading writes and saving reads).
   */
  public Tensor value(Slice s) {
    return (s.frozen() ? frozen : master).view(s.offset(), s.shape());
  }

  /**
   * Writes a host value into a slice (its master and working copy, or its frozen store), converting
   * the dtype.
   */
  public void set(Slice s, HostTensor host) {
    Backend be = master.backend();
    be.copyFromHost(host, value(s));
    if (!s.frozen() && hasWorkingCopy()) {
      be.copy(value(s), work.view(s.offset(), s.shape()));
    }
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
    int routerLayer = MixtralNames.parseRouter(hfName);
    if (routerLayer >= 0) {
      return renamed(slice(MixtralNames.fusedRouter(routerLayer)), hfName);
    }
    MixtralNames.ExpertWeight m = MixtralNames.parseExpert(hfName);
    if (m != null) {
      int layer = m.layer();
      int e = m.expert();
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
      if (!shard.holds(e, config.numLocalExperts)) {
        throw new IllegalArgumentException(
            "'"
                + hfName
                + "' is held by expert-parallel rank "
                + e / shard.perRank(config.numLocalExperts)
                + ", not by rank "
                + shard.rank());
      }
      e -= shard.first(config.numLocalExperts);
      long d = config.hiddenSize;
      long f = config.intermediateSize;
      Slice gu = slice(MixtralNames.fusedGateUp(layer));
      Slice dn = slice(MixtralNames.fusedDown(layer));
      return switch (m.w()) {
        case "w1" -> new Slice(hfName, new long[] {f, d}, gu.offset() + e * 2 * f * d, gu.frozen());
        case "w3" ->
            new Slice(hfName, new long[] {f, d}, gu.offset() + e * 2 * f * d + f * d, gu.frozen());
        default -> new Slice(hfName, new long[] {d, f}, dn.offset() + e * d * f, dn.frozen());
      };
    }
    if (hfName.equals(MixtralNames.LM_HEAD) && config.tieWordEmbeddings) {
      return renamed(slice(MixtralNames.EMBED), hfName);
    }
    throw new IllegalArgumentException(
        "no parameter named '"
            + hfName
            + "' (use a hub checkpoint name such as"
            + " model.layers.0.block_sparse_moe.experts.1.w1.weight or a fused transformers-5 name)");
  }

  /**
   * The checkpoint names of the hub layout, in a stable order (what {@code save} writes): every
   * base parameter, frozen or not, without the adapters.
   */
  public List<String> hubNames() {
    return hubNames(slices);
  }

  /**
   * The hub names of the trainable base parameters followed by the trainable adapters' names: what
   * has optimizer state.
   */
  public List<String> trainableNames() {
    return hubNames(trainableSlices());
  }

  private List<String> hubNames(List<Slice> which) {
    List<String> out = new ArrayList<>();
    for (Slice s : which) {
      String n = s.name();
      int l = MixtralNames.layerOf(n);
      if (l >= 0 && n.equals(MixtralNames.fusedRouter(l))) {
        out.add(MixtralNames.router(l));
      } else if (l >= 0 && n.equals(MixtralNames.fusedGateUp(l))) {
        for (int e = 0; e < config.numLocalExperts; e++) {
          out.add(MixtralNames.expert(l, e, "w1"));
          out.add(MixtralNames.expert(l, e, "w3"));
        }
      } else if (l >= 0 && n.equals(MixtralNames.fusedDown(l))) {
        for (int e = 0; e < config.numLocalExperts; e++) {
          out.add(MixtralNames.expert(l, e, "w2"));
        }
      } else if (!s.isLora() || which != slices) {
        out.add(n);
      }
    }
    return out;
  }

  /**
   * A view of the flat buffer {@code flat} (master, grad, work or optimizer state; the frozen store
   * for a frozen slice) at a slice.
   */
  public static Tensor view(Tensor flat, Slice s) {
    return flat.view(s.offset(), s.shape());
  }

  /** Copies the master weights into the working copy (after loading or an external change). */
  public void syncWorkingCopy() {
    if (hasWorkingCopy()) {
      master.backend().copy(master, work);
    }
  }

  /** Sets every gradient to zero. */
  public void zeroGrad() {
    zeroGradDeferring(List.of());
  }

  /**
   * A trainable slice whose next backward writes its gradient (=) instead of adding to it (+=), for
   * as long as {@code pending} says so (it turns false once that backward has started).
   */
  public record DeferredZero(Slice slice, BooleanSupplier pending) {
    public DeferredZero {
      if (slice.frozen()) {
        throw new IllegalArgumentException("a frozen slice has no gradient: " + slice.name());
      }
    }
  }

  /**
   * Sets every gradient to zero except the slices of {@code later}, whose next backward writes
   * them: the memset of what is overwritten anyway is skipped (for the expert weights, most of a
   * MoE model's gradients). Any of them still pending when the gradients are next read through
   * {@link #gradFlat} is zeroed then (a backward that never ran, or ran on no rows of an expert
   * parallel rank), so readers see the same values as after {@link #zeroGrad}.
   */
  public void zeroGradDeferring(List<DeferredZero> later) {
    List<DeferredZero> sorted = new ArrayList<>(later);
    sorted.sort(Comparator.comparingLong(d -> d.slice().offset()));
    Backend be = grad.backend();
    long at = 0; // everything before this is zero or deferred
    for (DeferredZero d : sorted) {
      Slice s = d.slice();
      if (byName.get(s.name()) != s) {
        throw new IllegalArgumentException("not a slice of these parameters: " + s.name());
      }
      if (s.offset() < at) {
        throw new IllegalArgumentException("deferred twice: " + s.name());
      }
      if (s.offset() > at) {
        be.fill(grad.view(at, s.offset() - at), 0f);
      }
      at = s.offset() + s.numel();
    }
    if (at < grad.numel()) {
      be.fill(grad.view(at, grad.numel() - at), 0f);
    }
    deferred = List.copyOf(sorted);
  }

  /**
   * Zeroes the deferred slices overlapping [from, to) that no backward has written since {@link
   * #zeroGradDeferring}; those slices are no longer deferred, the rest stay.
   */
  private void settleDeferred(long from, long to) {
    if (deferred.isEmpty()) {
      return;
    }
    List<DeferredZero> left = new ArrayList<>();
    for (DeferredZero d : deferred) {
      Slice s = d.slice();
      if (s.offset() >= to || s.offset() + s.numel() <= from) {
        left.add(d);
      } else if (d.pending().getAsBoolean()) {
        grad.backend().fill(view(grad, s), 0f);
      }
    }
    deferred = List.copyOf(left);
  }

  private static Slice renamed(Slice s, String name) {
    return new Slice(name, s.shape(), s.offset(), s.frozen());
  }

  @Override
  public void close() {
    if (work != master) {
      work.close();
    }
    master.close();
    grad.close();
    if (frozen != null) {
      frozen.close();
    }
  }
}
