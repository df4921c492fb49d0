package moetune.engine.train;

import moetune.sequences.PackedSequence;

/**
 * A fixed, indexable list of packed sequences of one length (a training or held-out split). The
 * trainer decides the order, so resuming needs nothing from the source but its contents.
 */
public interface SequenceSource {

  /** Number of sequences. */
  int size();

  /** T, the length of every sequence. */
  int sequenceLength();

  /** The i-th sequence, 0 <= i < size(); the same contents every time it is asked for. */
  PackedSequence get(int index);

  /** A source over a list held in memory. */
  static SequenceSource of(java.util.List<PackedSequence> list) {
    if (list.isEmpty()) {
      throw new IllegalArgumentException("SequenceSource: no sequences");
    }
    int t = list.getFirst().length();
    for (PackedSequence s : list) {
      if (s.length() != t) {
        throw new IllegalArgumentException(
            "SequenceSource: sequences of lengths " + t + " and " + s.length() + " mixed");
      }
    }
    java.util.List<PackedSequence> copy = java.util.List.copyOf(list);
    return new SequenceSource() {
      @Override
      public int size() {
        return copy.size();
      }

      @Override
      public int sequenceLength() {
        return t;
      }

      @Override
      public PackedSequence get(int index) {
        return copy.get(index);
      }
    };
  }
}
