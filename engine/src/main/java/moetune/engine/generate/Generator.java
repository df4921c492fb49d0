package moetune.engine.generate;

import java.util.Arrays;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.Predicate;
import moetune.engine.model.KvCache;
import moetune.engine.model.MixtralModel;
import moetune.engine.tensor.HostTensor;

/**
 * Autoregressive generation with a KV cache: one prefill of the prompt, then one token per decode
 * step, until an end-of-sequence id, a caller's stop test (a template's stop string), the token
 * budget or the model's context length.
 *
 * <p>Sampling follows transformers' order: temperature, then top-p (the smallest set of tokens
 * whose probability reaches p, ties broken by id), then a draw; temperature 0 is greedy (argmax,
 * lowest id on ties) and draws nothing. The draw uses a seeded SplittableRandom, so a seed
 * reproduces a sample.
 */
public final class Generator {

  /**
   * @param maxNewTokens at most this many new tokens
   * @param temperature 0 for greedy decoding
   * @param topP nucleus mass in (0, 1]; 1 keeps every token
   * @param seed seeds the draw
   */
  public record Settings(int maxNewTokens, double temperature, double topP, long seed) {
    public Settings {
      if (maxNewTokens < 0 || !(temperature >= 0) || !(topP > 0 && topP <= 1)) {
        throw new IllegalArgumentException(
            "generate: need max-new-tokens >= 0, temperature >= 0 and top-p in (0, 1]; got "
                + maxNewTokens
                + ", "
                + temperature
                + ", "
                + topP);
      }
    }
  }

  /** Why generation ended. */
  public enum Stop {
    EOS,
    STOP_STRING,
    MAX_TOKENS,
    CONTEXT_FULL
  }

  /**
   * @param tokens the new tokens (the EOS that ended it excluded)
   * @param stop why it ended
   * @param stepLogits logits (V) of each generated position, for tests; index i produced tokens[i]
   */
  public record Result(int[] tokens, Stop stop, float[][] stepLogits) {}

  private Generator() {}

  /**
   * Generates after {@code prompt}. {@code stopTest} sees the new tokens so far after each one
   * (return true to stop, e.g. when their text contains a stop string).
   */
  public static Result generate(
      MixtralModel model,
      int[] prompt,
      Settings s,
      Set<Integer> eosIds,
      Predicate<int[]> stopTest) {
    if (prompt.length == 0) {
      throw new IllegalArgumentException("generate: the prompt has no tokens");
    }
    int context = model.config().maxPositionEmbeddings;
    if (prompt.length >= context) {
      throw new IllegalArgumentException(
          "generate: the prompt has "
              + prompt.length
              + " tokens, the model's context is "
              + context);
    }
    int capacity = Math.min(context, prompt.length + Math.max(1, s.maxNewTokens()));
    SplittableRandom rng = new SplittableRandom(s.seed());
    int[] out = new int[s.maxNewTokens()];
    float[][] logitsLog = new float[s.maxNewTokens()][];
    int n = 0;
    Stop stop = Stop.MAX_TOKENS;
    try (KvCache cache = model.newKvCache(1, capacity)) {
      HostTensor logits = model.decode(cache, new int[][] {prompt});
      while (n < s.maxNewTokens()) {
        float[] row = logits.toFloatArray();
        int next = sample(row, s.temperature(), s.topP(), rng);
        if (eosIds.contains(next)) {
          stop = Stop.EOS;
          break;
        }
        logitsLog[n] = row;
        out[n++] = next;
        if (stopTest.test(Arrays.copyOf(out, n))) {
          stop = Stop.STOP_STRING;
          break;
        }
        if (n == s.maxNewTokens()) {
          break;
        }
        if (cache.length() >= cache.capacity()) {
          stop = Stop.CONTEXT_FULL;
          break;
        }
        logits = model.decode(cache, new int[][] {{next}});
      }
    }
    return new Result(Arrays.copyOf(out, n), stop, Arrays.copyOf(logitsLog, n));
  }

  /** The next token from one row of logits (V). */
  public static int sample(float[] logits, double temperature, double topP, SplittableRandom rng) {
    if (temperature == 0) {
      int best = 0;
      for (int i = 1; i < logits.length; i++) {
        if (logits[i] > logits[best]) {
          best = i;
        }
      }
      return best;
    }
    int v = logits.length;
    double max = Double.NEGATIVE_INFINITY;
    for (float x : logits) {
      max = Math.max(max, x / temperature);
    }
    double[] p = new double[v];
    double z = 0;
    for (int i = 0; i < v; i++) {
      p[i] = Math.exp(logits[i] / temperature - max);
      z += p[i];
    }
    Integer[] order = new Integer[v];
    for (int i = 0; i < v; i++) {
      order[i] = i;
      p[i] /= z;
    }
    Arrays.sort(order, (a, b) -> p[a] != p[b] ? Double.compare(p[b], p[a]) : Integer.compare(a, b));
    int keep = 0;
    double mass = 0;
    while (keep < v && (keep == 0 || mass < topP)) {
      mass += p[order[keep++]];
    }
    double u = rng.nextDouble() * mass;
    double acc = 0;
    for (int i = 0; i < keep; i++) {
      acc += p[order[i]];
      if (u < acc) {
        return order[i];
      }
    }
    return order[keep - 1];
  }
}
