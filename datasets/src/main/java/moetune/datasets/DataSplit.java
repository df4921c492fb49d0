package moetune.datasets;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/** Deterministic shuffling and train / eval splitting. */
public final class DataSplit {
  /** The two parts of a split, each in shuffled order. */
  public record Split<T>(List<T> train, List<T> eval) {}

  private DataSplit() {}

  /**
   * A shuffled copy: Fisher-Yates driven by {@code java.util.Random(seed)}, whose sequence the JDK
   * specifies, so the same seed gives the same order on every JVM and machine.
   */
  public static <T> List<T> shuffle(List<T> items, long seed) {
    List<T> out = new ArrayList<>(items);
    Random r = new Random(seed);
    for (int i = out.size() - 1; i > 0; i--) {
      int j = r.nextInt(i + 1);
      T t = out.get(i);
      out.set(i, out.get(j));
      out.set(j, t);
    }
    return out;
  }

  /**
   * Shuffles by {@code seed}, then puts {@code round(n * evalFraction)} items (at least 1 when the
   * fraction is positive and n ≥ 2, and never all of them) into eval.
   */
  public static <T> Split<T> split(List<T> items, double evalFraction, long seed) {
    if (!(evalFraction >= 0 && evalFraction < 1)) {
      throw new DatasetException("eval fraction " + evalFraction + " must be in [0, 1)");
    }
    List<T> s = shuffle(items, seed);
    int n = s.size();
    int nEval = (int) Math.round(n * evalFraction);
    if (evalFraction > 0 && n >= 2) {
      nEval = Math.max(1, Math.min(nEval, n - 1));
    }
    return new Split<>(List.copyOf(s.subList(nEval, n)), List.copyOf(s.subList(0, nEval)));
  }
}
