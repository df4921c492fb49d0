package moetune.datasets;

import java.util.List;
import moetune.sequences.PackedSequence;

/**
 * Rows ready for training and evaluation.
 *
 * @param train training rows, in shuffled order (re-shuffle per epoch with {@link DataSplit})
 * @param eval held-out rows (empty when the eval fraction is 0)
 * @param stats statistics of all encoded conversations (train and eval)
 */
public record PreparedData(
    List<PackedSequence> train, List<PackedSequence> eval, DatasetStats stats) {
  public PreparedData {
    train = List.copyOf(train);
    eval = List.copyOf(eval);
  }
}
