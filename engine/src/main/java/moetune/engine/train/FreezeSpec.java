package moetune.engine.train;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import moetune.engine.hf.MixtralNames;

/**
 * Parameters that are not trained. Their gradients are zeroed before every optimizer step and they
 * are left out of weight decay, so AdamW leaves them bit for bit unchanged (zero gradient, zero
 * moments, zero update) and they add nothing to the gradient norm.
 *
 * @param router the router (gate) of every layer (hub {@code block_sparse_moe.gate} or fused {@code
 *     mlp.gate})
 * @param attention q/k/v/o projections of every layer
 * @param embeddings the token embedding and the lm_head
 * @param layers whole decoder layers by index (attention, router, experts and norms)
 */
public record FreezeSpec(
    boolean router, boolean attention, boolean embeddings, Set<Integer> layers) {
  public static final FreezeSpec NONE = new FreezeSpec(false, false, false, Set.of());

  public FreezeSpec {
    layers = Set.copyOf(layers);
  }

  /** Whether the parameter with this HF name (hub layout) is frozen. */
  public boolean isFrozen(String name) {
    if (embeddings && (name.equals(MixtralNames.EMBED) || name.equals(MixtralNames.LM_HEAD))) {
      return true;
    }
    int layer = MixtralNames.layerOf(name);
    if (layer < 0) {
      return false;
    }
    if (layers.contains(layer)) {
      return true;
    }
    if (router && MixtralNames.isRouter(name)) {
      return true;
    }
    return attention && MixtralNames.isAttention(name);
  }

  /** The spec as the list of words the run config uses: router, attention, embeddings, layer:N. */
  public List<String> words() {
    List<String> out = new ArrayList<>();
    if (router) out.add("router");
    if (attention) out.add("attention");
    if (embeddings) out.add("embeddings");
    for (int l : new TreeSet<>(layers)) out.add("layer:" + l);
    return out;
  }
}
