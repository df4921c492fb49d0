package moetune.app.run;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import moetune.app.config.DatasetSpec;
import moetune.app.config.RunConfig;
import moetune.datasets.ChatTokenizer;
import moetune.datasets.DataConfig;
import moetune.datasets.DataPipeline;
import moetune.datasets.DatasetFormat;
import moetune.datasets.LabelMode;
import moetune.datasets.PreparedData;
import moetune.engine.train.SequenceSource;
import moetune.sequences.PackedSequence;

/**
 * The run's datasets as the engine's training and held-out sequences: each dataset goes through the
 * datasets module's pipeline (load, split, render, tokenize, mask, pack), then the rows are
 * concatenated. The rows are the engine's {@link PackedSequence}s as they are (HF's unshifted
 * labels, shifted once inside the model).
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
    boolean separateEval = !cfg.resolvedEvalDatasets().isEmpty();
    List<PackedSequence> train = new ArrayList<>();
    List<PackedSequence> eval = new ArrayList<>();
    List<String> notes = new ArrayList<>();
    int conversations = 0;
    List<DatasetSpec> sets = cfg.resolvedDatasets();
    for (int i = 0; i < sets.size(); i++) {
      DatasetSpec d = sets.get(i);
      PreparedData p =
          DataPipeline.prepare(dataConfig(cfg, d, separateEval ? 0 : cfg.evalSplit()), tokenizer);
      List<PackedSequence> rows = p.train();
      List<PackedSequence> mixed = mix(rows, d.weightOrOne(), cfg.seed() + i);
      train.addAll(mixed);
      eval.addAll(p.eval());
      conversations += p.stats().records();
      String mixing =
          d.weight() == null
              ? ""
              : "weight " + d.weight() + ": " + rows.size() + " -> " + mixed.size() + " sequences";
      note(notes, d, p, mixing);
    }
    for (DatasetSpec d : cfg.resolvedEvalDatasets()) {
      PreparedData p = DataPipeline.prepare(dataConfig(cfg, d, 0), tokenizer);
      eval.addAll(p.train());
      conversations += p.stats().records();
      note(notes, d, p, "");
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
            + (cfg.packing() ? " (packed)" : " (one per sequence)")
            + (notes.isEmpty() ? "" : "; " + String.join("; ", notes));
    return new TrainingData(
        SequenceSource.of(train),
        eval.isEmpty() ? null : SequenceSource.of(eval),
        conversations,
        summary);
  }

  /** What reading a dataset cost (truncation, skipped records) or mixing did, if anything. */
  private static void note(List<String> notes, DatasetSpec d, PreparedData p, String mixing) {
    List<String> parts = new ArrayList<>();
    if (!p.stats().lossNote().isEmpty()) {
      parts.add(p.stats().lossNote());
    }
    if (!mixing.isEmpty()) {
      parts.add(mixing);
    }
    if (!parts.isEmpty()) {
      notes.add(d.path() + ": " + String.join(", ", parts));
    }
  }

  /**
   * A dataset's training rows at its mixing weight: whole copies for the integer part, and a seeded
   * random subset (without repeats) for the fraction, so weight 2.5 takes every row twice and half
   * of them a third time; weight 0.5 a seeded half. Rows pack whole conversations, so this weighs
   * conversations, not tokens.
   */
  static List<PackedSequence> mix(List<PackedSequence> rows, double weight, long seed) {
    if (weight == 1.0 || rows.isEmpty()) {
      return rows;
    }
    List<PackedSequence> out = new ArrayList<>();
    int whole = (int) Math.floor(weight);
    for (int k = 0; k < whole; k++) {
      out.addAll(rows);
    }
    int extra = (int) Math.round((weight - whole) * rows.size());
    List<PackedSequence> shuffled = new ArrayList<>(rows);
    Collections.shuffle(shuffled, new Random(seed));
    out.addAll(shuffled.subList(0, extra));
    if (out.isEmpty()) {
      out.add(shuffled.getFirst()); // a weight so small it rounds to nothing still keeps one row
    }
    return out;
  }

  static DataConfig dataConfig(RunConfig cfg, DatasetSpec d, double evalFraction) {
    return new DataConfig(
        Path.of(d.path()),
        DatasetFormat.parse(d.format()),
        cfg.skipInvalid(),
        d.template(),
        cfg.templateFile() == null ? null : Path.of(cfg.templateFile()),
        LabelMode.parse(d.labels()),
        cfg.maxLength(),
        cfg.packing(),
        evalFraction,
        cfg.seed());
  }
}
