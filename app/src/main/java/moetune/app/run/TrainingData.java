package moetune.app.run;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import moetune.app.config.DatasetSpec;
import moetune.app.config.RunConfig;
import moetune.datasets.ChatTokenizer;
import moetune.datasets.DataConfig;
import moetune.datasets.DataPipeline;
import moetune.datasets.DatasetFormat;
import moetune.datasets.LabelMode;
import moetune.datasets.PreparedData;
import moetune.engine.train.PackedSequence;
import moetune.engine.train.SequenceSource;

/**
 * The run's datasets as the engine's training and held-out sequences: each dataset goes through the
 * datasets module's pipeline (load, split, render, tokenize, mask, pack), then the rows are
 * concatenated and converted to the engine's shifted-target form.
 *
 * @param train the training sequences
 * @param eval the held-out sequences, or null when there are none
 * @param conversations conversations read in all (train and held out)
 * @param summary one line for the log
 */
public record TrainingData(
    SequenceSource train, SequenceSource eval, int conversations, String summary) {

  /**
   * Prepares every dataset of the config. With eval-datasets, those are the held-out split and the
   * training datasets are not split; otherwise each training dataset gives eval-split of its
   * conversations.
   */
  public static TrainingData prepare(RunConfig cfg, ChatTokenizer tokenizer) {
    boolean separateEval = !cfg.evalDatasets().isEmpty();
    List<PackedSequence> train = new ArrayList<>();
    List<PackedSequence> eval = new ArrayList<>();
    int conversations = 0;
    for (DatasetSpec d : cfg.datasets()) {
      PreparedData p =
          DataPipeline.prepare(dataConfig(cfg, d, separateEval ? 0 : cfg.evalSplit()), tokenizer);
      p.train().forEach(s -> train.add(convert(s)));
      p.eval().forEach(s -> eval.add(convert(s)));
      conversations += p.stats().records();
    }
    for (DatasetSpec d : cfg.evalDatasets()) {
      PreparedData p = DataPipeline.prepare(dataConfig(cfg, d, 0), tokenizer);
      p.train().forEach(s -> eval.add(convert(s)));
      conversations += p.stats().records();
    }
    String summary =
        conversations
            + " conversations -> "
            + train.size()
            + " training and "
            + eval.size()
            + " held-out sequences of "
            + cfg.maxLength()
            + " tokens"
            + (cfg.packing() ? " (packed)" : " (one per sequence)");
    return new TrainingData(
        SequenceSource.of(train),
        eval.isEmpty() ? null : SequenceSource.of(eval),
        conversations,
        summary);
  }

  static DataConfig dataConfig(RunConfig cfg, DatasetSpec d, double evalFraction) {
    return new DataConfig(
        Path.of(d.path()),
        DatasetFormat.parse(d.format()),
        false,
        d.template(),
        cfg.templateFile() == null ? null : Path.of(cfg.templateFile()),
        LabelMode.parse(d.labels()),
        cfg.maxLength(),
        cfg.packing(),
        evalFraction,
        cfg.seed());
  }

  /**
   * The datasets module's row (HF labels: labels[t] is the target of position t-1) as the engine's
   * (targets[t] is the target of position t): targets[t] = labels[t+1], and no target at the last
   * position. The first label of a row is -100 by construction (a document's first token is never a
   * target), so nothing is lost.
   */
  public static PackedSequence convert(moetune.datasets.PackedSequence s) {
    int t = s.length();
    int[] targets = new int[t];
    for (int i = 0; i + 1 < t; i++) {
      targets[i] = s.labels()[i + 1];
    }
    targets[t - 1] = -100;
    return new PackedSequence(s.inputIds(), targets, s.positions(), s.docIds());
  }
}
