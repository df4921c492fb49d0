package moetune.engine.optim;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;
import moetune.engine.model.Parameters;

/**
 * A run of trainable parameters that sit next to each other in the flat buffers and share their
 * weight-decay choice: the unit {@link AdamW} and {@link ShardedAdamW} step with one launch.
 *
 * @param offset first flat element
 * @param numel elements in the run
 * @param decay whether weight decay applies
 */
record DecayRun(long offset, long numel, boolean decay) {

  /** The trainable slices (frozen ones have no state) merged into runs, in flat order. */
  static List<DecayRun> of(Parameters params, Predicate<Parameters.Slice> decay) {
    List<DecayRun> r = new ArrayList<>();
    for (Parameters.Slice s : params.trainableSlices()) {
      boolean d = decay.test(s);
      DecayRun last = r.isEmpty() ? null : r.get(r.size() - 1);
      if (last != null && last.decay() == d && last.offset() + last.numel() == s.offset()) {
        r.set(r.size() - 1, new DecayRun(last.offset(), last.numel() + s.numel(), d));
      } else {
        r.add(new DecayRun(s.offset(), s.numel(), d));
      }
    }
    return List.copyOf(r);
  }
}
