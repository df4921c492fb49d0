package moetune.datasets;

import moetune.templates.SpanKind;

/**
 * One token of an encoded conversation as a person inspects it (CLI {@code data inspect}, the GUI's
 * token view).
 *
 * @param index position in the sequence
 * @param id token id
 * @param token the tokenizer's spelling, e.g. "▁Hello" or "&lt;0x0A&gt;"
 * @param label the target id, or -100 when not trained
 * @param kind the span kind of the last character it covers; null for post-processor tokens
 */
public record TokenView(int index, int id, String token, int label, SpanKind kind) {
  public boolean trained() {
    return label != ChatEncoder.IGNORE;
  }
}
