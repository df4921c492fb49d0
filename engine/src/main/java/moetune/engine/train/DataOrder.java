package moetune.engine.train;

/**
 * The order in which training sequences are visited: an endless stream of epochs, each a
 * permutation of [0, n) that depends only on (seed, epoch). Element j of the stream is {@code
 * permutation(j / n)[j % n]}. Micro-batch i of the run takes elements [i*B, (i+1)*B), so where the
 * run is in its data is a function of the step alone, and a resumed run sees the very sequences the
 * uninterrupted one would have.
 *
 * <p>The generator is SplitMix64, written out here so the order never changes with the JDK.
 */
public final class DataOrder {
  private final int n;
  private final long seed;
  private final boolean shuffle;
  private long cachedEpoch = -1;
  private int[] cachedPermutation;

  public DataOrder(int n, long seed, boolean shuffle) {
    if (n <= 0) {
      throw new IllegalArgumentException("DataOrder: need at least one sequence, got " + n);
    }
    this.n = n;
    this.seed = seed;
    this.shuffle = shuffle;
  }

  /** The index of the j-th element of the stream. */
  public int at(long j) {
    long epoch = j / n;
    return permutation(epoch)[(int) (j % n)];
  }

  /** The epoch that stream element j belongs to. */
  public long epochOf(long j) {
    return j / n;
  }

  /** The permutation of [0, n) used in the given epoch (identity without shuffling). */
  public int[] permutation(long epoch) {
    if (epoch != cachedEpoch) {
      cachedPermutation = build(epoch);
      cachedEpoch = epoch;
    }
    return cachedPermutation;
  }

  private int[] build(long epoch) {
    int[] p = new int[n];
    for (int i = 0; i < n; i++) {
      p[i] = i;
    }
    if (!shuffle) {
      return p;
    }
    long state = mix(seed ^ mix(epoch + 0x5851f42d4c957f2dL));
    for (int i = n - 1; i > 0; i--) {
      state += 0x9e3779b97f4a7c15L;
      int j = (int) Long.remainderUnsigned(mix(state), i + 1);
      int tmp = p[i];
      p[i] = p[j];
      p[j] = tmp;
    }
    return p;
  }

  /** SplitMix64's output function (also used for other deterministic streams). */
  public static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    return z ^ (z >>> 31);
  }
}
