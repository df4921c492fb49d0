package moetune.datasets;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import moetune.files.AtomicFiles;

/**
 * Writes a byte-level Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) for models
 * created from scratch. Any UTF-8 text encodes (one token per byte, no merges, no unknowns) and
 * DJL, transformers and tokenizers all load it.
 *
 * <p>Ids: 0 {@code <unk>}, 1 {@code <s>} (BOS, added at the start by the post-processor), 2 {@code
 * </s>} (EOS), 3..258 the bytes 0..255 in order (GPT-2's byte-to-unicode spelling), then the
 * chat-template markers as single special tokens: {@link #MARKERS}. So {@link #VOCAB_SIZE} = 265; a
 * model's vocab must be at least that (round it up, e.g. to 272, if you like). Marker tokens let
 * "</s>" or "<|im_end|>" end a reply in one token, as in real chat models.
 */
public final class ByteTokenizerFiles {
  /** Template markers that get their own token, ids 259.. in this order. */
  public static final List<String> MARKERS =
      List.of(
          "<|im_start|>",
          "<|im_end|>",
          "<|end_of_turn|>",
          "<|system|>",
          "<|user|>",
          "<|assistant|>");

  public static final int UNK = 0;
  public static final int BOS = 1;
  public static final int EOS = 2;

  /** The id of byte 0; byte b has id BYTE_BASE + b. */
  public static final int BYTE_BASE = 3;

  public static final int VOCAB_SIZE = BYTE_BASE + 256 + MARKERS.size();

  private ByteTokenizerFiles() {}

  /** Writes {@code dir/tokenizer.json} and {@code dir/tokenizer_config.json}, each atomically. */
  public static void write(Path dir) throws IOException {
    var m = JsonLines.MAPPER;
    ObjectNode root = m.createObjectNode();
    root.put("version", "1.0");
    root.putNull("truncation");
    root.putNull("padding");
    ArrayNode added = root.putArray("added_tokens");
    String[] specials = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < specials.length; i++) {
      addToken(added, i, specials[i]);
    }
    for (int i = 0; i < MARKERS.size(); i++) {
      addToken(added, BYTE_BASE + 256 + i, MARKERS.get(i));
    }
    root.putNull("normalizer");
    ObjectNode pre = root.putObject("pre_tokenizer");
    pre.put("type", "ByteLevel")
        .put("add_prefix_space", false)
        .put("trim_offsets", false)
        .put("use_regex", false);
    ObjectNode post = root.putObject("post_processor");
    post.put("type", "TemplateProcessing");
    ArrayNode single = post.putArray("single");
    single.addObject().putObject("SpecialToken").put("id", "<s>").put("type_id", 0);
    single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
    ArrayNode pair = post.putArray("pair");
    pair.addObject().putObject("SpecialToken").put("id", "<s>").put("type_id", 0);
    pair.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
    pair.addObject().putObject("SpecialToken").put("id", "<s>").put("type_id", 1);
    pair.addObject().putObject("Sequence").put("id", "B").put("type_id", 1);
    ObjectNode st = post.putObject("special_tokens").putObject("<s>");
    st.put("id", "<s>");
    st.putArray("ids").add(BOS);
    st.putArray("tokens").add("<s>");
    ObjectNode dec = root.putObject("decoder");
    dec.put("type", "ByteLevel")
        .put("add_prefix_space", false)
        .put("trim_offsets", false)
        .put("use_regex", false);
    ObjectNode model = root.putObject("model");
    model
        .put("type", "BPE")
        .putNull("dropout")
        .put("unk_token", "<unk>")
        .putNull("continuing_subword_prefix")
        .putNull("end_of_word_suffix")
        .put("fuse_unk", false)
        .put("byte_fallback", false)
        .put("ignore_merges", false);
    ObjectNode vocab = model.putObject("vocab");
    for (int i = 0; i < specials.length; i++) {
      vocab.put(specials[i], i);
    }
    char[] spelling = byteSpelling();
    for (int b = 0; b < 256; b++) {
      vocab.put(String.valueOf(spelling[b]), BYTE_BASE + b);
    }
    model.putArray("merges");
    AtomicFiles.writeFile(
        dir.resolve("tokenizer.json"), m.writerWithDefaultPrettyPrinter().writeValueAsBytes(root));

    ObjectNode cfg = m.createObjectNode();
    cfg.put("tokenizer_class", "PreTrainedTokenizerFast");
    cfg.put("bos_token", "<s>").put("eos_token", "</s>").put("unk_token", "<unk>");
    cfg.put("add_bos_token", true).put("add_eos_token", false);
    cfg.put("clean_up_tokenization_spaces", false);
    cfg.put("model_max_length", 1_000_000);
    ArrayNode extra = cfg.putArray("additional_special_tokens");
    MARKERS.forEach(extra::add);
    AtomicFiles.writeFile(
        dir.resolve("tokenizer_config.json"),
        m.writerWithDefaultPrettyPrinter().writeValueAsBytes(cfg));
  }

  private static void addToken(ArrayNode added, int id, String content) {
    added
        .addObject()
        .put("id", id)
        .put("content", content)
        .put("single_word", false)
        .put("lstrip", false)
        .put("rstrip", false)
        .put("normalized", false)
        .put("special", true);
  }

  /**
   * GPT-2's byte-to-unicode table (as the ByteLevel pre-tokenizer spells bytes): printable Latin-1
   * bytes stand for themselves, the other 68 map to U+0100 onwards in byte order.
   */
  static char[] byteSpelling() {
    char[] s = new char[256];
    int next = 256;
    for (int b = 0; b < 256; b++) {
      boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      s[b] = printable ? (char) b : (char) next++;
    }
    return s;
  }
}
