package moetune.engine.train;

import java.util.ArrayList;
import java.util.List;
import java.util.function.ToDoubleFunction;
import moetune.engine.model.Batch;
import moetune.sequences.PackedSequence;

/**
 * Mean cross-entropy over every labelled token of a set of sequences, in micro-batches of B in
 * their stored order (the last one may be smaller): the trainer's eval and {@code moetune eval}.
 */
public final class Evaluation {
  private Evaluation() {}

  /**
   * @param lossSum the sum of token cross-entropies of one batch (no gradients)
   * @param step the step to report the result at
   */
  public static EvalMetrics run(
      SequenceSource data, int microBatch, ToDoubleFunction<Batch> lossSum, long step) {
    double sum = 0;
    long tokens = 0;
    for (int start = 0; start < data.size(); start += microBatch) {
      List<PackedSequence> rows = new ArrayList<>(microBatch);
      for (int i = start; i < Math.min(data.size(), start + microBatch); i++) {
        rows.add(data.get(i));
      }
      Batch batch = Batch.of(rows);
      sum += lossSum.applyAsDouble(batch);
      tokens += batch.labelledTokens();
    }
    return EvalMetrics.of(step, sum, tokens);
  }
}
