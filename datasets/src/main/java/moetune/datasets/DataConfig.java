package moetune.datasets;

import java.nio.file.Path;

/**
 * Everything {@link DataPipeline#prepare} needs besides the tokenizer.
 *
 * @param data the dataset file
 * @param format its record shape ({@link DatasetFormat#AUTO} to detect)
 * @param skipInvalid skip (and count) bad records instead of failing
 * @param template a template name
 * @param templateFile a JSON file of user templates, or null
 * @param labels which tokens are trained
 * @param seqLen row length T; also the max conversation length (longer ones are truncated)
 * @param pack pack several conversations per row (else one per row, padded)
 * @param evalFraction the share of conversations held out for evaluation, in [0, 1)
 * @param seed the shuffle seed
 */
public record DataConfig(
    Path data,
    DatasetFormat format,
    boolean skipInvalid,
    String template,
    Path templateFile,
    LabelMode labels,
    int seqLen,
    boolean pack,
    double evalFraction,
    long seed) {

  /** Defaults: auto format, no skipping, all assistant turns, packing, 5% eval, seed 42. */
  public static DataConfig of(Path data, String template, int seqLen) {
    return new DataConfig(
        data,
        DatasetFormat.AUTO,
        false,
        template,
        null,
        LabelMode.ALL_ASSISTANT,
        seqLen,
        true,
        0.05,
        42L);
  }
}
