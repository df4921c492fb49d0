package moetune.datasets;

import java.util.ArrayList;
import java.util.List;
import moetune.sequences.PackedSequence;
import moetune.templates.ChatFormat;
import moetune.templates.TemplateRegistry;

/**
 * The whole data path in one call: load → shuffle and split by seed → render and tokenize → drop
 * (and count) conversations left without a trainable token → pack or pad to rows.
 */
public final class DataPipeline {
  private DataPipeline() {}

  /**
   * Resolves the config's template among the built-ins, its template file and {@code hf} (the chat
   * template of {@code modelDir}, which may be null where no {@code hf} is asked for).
   */
  public static ChatFormat template(DataConfig c, java.nio.file.Path modelDir) {
    TemplateRegistry reg = TemplateRegistry.builtin();
    if (c.templateFile() != null) {
      reg = reg.with(c.templateFile());
    }
    return reg.format(c.template(), modelDir);
  }

  /** Prepares training and evaluation rows; user errors are {@link DatasetException}s. */
  public static PreparedData prepare(DataConfig c, ChatTokenizer tokenizer) {
    ChatEncoder enc =
        new ChatEncoder(tokenizer, template(c, tokenizer.directory()), c.labels(), c.seqLen());
    // each record is encoded as it is read, so memory holds the tokens, never the file's text;
    // the split permutes by count and seed only, so splitting the encoded list is the same split
    List<EncodedChat> encoded = new ArrayList<>();
    DatasetLoader.Streamed read =
        DatasetLoader.stream(
            c.data(), c.format(), c.skipInvalid(), r -> encoded.add(enc.encode(r)));
    DataSplit.Split<EncodedChat> split = DataSplit.split(encoded, c.evalFraction(), c.seed());
    List<EncodedChat> train = split.train();
    List<EncodedChat> eval = split.eval();
    List<EncodedChat> all = new ArrayList<>(train);
    all.addAll(eval);
    DatasetStats stats = DatasetStats.of(all, read.skipReasons().size(), c.seqLen());
    List<EncodedChat> trainable = trainable(train);
    if (trainable.isEmpty()) {
      throw new DatasetException(
          c.data()
              + ": no conversation has a trainable token with"
              + " template '"
              + c.template()
              + "' and labels "
              + c.labels()
              + (stats.truncatedWithoutTrainable() > 0
                  ? "; "
                      + stats.truncatedWithoutTrainable()
                      + " of "
                      + stats.records()
                      + " lost their replies to truncation at max-length "
                      + c.seqLen()
                      + " tokens: raise --max-length"
                  : "; check that records have assistant replies"));
    }
    return new PreparedData(
        rows(c, trainable, tokenizer), rows(c, trainable(eval), tokenizer), stats);
  }

  private static List<EncodedChat> trainable(List<EncodedChat> docs) {
    return docs.stream().filter(d -> d.trainableTokens() > 0).toList();
  }

  private static List<PackedSequence> rows(
      DataConfig c, List<EncodedChat> docs, ChatTokenizer tok) {
    return c.pack()
        ? Packer.pack(docs, c.seqLen(), tok.padId())
        : Packer.pad(docs, c.seqLen(), tok.padId());
  }
}
