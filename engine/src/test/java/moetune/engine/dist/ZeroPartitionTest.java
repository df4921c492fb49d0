package moetune.engine.dist;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The ZeRO partition arithmetic: every element owned by exactly one rank, shards aligned. */
class ZeroPartitionTest {

  @Test
  void ownedRangesTileTheBufferExactlyOnce() {
    for (long count : new long[] {0, 1, 2, 7, 31, 64, 100, 1001}) {
      for (int world = 1; world <= 5; world++) {
        for (long chunk : new long[] {1, 3, 8, 1000}) {
          int[] owners = new int[(int) count];
          long[] shard = new long[world];
          int buckets = -1;
          for (int r = 0; r < world; r++) {
            ZeroPartition p = new ZeroPartition(count, world, r, chunk);
            if (buckets < 0) buckets = p.buckets().size();
            assertEquals(buckets, p.buckets().size(), "same buckets on every rank");
            long off = 0;
            for (int k = 0; k < p.buckets().size(); k++) {
              ZeroPartition.Bucket b = p.buckets().get(k);
              boolean lastBucket = k == p.buckets().size() - 1;
              assertEquals(off, b.shardOffset(), "shard offsets are the chunks in order");
              off += b.chunk();
              assertTrue(b.chunk() * world >= b.length(), "a bucket fits its chunks");
              assertTrue(lastBucket || b.chunk() == chunk, "only the last bucket is short");
              assertTrue(lastBucket || !b.padded(world), "only the last bucket is padded");
              for (long i = b.ownStart(); i < b.ownStart() + b.ownLength(); i++) {
                owners[(int) i]++;
              }
            }
            shard[r] = p.shardSize();
            if (p.stagingSize() > 0) {
              assertTrue(p.buckets().get(p.buckets().size() - 1).padded(world));
            }
          }
          for (int i = 0; i < count; i++) {
            assertEquals(
                1, owners[i], "element " + i + " of " + count + " over " + world + "/" + chunk);
          }
          for (int r = 1; r < world; r++) {
            assertEquals(shard[0], shard[r], "equal shard buffers (padding included)");
          }
        }
      }
    }
  }

  @Test
  void aBufferOfFullBucketsNeedsNoStaging() {
    ZeroPartition p = new ZeroPartition(24, 3, 1, 4); // two buckets of 12
    assertEquals(2, p.buckets().size());
    assertEquals(0, p.stagingSize());
    assertEquals(4, p.buckets().get(0).ownStart());
    assertEquals(16, p.buckets().get(1).ownStart());
    assertEquals(8, p.shardSize());
  }
}
