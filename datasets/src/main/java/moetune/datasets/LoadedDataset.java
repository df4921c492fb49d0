package moetune.datasets;

import java.util.List;

/**
 * The records of one dataset file.
 *
 * @param records the good records, in file order
 * @param skipped how many bad records were skipped (0 unless skipping was asked for)
 * @param skipReasons one line per skipped record, "file:line: reason", in file order
 */
public record LoadedDataset(List<ChatRecord> records, int skipped, List<String> skipReasons) {
  public LoadedDataset {
    records = List.copyOf(records);
    skipReasons = List.copyOf(skipReasons);
  }
}
