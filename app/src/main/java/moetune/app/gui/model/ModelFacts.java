package moetune.app.gui.model;

/**
 * What the Model screen shows about a Mixtral, independent of where it came from (an HF directory
 * or a fresh config). Shape letters as in the engine: V vocab, D hidden, F expert intermediate, E
 * experts, K top-k, L layers, H heads, Hkv kv heads.
 *
 * @param source the directory or config file it was read from
 * @param dtype the checkpoint's weight dtype as stored (e.g. "bfloat16"), or the config's
 * @param totalParams every parameter
 * @param activeParams parameters one token touches: everything but the E - K unused experts
 */
public record ModelFacts(
    String source,
    int vocab,
    int hidden,
    int intermediate,
    int layers,
    int heads,
    int kvHeads,
    int headDim,
    int experts,
    int topK,
    int contextLength,
    String dtype,
    long totalParams,
    long activeParams) {

  public ModelFacts {
    if (topK > experts) {
      throw new IllegalArgumentException(
          source + ": num_experts_per_tok " + topK + " exceeds num_local_experts " + experts);
    }
  }
}
