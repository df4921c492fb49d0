package moetune.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import moetune.sequences.PackedSequence;
import org.junit.jupiter.api.Test;

/** Packed sequences as the model's batch: labels untouched, padding masked, targets counted. */
class BatchTest {

  @Test
  void packedRowsKeepTheirLabelsAndMaskOnlyPadding() {
    // row 0: two documents and a pad; row 1: one document, no padding
    PackedSequence a =
        new PackedSequence(
            new int[] {5, 6, 7, 8, 0},
            new int[] {-100, 6, -100, 8, -100},
            new int[] {0, 1, 0, 1, 0},
            new int[] {0, 0, 1, 1, -1});
    PackedSequence b = PackedSequence.ofDocument(new int[] {9, 10, 11, 12, 13});
    Batch batch = Batch.of(List.of(a, b));
    assertEquals(2, batch.batchSize());
    assertEquals(5, batch.seqLen());
    assertArrayEquals(
        new int[] {-100, 6, -100, 8, -100, -100, 10, 11, 12, 13}, batch.labels(), "unshifted");
    assertArrayEquals(new int[] {0, 0, 1, 1, -1, 0, 0, 0, 0, 0}, batch.docIds(), "padding is -1");
    assertArrayEquals(
        new float[] {1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1},
        batch.realTokenRows(2),
        "the router losses' row mask, once per layer");
    assertEquals(a.labelledTokens() + b.labelledTokens(), batch.labelledTokens());
    assertEquals(6, batch.labelledTokens());
    // the one shift: position t predicts labels[t + 1], nothing after a row's last token
    assertArrayEquals(
        new int[] {6, -100, 8, -100, -100, 10, 11, 12, 13, -100}, batch.shiftedTargets());

    Batch unpadded = Batch.of(List.of(b));
    assertNull(unpadded.realTokenRows(2), "no padding, no row mask: the same batch as before");
  }

  @Test
  void rowsOfDifferentLengthsAreRefused() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                Batch.of(
                    List.of(
                        PackedSequence.ofDocument(new int[] {1, 2, 3}),
                        PackedSequence.ofDocument(new int[] {1, 2}))));
    assertEquals("Batch: row 0 has 3 positions but row 1 has 2", e.getMessage());
  }
}
