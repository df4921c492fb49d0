package moetune.engine.testing;

/**
 * The seed of a randomised test: {@code -Dmoetune.seed=N} when given (to replay a failure), else
 * the test's default. The seed used is printed, so every failure can be replayed.
 */
public final class TestSeeds {
  public static final String PROPERTY = "moetune.seed";

  private TestSeeds() {}

  /** The seed for {@code what}: the property's value, else {@code fallback}; printed. */
  public static long seed(String what, long fallback) {
    String given = System.getProperty(PROPERTY);
    long seed;
    if (given == null || given.isBlank()) {
      seed = fallback;
    } else {
      try {
        seed = Long.parseLong(given.strip());
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException(
            "-D"
                + PROPERTY
                + "="
                + given
                + ": not a whole number; give e.g. -D"
                + PROPERTY
                + "=42");
      }
    }
    System.out.println(what + ": seed " + seed + " (replay with -D" + PROPERTY + "=" + seed + ")");
    return seed;
  }

  /** A fresh seed per run (different inputs every time) unless -Dmoetune.seed fixes one. */
  public static long seed(String what) {
    return seed(what, System.nanoTime());
  }
}
