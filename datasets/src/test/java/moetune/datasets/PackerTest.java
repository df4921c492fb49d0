package moetune.datasets;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import moetune.sequences.PackedSequence;
import org.junit.jupiter.api.Test;

/** Packing and padding layouts, deterministic shuffling and splitting. */
class PackerTest {
  static EncodedChat doc(int first, int n) {
    int[] ids = IntStream.range(first, first + n).toArray();
    int[] labels = ids.clone();
    labels[0] = ChatEncoder.IGNORE;
    return new EncodedChat(ids, labels, new moetune.templates.SpanKind[n], n, "d:" + first);
  }

  @Test
  void packsWholeDocumentsWithRestartingPositions() {
    List<PackedSequence> rows =
        Packer.pack(List.of(doc(10, 3), doc(20, 4), doc(30, 2), doc(40, 5)), 8, 0);
    // 3 + 4 fill row 0; 2 does not fit there (9 > 8), so row 1 takes 2 + 5.
    assertEquals(2, rows.size());
    PackedSequence r0 = rows.get(0);
    assertArrayEquals(new int[] {10, 11, 12, 20, 21, 22, 23, 0}, r0.inputIds());
    assertArrayEquals(new int[] {-100, 11, 12, -100, 21, 22, 23, -100}, r0.labels());
    assertArrayEquals(new int[] {0, 1, 2, 0, 1, 2, 3, 0}, r0.positions());
    assertArrayEquals(new int[] {0, 0, 0, 1, 1, 1, 1, -1}, r0.docIds());
    assertArrayEquals(new int[] {30, 31, 40, 41, 42, 43, 44, 0}, rows.get(1).inputIds());
    assertArrayEquals(new int[] {0, 0, 1, 1, 1, 1, 1, -1}, rows.get(1).docIds());
    assertArrayEquals(new int[] {0, 1, 0, 1, 2, 3, 4, 0}, rows.get(1).positions());
    assertEquals(6, r0.labelledTokens() + 1);
    assertEquals(7, r0.realTokens());
  }

  @Test
  void padsOneDocumentPerRow() {
    List<PackedSequence> rows = Packer.pad(List.of(doc(10, 3), doc(20, 8)), 8, 7);
    assertEquals(2, rows.size());
    assertArrayEquals(new int[] {10, 11, 12, 7, 7, 7, 7, 7}, rows.get(0).inputIds());
    assertArrayEquals(new int[] {0, 0, 0, -1, -1, -1, -1, -1}, rows.get(0).docIds());
    assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5, 6, 7}, rows.get(1).positions());
  }

  @Test
  void tooLongDocumentIsRefused() {
    assertThrows(IllegalArgumentException.class, () -> Packer.pack(List.of(doc(0, 9)), 8, 0));
  }

  @Test
  void shuffleIsDeterministicAndSplitSizesAreExact() {
    List<Integer> items = new ArrayList<>(IntStream.range(0, 100).boxed().toList());
    assertEquals(DataSplit.shuffle(items, 7), DataSplit.shuffle(items, 7));
    assertNotEquals(DataSplit.shuffle(items, 7), DataSplit.shuffle(items, 8));
    assertNotEquals(items, DataSplit.shuffle(items, 7));
    assertEquals(items, DataSplit.shuffle(items, 7).stream().sorted().toList());
    // Pinned: java.util.Random's sequence is specified, so this order must hold on every JVM;
    // if it changes, every user's train/eval split silently changes with it.
    assertEquals(List.of(1, 2, 3, 4, 0), DataSplit.shuffle(List.of(0, 1, 2, 3, 4), 42));
    DataSplit.Split<Integer> s = DataSplit.split(items, 0.1, 3);
    assertEquals(90, s.train().size());
    assertEquals(10, s.eval().size());
    assertEquals(1, DataSplit.split(List.of(1, 2, 3), 0.01, 3).eval().size());
    assertEquals(0, DataSplit.split(items, 0, 3).eval().size());
    assertThrows(DatasetException.class, () -> DataSplit.split(items, 1.0, 3));
  }
}
