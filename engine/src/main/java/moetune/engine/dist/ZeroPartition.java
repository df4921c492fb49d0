package moetune.engine.dist;

import java.util.ArrayList;
import java.util.List;

/**
 * How ZeRO splits a flat buffer of {@code count} elements over {@code world} ranks, in buckets so
 * the collectives are of bounded size (and, on a GPU, can overlap the backward one bucket at a
 * time).
 *
 * <p>The buffer is cut into buckets of {@code chunk * world} elements; bucket b's chunk r (elements
 * [start + r*chunk, start + (r+1)*chunk)) belongs to rank r. The last bucket may be shorter: its
 * chunk is ceil(len / world) and the missing tail is padding (zeros in a staging buffer, since a
 * reduce-scatter needs equal chunks). A rank's shard is the concatenation of its chunks, each
 * padded to the bucket's chunk, so shard offsets of a bucket are the same on every rank.
 *
 * <p>Invariant (tested): the owned ranges of all ranks tile [0, count) exactly once.
 */
public final class ZeroPartition {

  /** One bucket and this rank's part of it. */
  public record Bucket(
      long start, long length, long chunk, long ownStart, long ownLength, long shardOffset) {
    /** True when the bucket is shorter than chunk * world (reduced through a padded staging). */
    public boolean padded(int world) {
      return length != chunk * world;
    }
  }

  private final long count;
  private final int world;
  private final int rank;
  private final List<Bucket> buckets;
  private final long shardSize;

  /**
   * @param chunk elements per rank per full bucket (the bucket holds chunk * world elements)
   */
  public ZeroPartition(long count, int world, int rank, long chunk) {
    if (count < 0 || world < 1 || rank < 0 || rank >= world || chunk < 1) {
      throw new IllegalArgumentException(
          "ZeroPartition: need count >= 0, 0 <= rank < world, chunk >= 1; got count="
              + count
              + " world="
              + world
              + " rank="
              + rank
              + " chunk="
              + chunk);
    }
    this.count = count;
    this.world = world;
    this.rank = rank;
    List<Bucket> b = new ArrayList<>();
    long span = chunk * world;
    long offset = 0;
    for (long start = 0; start < count; start += span) {
      long len = Math.min(span, count - start);
      long c = len == span ? chunk : (len + world - 1) / world;
      long own = start + rank * c;
      long ownLen = Math.max(0, Math.min(c, start + len - own));
      b.add(new Bucket(start, len, c, own, ownLen, offset));
      offset += c;
    }
    this.buckets = List.copyOf(b);
    this.shardSize = offset;
  }

  public long count() {
    return count;
  }

  public int world() {
    return world;
  }

  public int rank() {
    return rank;
  }

  public List<Bucket> buckets() {
    return buckets;
  }

  /** Elements of this rank's shard buffer (its chunks, padding included). */
  public long shardSize() {
    return shardSize;
  }

  /** Elements of the largest padded bucket's staging buffer (0 when no bucket is padded). */
  public long stagingSize() {
    long s = 0;
    for (Bucket b : buckets) {
      if (b.padded(world)) {
        s = Math.max(s, b.chunk() * world);
      }
    }
    return s;
  }
}
