package moetune.engine.model;

import java.util.Arrays;
import java.util.List;
import moetune.sequences.PackedSequence;

/**
 * One batch of B rows of T tokens for {@link MixtralModel#forward}, on the host, row-major (index
 * b*T + t).
 *
 * @param batchSize B
 * @param seqLen T
 * @param inputIds token ids (B*T)
 * @param labels target ids (B*T) as HF's labels: not yet shifted (position t is predicted from the
 *     tokens before it), -100 = ignored; null for a forward without loss
 * @param positions RoPE positions (B*T), or null for 0..T-1 in every row
 * @param docIds document id of every token (B*T), or null: with packed sequences a token attends
 *     only to earlier tokens of its own document. Give positions restarting at 0 per document and
 *     set the label of each document's first token to -100 so that no target crosses a document
 *     boundary. Padding is docId -1, the one form it has from the datasets to the kernels: a
 *     padding key is never attended to and padding rows are left out of the router losses, as
 *     transformers does with attention_mask 0 ({@link #withAttentionMask} turns such a mask into
 *     this form).
 */
public record Batch(
    int batchSize, int seqLen, int[] inputIds, int[] labels, int[] positions, int[] docIds) {

  /** Ignored target, as torch's CrossEntropyLoss ignore_index. */
  public static final int IGNORE_INDEX = -100;

  public Batch {
    if (batchSize <= 0 || seqLen <= 0) {
      throw new IllegalArgumentException(
          "Batch: need B > 0 and T > 0, got B=" + batchSize + " T=" + seqLen);
    }
    check("inputIds", inputIds, batchSize, seqLen, false);
    check("labels", labels, batchSize, seqLen, true);
    check("positions", positions, batchSize, seqLen, true);
    check("docIds", docIds, batchSize, seqLen, true);
  }

  /** A batch from rows of equal length: ids[b][t], labels[b][t] (labels may be null). */
  public static Batch of(int[][] ids, int[][] labels) {
    return new Batch(
        ids.length,
        ids[0].length,
        flatten(ids),
        labels == null ? null : flatten(labels),
        null,
        null);
  }

  /**
   * Packed sequences (the datasets' and the trainer's {@link PackedSequence}s, of one length T)
   * stacked row after row: their HF labels as they are (shifted once, in the loss), positions and
   * document ids (padding -1) as given.
   */
  public static Batch of(List<PackedSequence> rows) {
    int b = rows.size();
    int t = rows.getFirst().length();
    int[] ids = new int[b * t];
    int[] labels = new int[b * t];
    int[] positions = new int[b * t];
    int[] docs = new int[b * t];
    for (int r = 0; r < b; r++) {
      PackedSequence s = rows.get(r);
      if (s.length() != t) {
        throw new IllegalArgumentException(
            "Batch: row 0 has " + t + " positions but row " + r + " has " + s.length());
      }
      System.arraycopy(s.inputIds(), 0, ids, r * t, t);
      System.arraycopy(s.labels(), 0, labels, r * t, t);
      System.arraycopy(s.positions(), 0, positions, r * t, t);
      System.arraycopy(s.docIds(), 0, docs, r * t, t);
    }
    return new Batch(b, t, ids, labels, positions, docs);
  }

  /**
   * Tokens that carry a loss: labels other than -100 at positions 1..T-1 of each row, the targets
   * the loss counts after its shift (0 without labels). For packed sequences, the sum of their
   * {@link PackedSequence#labelledTokens}.
   */
  public long labelledTokens() {
    if (labels == null) {
      return 0;
    }
    long n = 0;
    for (int i = 0; i < labels.length; i++) {
      n += i % seqLen != 0 && labels[i] != IGNORE_INDEX ? 1 : 0;
    }
    return n;
  }

  /**
   * This batch with transformers' attention mask mask[b][t] (1 real, 0 padding) turned into padding
   * docIds: -1 where the mask is 0, the batch's document ids (or 0) elsewhere.
   */
  public Batch withAttentionMask(int[][] mask) {
    int[] m = flatten(mask);
    check("attention mask", m, batchSize, seqLen, false);
    int[] docs = docIds == null ? new int[tokens()] : docIds.clone();
    for (int i = 0; i < docs.length; i++) {
      docs[i] = m[i] == 0 ? -1 : docs[i];
    }
    return new Batch(batchSize, seqLen, inputIds, labels, positions, docs);
  }

  /**
   * This batch packed: positions[b][t] restart per document, docIds[b][t] name documents; tokens
   * that are padding here stay padding (-1).
   */
  public Batch withPacking(int[][] positions, int[][] docIds) {
    int[] docs = flatten(docIds);
    for (int i = 0; i < docs.length; i++) {
      docs[i] = padding(i) ? -1 : docs[i];
    }
    return new Batch(batchSize, seqLen, inputIds, labels, flatten(positions), docs);
  }

  /** Whether token i (index b*T + t) is padding: docId -1. */
  public boolean padding(int i) {
    return docIds != null && docIds[i] < 0;
  }

  /**
   * The router losses' row mask: 1 for a real token, 0 for padding, for the B*T tokens repeated
   * {@code repeats} times (once per layer: the routers' rows are (L*N)); null when nothing is
   * padding (every row counts, as without a mask).
   */
  float[] realTokenRows(int repeats) {
    int n = tokens();
    boolean padded = false;
    for (int i = 0; i < n && !padded; i++) {
      padded = padding(i);
    }
    if (!padded) {
      return null;
    }
    float[] mask = new float[repeats * n];
    for (int i = 0; i < mask.length; i++) {
      mask[i] = padding(i % n) ? 0f : 1f;
    }
    return mask;
  }

  /** N = B*T. */
  public int tokens() {
    return batchSize * seqLen;
  }

  /** HF's shift: target[b, t] = labels[b, t+1], and -100 at the last position of every row. */
  int[] shiftedTargets() {
    int[] out = new int[tokens()];
    for (int b = 0; b < batchSize; b++) {
      for (int t = 0; t < seqLen; t++) {
        out[b * seqLen + t] = t + 1 < seqLen ? labels[b * seqLen + t + 1] : IGNORE_INDEX;
      }
    }
    return out;
  }

  /** Positions given or 0..T-1 per row. */
  int[] positionsOrDefault() {
    if (positions != null) {
      return positions;
    }
    int[] out = new int[tokens()];
    for (int i = 0; i < out.length; i++) {
      out[i] = i % seqLen;
    }
    return out;
  }

  private static void check(String name, int[] a, int b, int t, boolean nullable) {
    if (a == null) {
      if (!nullable) {
        throw new IllegalArgumentException("Batch: " + name + " is required");
      }
      return;
    }
    if (a.length != b * t) {
      throw new IllegalArgumentException(
          "Batch: " + name + " has " + a.length + " entries, expected B*T = " + b + "*" + t);
    }
  }

  private static int[] flatten(int[][] rows) {
    int t = rows[0].length;
    int[] out = new int[rows.length * t];
    for (int b = 0; b < rows.length; b++) {
      if (rows[b].length != t) {
        throw new IllegalArgumentException(
            "Batch: row " + b + " has " + rows[b].length + " tokens, row 0 has " + t);
      }
      System.arraycopy(rows[b], 0, out, b * t, t);
    }
    return out;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Batch other
        && batchSize == other.batchSize
        && seqLen == other.seqLen
        && Arrays.equals(inputIds, other.inputIds)
        && Arrays.equals(labels, other.labels)
        && Arrays.equals(positions, other.positions)
        && Arrays.equals(docIds, other.docIds);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(inputIds) * 31 + batchSize;
  }

  @Override
  public String toString() {
    return "Batch(B=" + batchSize + ", T=" + seqLen + ")";
  }
}
