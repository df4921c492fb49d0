package moetune.engine.train;

/**
 * Accumulates, per layer, how many routed (token, slot) pairs each expert received and the summed
 * entropy of the router's softmax, over one or more micro-batches, then turns them into an {@link
 * ExpertLoad}. Padding tokens are excluded by whoever fills it.
 */
public final class RouterStats {
  private final long[][] counts; // (L, E)
  private final double[] entropySum; // (L)
  private final long[] tokens; // (L)

  public RouterStats(int layers, int experts) {
    counts = new long[layers][experts];
    entropySum = new double[layers];
    tokens = new long[layers];
  }

  public int layers() {
    return counts.length;
  }

  public int experts() {
    return counts[0].length;
  }

  /**
   * Adds one token's routing in one layer.
   *
   * @param probs (E) the softmax over experts, read from {@code probs[offset, offset+E)}
   * @param topIdx (K) chosen experts, read from {@code topIdx[kOffset, kOffset+K)}
   */
  public void addToken(int layer, float[] probs, int offset, int[] topIdx, int kOffset, int k) {
    int e = counts[layer].length;
    double h = 0;
    for (int i = 0; i < e; i++) {
      double p = probs[offset + i];
      if (p > 0) {
        h -= p * Math.log(p);
      }
    }
    entropySum[layer] += h;
    tokens[layer]++;
    for (int j = 0; j < k; j++) {
      counts[layer][topIdx[kOffset + j]]++;
    }
  }

  /**
   * Statistics from per-layer sums as {@code Backend#expertLoadStats} accumulates them: sums (L,
   * E+2) row-major, per layer the E slot counts, the entropy sum and the token count. The counts
   * are whole numbers held in float32 (exact below 2^24 per step and layer).
   */
  public static RouterStats ofSums(int layers, int experts, float[] sums) {
    if (sums.length != layers * (experts + 2)) {
      throw new IllegalArgumentException(
          "RouterStats.ofSums: "
              + sums.length
              + " sums for "
              + layers
              + " layers of "
              + experts
              + " experts (need L * (E + 2))");
    }
    RouterStats s = new RouterStats(layers, experts);
    for (int l = 0; l < layers; l++) {
      int at = l * (experts + 2);
      for (int e = 0; e < experts; e++) {
        s.counts[l][e] = Math.round(sums[at + e]);
      }
      s.entropySum[l] = sums[at + experts];
      s.tokens[l] = Math.round(sums[at + experts + 1]);
    }
    return s;
  }

  /** Adds another accumulator's numbers to this one. */
  public void add(RouterStats other) {
    for (int l = 0; l < counts.length; l++) {
      for (int e = 0; e < counts[l].length; e++) {
        counts[l][e] += other.counts[l][e];
      }
      entropySum[l] += other.entropySum[l];
      tokens[l] += other.tokens[l];
    }
  }

  public ExpertLoad toExpertLoad(long step) {
    int l = counts.length;
    double[][] share = new double[l][];
    double[] entropy = new double[l];
    for (int i = 0; i < l; i++) {
      long total = 0;
      for (long c : counts[i]) {
        total += c;
      }
      share[i] = new double[counts[i].length];
      for (int e = 0; e < counts[i].length; e++) {
        share[i][e] = total == 0 ? 0 : (double) counts[i][e] / total;
      }
      entropy[i] = tokens[i] == 0 ? 0 : entropySum[i] / tokens[i];
    }
    return new ExpertLoad(step, share, entropy);
  }
}
