package moetune.engine.train;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
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

  /** The words of a freeze list, the one place they are spelled (help text and errors). */
  public static final String SYNTAX = "router, attention, embeddings, layer:N, layer:A-B";

  private static final String ROUTER = "router";
  private static final String ATTENTION = "attention";
  private static final String EMBEDDINGS = "embeddings";
  private static final Pattern LAYERS = Pattern.compile("layers?:(\\d+)(?:-(\\d+))?");

  /** The spec as the list of words the run config uses: router, attention, embeddings, layer:N. */
  public List<String> words() {
    List<String> out = new ArrayList<>();
    if (router) out.add(ROUTER);
    if (attention) out.add(ATTENTION);
    if (embeddings) out.add(EMBEDDINGS);
    for (int l : new TreeSet<>(layers)) out.add("layer:" + l);
    return out;
  }

  /**
   * The spec a list of words gives (the inverse of {@link #words}); layer:A-B freezes A to B
   * inclusive. Throws IllegalArgumentException naming the bad word.
   */
  public static FreezeSpec parse(List<String> words) {
    boolean router = false;
    boolean attention = false;
    boolean embeddings = false;
    Set<Integer> layers = new TreeSet<>();
    for (String w : words) {
      switch (w) {
        case ROUTER -> router = true;
        case ATTENTION -> attention = true;
        case EMBEDDINGS -> embeddings = true;
        default -> layers.addAll(parseLayers(w));
      }
    }
    return new FreezeSpec(router, attention, embeddings, layers);
  }

  private static Set<Integer> parseLayers(String w) {
    Matcher m = LAYERS.matcher(w);
    if (!m.matches()) {
      throw new IllegalArgumentException("'" + w + "' is not one of " + SYNTAX);
    }
    int a = Integer.parseInt(m.group(1));
    int b = m.group(2) == null ? a : Integer.parseInt(m.group(2));
    if (b < a) {
      throw new IllegalArgumentException(
          w + " counts down; give the lower layer first (layer:" + b + "-" + a + ")");
    }
    Set<Integer> out = new TreeSet<>();
    for (int i = a; i <= b; i++) {
      out.add(i);
    }
    return out;
  }
}
