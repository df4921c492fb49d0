package moetune.datasets;

import java.util.Arrays;
import java.util.List;
import moetune.templates.ChatFormat;
import moetune.templates.Message;
import moetune.templates.RenderedPrompt;
import moetune.templates.Role;
import moetune.templates.Span;
import moetune.templates.SpanKind;

/**
 * Renders a {@link ChatRecord} with a template and turns it into token ids and labels.
 *
 * <p><b>How spans become tokens.</b> The rendered prompt is tokenized once, whole, exactly as
 * {@code tokenizer(prompt)} in transformers would (BOS from the tokenizer's post-processor). Each
 * token's character offsets then say which rendered spans it covers. This is the per-segment split
 * done after tokenizing rather than before: encoding segments separately would change the ids of
 * SentencePiece-style tokenizers (Mistral/Llama prepend "▁" to every encode call and to each piece
 * after a special token), so the concatenation would differ from what the model sees at inference.
 * Here the ids are always exactly the whole-prompt ids, and there is no FastChat "tokenization
 * mismatch" that drops samples.
 *
 * <p><b>Labels.</b> A token is trained (label = its id) if any character it covers is assistant
 * output ({@link SpanKind#ASSISTANT} or {@link SpanKind#END_OF_REPLY}) of a turn the {@link
 * LabelMode} selects. So "▁Hello" whose "▁" is the template's space after {@code ASSISTANT:} is
 * trained: it is the token the model must produce there. All other tokens get -100, and so does the
 * first token of every document (nothing precedes it within the document; in a packed row it would
 * otherwise be the target of the previous document's last token). Labels are not shifted.
 *
 * <p><b>Truncation.</b> Sequences longer than {@code maxLength} keep their first {@code maxLength}
 * tokens; {@link EncodedChat#truncated()} says so and the statistics count it. Texts far longer
 * than needed are tokenized by verified prefix (see {@link #tokenize}), so a 10 MB message costs
 * milliseconds, not minutes.
 */
public final class ChatEncoder {
  /** The label of a token that carries no loss (PyTorch's ignore_index). */
  public static final int IGNORE = -100;

  /** Tokens beyond maxLength that a tokenized prefix must reach before it is trusted. */
  static final int MARGIN = 64;

  private final ChatTokenizer tokenizer;
  private final ChatFormat template;
  private final LabelMode mode;
  private final int maxLength;

  /**
   * @param maxLength the longest sequence kept, in tokens (≥ 2); longer ones are truncated
   */
  public ChatEncoder(ChatTokenizer tokenizer, ChatFormat template, LabelMode mode, int maxLength) {
    if (maxLength < 2) {
      throw new DatasetException("max length " + maxLength + " is too small; use at least 2");
    }
    this.tokenizer = tokenizer;
    this.template = template;
    this.mode = mode;
    this.maxLength = maxLength;
  }

  public ChatFormat template() {
    return template;
  }

  public ChatTokenizer tokenizer() {
    return tokenizer;
  }

  public int maxLength() {
    return maxLength;
  }

  /** The record rendered by this encoder's template (its own system message or the default). */
  public RenderedPrompt render(ChatRecord r) {
    return template.render(r.system(), r.messages());
  }

  /** Tokens and labels of one record. */
  public EncodedChat encode(ChatRecord r) {
    RenderedPrompt p = render(r);
    TokenizedText tt = tokenize(p.text());
    int last = lastReply(r.messages());
    List<Span> spans = p.spans();
    int n = tt.length();
    int[] labels = new int[n];
    SpanKind[] kinds = new SpanKind[n];
    for (int j = 0; j < n; j++) {
      int s = tt.starts()[j];
      int e = tt.ends()[j];
      boolean trained = mode == LabelMode.EVERYTHING;
      if (s >= 0 && e > s) {
        int k = spanAt(spans, s);
        kinds[j] = spans.get(spanAt(spans, e - 1)).kind();
        for (; !trained && k < spans.size() && spans.get(k).start() < e; k++) {
          Span sp = spans.get(k);
          trained =
              sp.kind().assistantOutput()
                  && (mode == LabelMode.ALL_ASSISTANT || sp.message() == last);
        }
      }
      labels[j] = trained ? tt.ids()[j] : IGNORE;
    }
    if (n > 0) {
      labels[0] = IGNORE;
    }
    int keep = Math.min(n, maxLength);
    return new EncodedChat(
        Arrays.copyOf(tt.ids(), keep),
        Arrays.copyOf(labels, keep),
        Arrays.copyOf(kinds, keep),
        n,
        r.origin());
  }

  /** {@link #encode} with each token's spelling, for showing a record token by token. */
  public java.util.List<TokenView> inspect(ChatRecord r) {
    EncodedChat e = encode(r);
    TokenizedText tt = tokenize(render(r).text());
    java.util.List<TokenView> out = new java.util.ArrayList<>(e.length());
    for (int i = 0; i < e.length(); i++) {
      out.add(new TokenView(i, e.inputIds()[i], tt.tokens()[i], e.labels()[i], e.kinds()[i]));
    }
    return out;
  }

  /**
   * Tokens enough to fill {@code maxLength}. Texts far longer than that (a 10 MB message takes the
   * native tokenizer over a minute whole) are tokenized by prefix: a prefix of (maxLength + MARGIN)
   * × the longest token's length in chars surely holds more than maxLength tokens, and its first
   * maxLength ids must equal those of a prefix twice as long; if not (a merge reaching that far
   * back), the whole text is tokenized. Either way the kept ids are exactly the whole text's first
   * maxLength ids; only the untruncated length is then a lower bound.
   */
  private TokenizedText tokenize(String text) {
    long limit = (long) (maxLength + MARGIN) * tokenizer.maxTokenChars();
    // A chat template writes BOS itself; FastChat prompts get it from the post-processor.
    boolean specials = !template.textHasSpecialTokens();
    if (text.length() <= 4 * limit) {
      return tokenizer.encode(text, specials);
    }
    TokenizedText head = tokenizer.encode(prefix(text, (int) limit), specials);
    if (head.length() >= maxLength + MARGIN) {
      TokenizedText longer = tokenizer.encode(prefix(text, (int) (2 * limit)), specials);
      if (Arrays.equals(head.ids(), 0, maxLength, longer.ids(), 0, maxLength)) {
        return head;
      }
    }
    return tokenizer.encode(text, specials);
  }

  /** The first {@code chars} UTF-16 chars, not splitting a surrogate pair. */
  private static String prefix(String text, int chars) {
    int end = Character.isHighSurrogate(text.charAt(chars - 1)) ? chars - 1 : chars;
    return text.substring(0, end);
  }

  /** The index of the last assistant message with content, or -1. */
  private static int lastReply(List<Message> messages) {
    for (int i = messages.size() - 1; i >= 0; i--) {
      if (messages.get(i).role() == Role.ASSISTANT && messages.get(i).filled()) {
        return i;
      }
    }
    return -1;
  }

  /** The index of the span holding char {@code c} (spans partition the text, sorted). */
  private static int spanAt(List<Span> spans, int c) {
    int lo = 0;
    int hi = spans.size() - 1;
    while (lo < hi) {
      int mid = (lo + hi + 1) >>> 1;
      if (spans.get(mid).start() <= c) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    return lo;
  }
}
