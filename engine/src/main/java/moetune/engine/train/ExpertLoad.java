package moetune.engine.train;

/**
 * How the router spread one step's tokens over the experts, per layer: what MoE users watch to see
 * router collapse (one expert taking most tokens) and dead experts (a share of 0).
 *
 * @param step the optimizer step
 * @param share (L, E): the fraction of routed (token, slot) pairs that went to each expert; each
 *     layer's row sums to 1 (uniform is 1/E)
 * @param entropy (L): the mean over tokens of the entropy (nats) of the router's softmax over all E
 *     experts; ln(E) is a router that cannot decide, 0 one that always picks with certainty
 */
public record ExpertLoad(long step, double[][] share, double[] entropy) {

  /** The largest share in the layer divided by the uniform share 1/E (1 = perfectly balanced). */
  public double imbalance(int layer) {
    double max = 0;
    for (double s : share[layer]) {
      max = Math.max(max, s);
    }
    return max * share[layer].length;
  }
}
