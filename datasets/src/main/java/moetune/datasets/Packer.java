package moetune.datasets;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import moetune.sequences.PackedSequence;

/**
 * Lays encoded conversations into fixed-length rows of T tokens.
 *
 * <p>{@link #pack}: greedy in the given order (shuffle first for randomness), each row takes whole
 * documents while they fit; the rest of a row is padding. Documents never split across rows (a
 * split document would train its second half without its prompt). Position ids restart at 0 for
 * each document and document ids keep attention inside a document, so packing is exact: every
 * document sees what it would see alone.
 *
 * <p>{@link #pad}: one document per row, the alternative for comparisons and debugging.
 *
 * <p>Padding: id = the tokenizer's pad id, label -100, position 0, docId -1.
 */
public final class Packer {
  private Packer() {}

  /** Packs documents into rows of {@code seqLen}; every document must be ≤ seqLen long. */
  public static List<PackedSequence> pack(List<EncodedChat> docs, int seqLen, int padId) {
    List<PackedSequence> rows = new ArrayList<>();
    Row row = new Row(seqLen, padId);
    for (EncodedChat d : docs) {
      checkFits(d, seqLen);
      if (row.used + d.length() > seqLen) {
        rows.add(row.finish());
        row = new Row(seqLen, padId);
      }
      row.add(d);
    }
    if (row.docs > 0) {
      rows.add(row.finish());
    }
    return rows;
  }

  /** One document per row of {@code seqLen}. */
  public static List<PackedSequence> pad(List<EncodedChat> docs, int seqLen, int padId) {
    List<PackedSequence> rows = new ArrayList<>(docs.size());
    for (EncodedChat d : docs) {
      checkFits(d, seqLen);
      Row row = new Row(seqLen, padId);
      row.add(d);
      rows.add(row.finish());
    }
    return rows;
  }

  private static void checkFits(EncodedChat d, int seqLen) {
    if (d.length() > seqLen) {
      throw new IllegalArgumentException(
          d.origin()
              + ": document of "
              + d.length()
              + " tokens exceeds the row length "
              + seqLen
              + "; encode with maxLength <= seqLen");
    }
  }

  /** A row being filled. */
  private static final class Row {
    final int[] ids;
    final int[] labels;
    final int[] positions;
    final int[] docIds;
    int used;
    int docs;

    Row(int seqLen, int padId) {
      ids = new int[seqLen];
      labels = new int[seqLen];
      positions = new int[seqLen];
      docIds = new int[seqLen];
      Arrays.fill(ids, padId);
      Arrays.fill(labels, ChatEncoder.IGNORE);
      Arrays.fill(docIds, -1);
    }

    void add(EncodedChat d) {
      int n = d.length();
      System.arraycopy(d.inputIds(), 0, ids, used, n);
      System.arraycopy(d.labels(), 0, labels, used, n);
      for (int i = 0; i < n; i++) {
        positions[used + i] = i;
        docIds[used + i] = docs;
      }
      used += n;
      docs++;
    }

    PackedSequence finish() {
      return new PackedSequence(ids, labels, positions, docIds);
    }
  }
}
