package moetune.engine.model;

/**
 * Which experts of every MoE layer a process holds: rank {@code rank} of {@code ranks} holds the
 * contiguous block [rank*E/ranks, (rank+1)*E/ranks) (expert parallel's split, see {@link
 * ExpertParallelMoe}). {@link #ALL}: every expert (one device, or data parallel alone).
 */
public record ExpertShard(int rank, int ranks) {
  /** Every expert on this process. */
  public static final ExpertShard ALL = new ExpertShard(0, 1);

  public ExpertShard {
    if (ranks < 1 || rank < 0 || rank >= ranks) {
      throw new IllegalArgumentException("expert shard: rank " + rank + " of " + ranks);
    }
  }

  /** Whether this holds only a part of the experts. */
  public boolean split() {
    return ranks > 1;
  }

  /** The experts per rank, E / ranks; one line when ranks does not divide E. */
  public int perRank(int experts) {
    if (experts % ranks != 0) {
      throw new IllegalArgumentException(
          "--expert-parallel "
              + ranks
              + " must divide the model's "
              + experts
              + " experts; give a divisor of "
              + experts);
    }
    return experts / ranks;
  }

  /** The first expert this rank holds. */
  public int first(int experts) {
    return rank * perRank(experts);
  }

  /** Whether global expert e is held here. */
  public boolean holds(int e, int experts) {
    int first = first(experts);
    return e >= first && e < first + perRank(experts);
  }
}
