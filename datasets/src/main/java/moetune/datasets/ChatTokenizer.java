package moetune.datasets;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.CharSpan;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * A model directory's Hugging Face tokenizer ({@code tokenizer.json}, run by DJL's bundled native
 * library, no download) plus its special-token ids.
 *
 * <p>Truncation and padding are switched off when building DJL's tokenizer (DJL otherwise cuts
 * every text at 512 tokens without saying so) and checked after; moetune truncates itself,
 * explicitly and counted ({@link ChatEncoder}). {@code encode} applies the tokenizer's own
 * post-processor, so BOS appears exactly where {@code tokenizer(text)} in transformers puts it.
 *
 * <p>BOS / EOS / PAD come from {@code tokenizer_config.json} ({@code bos_token}, ...; a string or
 * an {@code {"content": ...}} object), else from {@code generation_config.json} / {@code
 * config.json} ({@code bos_token_id}, {@code eos_token_id}, {@code pad_token_id}). PAD falls back
 * to EOS: padded positions carry label -100 and docId -1, so their id never matters.
 */
public final class ChatTokenizer implements AutoCloseable {
  static {
    // DJL picks a CUDA build of its tokenizer library on machines with a CUDA GPU and then tries
    // to download it; moetune ships the CPU build inside DJL's jar (tokenization runs on the CPU
    // anyway) and never downloads. A user's own RUST_FLAVOR / ai.djl.offline setting wins.
    if (System.getenv("RUST_FLAVOR") == null && System.getProperty("RUST_FLAVOR") == null) {
      System.setProperty("RUST_FLAVOR", "cpu");
    }
    if (System.getenv("DJL_OFFLINE") == null && System.getProperty("ai.djl.offline") == null) {
      System.setProperty("ai.djl.offline", "true");
    }
    TokenizerNatives.secureCacheDir(); // never load a library planted in a shared directory
  }

  private final HuggingFaceTokenizer tokenizer;
  private final Path dir;
  private final int vocabSize;
  private final int bosId;
  private final int eosId;
  private final int padId;
  private final int maxTokenChars;

  private ChatTokenizer(
      HuggingFaceTokenizer tokenizer,
      Path dir,
      int vocabSize,
      int bosId,
      int eosId,
      int padId,
      int maxTokenChars) {
    this.maxTokenChars = maxTokenChars;
    this.tokenizer = tokenizer;
    this.dir = dir;
    this.vocabSize = vocabSize;
    this.bosId = bosId;
    this.eosId = eosId;
    this.padId = padId;
  }

  /** Loads {@code modelDir/tokenizer.json} and the special tokens; errors name the file. */
  public static ChatTokenizer load(Path modelDir) {
    Path json = modelDir.resolve("tokenizer.json");
    if (!Files.isRegularFile(json)) {
      throw new DatasetException(
          json
              + ": not found; the model directory needs the Hugging Face"
              + " fast tokenizer file tokenizer.json");
    }
    JsonNode tj = readJson(json);
    Map<String, Integer> ids = new HashMap<>();
    int maxId = -1;
    int maxChars = 1;
    JsonNode vocab = tj.path("model").path("vocab");
    if (vocab.isObject()) {
      for (var e : vocab.properties()) {
        ids.put(e.getKey(), e.getValue().asInt());
        maxId = Math.max(maxId, e.getValue().asInt());
      }
    } else if (vocab.isArray()) { // Unigram: [[piece, score], ...]
      for (int i = 0; i < vocab.size(); i++) {
        ids.put(vocab.get(i).path(0).asText(), i);
      }
      maxId = vocab.size() - 1;
    }
    for (String piece : ids.keySet()) {
      maxChars = Math.max(maxChars, piece.codePointCount(0, piece.length()));
    }
    for (JsonNode t : tj.path("added_tokens")) {
      String c = t.path("content").asText();
      maxChars = Math.max(maxChars, c.codePointCount(0, c.length()));
      ids.put(t.path("content").asText(), t.path("id").asInt());
      maxId = Math.max(maxId, t.path("id").asInt());
    }
    JsonNode tc = optionalJson(modelDir.resolve("tokenizer_config.json"));
    JsonNode gc = optionalJson(modelDir.resolve("generation_config.json"));
    JsonNode mc = optionalJson(modelDir.resolve("config.json"));
    int bos = special(tc, "bos_token", ids, gc, mc, "bos_token_id");
    int eos = special(tc, "eos_token", ids, gc, mc, "eos_token_id");
    int pad = special(tc, "pad_token", ids, gc, mc, "pad_token_id");
    if (pad < 0) {
      pad = eos >= 0 ? eos : 0;
    }
    HuggingFaceTokenizer tok;
    try {
      tok =
          HuggingFaceTokenizer.builder()
              .optTokenizerPath(modelDir)
              .optAddSpecialTokens(true)
              .optTruncation(false)
              .optPadding(false)
              .build();
    } catch (IOException | RuntimeException e) {
      Throwable root = e;
      while (root.getCause() != null && root.getCause() != root) {
        root = root.getCause();
      }
      String why =
          root == e
              ? String.valueOf(e.getMessage())
              : e.getMessage()
                  + " ("
                  + String.valueOf(root.getMessage()).lines().findFirst().orElse("")
                  + ")";
      throw new DatasetException(json + ": the tokenizer cannot be loaded: " + why, e);
    }
    if (!"DO_NOT_TRUNCATE".equals(tok.getTruncation())) {
      tok.close();
      throw new IllegalStateException(
          "DJL tokenizer truncates (" + tok.getTruncation() + "); moetune must see every token");
    }
    return new ChatTokenizer(tok, modelDir, maxId + 1, bos, eos, pad, maxChars);
  }

  /** Encodes {@code text} whole, with the post-processor's special tokens, never truncated. */
  public TokenizedText encode(String text) {
    return encode(text, true);
  }

  /**
   * Encodes {@code text} whole, never truncated; {@code addSpecialTokens} false leaves out what the
   * post-processor adds (BOS), as for a chat template's text, which holds its own.
   */
  public TokenizedText encode(String text, boolean addSpecialTokens) {
    int lone = JsonLines.loneSurrogateIndex(text);
    if (lone >= 0) {
      // The native tokenizer cannot take it (it failed with an index error deep inside).
      throw new DatasetException(
          "text has a lone UTF-16 surrogate \\u"
              + Integer.toHexString(text.charAt(lone))
              + " at char "
              + lone
              + "; fix or remove it");
    }
    Encoding e = tokenizer.encode(text, addSpecialTokens, false);
    long[] raw = e.getIds();
    CharSpan[] spans = e.getCharTokenSpans();
    int n = raw.length;
    int[] ids = new int[n];
    int[] starts = new int[n];
    int[] ends = new int[n];
    // The native offsets count Unicode code points; Java strings index UTF-16 chars.
    int[] cpToChar = codePointToCharIndex(text);
    for (int i = 0; i < n; i++) {
      ids[i] = Math.toIntExact(raw[i]);
      CharSpan s = spans[i];
      if (s == null) {
        starts[i] = -1;
        ends[i] = -1;
      } else {
        starts[i] = cpToChar[s.getStart()];
        ends[i] = cpToChar[s.getEnd()];
      }
    }
    return new TokenizedText(ids, e.getTokens(), starts, ends);
  }

  /** Decodes ids to text, keeping special tokens. */
  public String decode(int[] ids) {
    long[] l = new long[ids.length];
    for (int i = 0; i < ids.length; i++) {
      l[i] = ids[i];
    }
    return tokenizer.decode(l, false);
  }

  private static int[] codePointToCharIndex(String text) {
    int cps = text.codePointCount(0, text.length());
    int[] map = new int[cps + 1];
    int c = 0;
    for (int k = 0; k < cps; k++) {
      map[k] = c;
      c += Character.charCount(text.codePointAt(c));
    }
    map[cps] = c;
    return map;
  }

  /**
   * The longest vocabulary or added token, in code points: no token covers more characters of the
   * input than this (an upper bound; byte-fallback spellings like "<0x0A>" overestimate).
   */
  public int maxTokenChars() {
    return maxTokenChars;
  }

  /** Largest token id + 1 over the model vocabulary and the added tokens. */
  public int vocabSize() {
    return vocabSize;
  }

  /** The BOS id, or -1 if the tokenizer has none. */
  public int bosId() {
    return bosId;
  }

  /** The EOS id, or -1 if the tokenizer has none. */
  public int eosId() {
    return eosId;
  }

  /** The id written on padded positions (pad token, else EOS, else 0). */
  public int padId() {
    return padId;
  }

  public Path directory() {
    return dir;
  }

  @Override
  public void close() {
    tokenizer.close();
  }

  private static int special(
      JsonNode tc,
      String field,
      Map<String, Integer> ids,
      JsonNode gc,
      JsonNode mc,
      String idField) {
    JsonNode t = tc == null ? null : tc.get(field);
    if (t != null && t.isObject()) {
      t = t.get("content");
    }
    if (t != null && t.isTextual() && ids.containsKey(t.asText())) {
      return ids.get(t.asText());
    }
    for (JsonNode c : new JsonNode[] {gc, mc}) {
      JsonNode v = c == null ? null : c.get(idField);
      if (v != null && v.isArray() && !v.isEmpty()) {
        v = v.get(0);
      }
      if (v != null && v.canConvertToInt()) {
        return v.asInt();
      }
    }
    return -1;
  }

  private static JsonNode optionalJson(Path p) {
    return Files.isRegularFile(p) ? readJson(p) : null;
  }

  private static JsonNode readJson(Path p) {
    try {
      return JsonLines.MAPPER.readTree(p.toFile());
    } catch (IOException e) {
      throw new DatasetException(
          p
              + ": bad JSON: "
              + e.getMessage().lines().findFirst().orElse("")
              + "; fix or regenerate the file");
    }
  }
}
