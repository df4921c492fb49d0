package moetune.engine.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** How packed doc ids become cuDNN's ragged sequences (host side, no GPU needed). */
class CudnnDocumentsTest {
  @Test
  void everyRunOfADocumentIsASequenceAndPaddingNone() {
    int[] ids = {
      0, 0, 0, 1, 1, -1, -1, -1, // row 0: two documents, then padding
      -1, 5, 5, 5, 5, 5, 7, 7 // row 1: left padding, two documents
    };
    CudnnAttention.Documents d = CudnnAttention.Documents.of(ids, 2, 8);
    assertNull(d.unsupported());
    assertEquals(4, d.count);
    assertEquals(4, d.capacity);
    assertArrayEquals(new long[] {0, 3, 9, 14}, d.start);
    assertArrayEquals(new int[] {3, 2, 5, 2}, d.len);
    assertFalse(d.coversAll);
    assertEquals(4 + 2, d.stride(), "capacity + 1 offsets, rounded up to an even count");
  }

  @Test
  void capacityIsAPowerOfTwoAtLeastTheRowsAndEmptySequencesSitAtTheEnd() {
    int[] ids = {0, 1, 2, 3, 4, 0, 0, 0, 0, 0};
    CudnnAttention.Documents d = CudnnAttention.Documents.of(ids, 2, 5);
    assertEquals(6, d.count);
    assertEquals(8, d.capacity);
    assertTrue(d.coversAll);
    assertEquals(10, d.start[6]);
    assertEquals(0, d.len[7]);
    CudnnAttention.Documents one = CudnnAttention.Documents.of(new int[] {3, 3, 3, 3}, 1, 4);
    assertEquals(1, one.capacity);
    assertEquals(4, one.len[0]);
    CudnnAttention.Documents rows = CudnnAttention.Documents.of(new int[] {0, 0, 0, 0}, 4, 1);
    assertEquals(4, rows.capacity);
  }

  @Test
  void aDocumentInTwoRunsOfOneRowIsNotTaken() {
    int[] ids = {0, 0, 1, 1, 0, 0};
    assertEquals(
        "a document split into separate runs of one row",
        CudnnAttention.Documents.of(ids, 1, 6).unsupported());
    int[] padded = {0, 0, -1, 0};
    assertEquals(
        "a document split into separate runs of one row",
        CudnnAttention.Documents.of(padded, 1, 4).unsupported());
    // the same id in two rows is two documents
    assertNull(CudnnAttention.Documents.of(new int[] {0, 0, 0, 0}, 2, 2).unsupported());
  }
}
