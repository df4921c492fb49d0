package moetune.datasets;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads conversation datasets: ShareGPT/FastChat JSON or JSONL, OpenAI {@code messages} JSONL,
 * Alpaca JSON (see {@link DatasetFormat}), and the same records as Parquet rows ({@code .parquet},
 * {@link ParquetRecords}). A bad record fails the whole load with a one-line {@link
 * DatasetException} naming file:line and the field, unless {@code skipInvalid} is set: then it is
 * skipped and counted in {@link LoadedDataset#skipped()}, never dropped silently.
 */
public final class DatasetLoader {
  private DatasetLoader() {}

  /**
   * Loads every record of {@code file}.
   *
   * @throws DatasetException for an unreadable file, invalid UTF-8, a broken JSON array, a file
   *     with no good record, or (without skipInvalid) any bad record
   */
  public static LoadedDataset load(Path file, DatasetFormat format, boolean skipInvalid) {
    return load(file, format, skipInvalid, true);
  }

  /**
   * Loads records for {@code template render}: the field checks of {@link #load} but not the
   * training rules, so any turn order and open (null) turns anywhere render as FastChat would.
   */
  public static LoadedDataset loadForRendering(Path file, DatasetFormat format) {
    return load(file, format, false, false);
  }

  private static LoadedDataset load(
      Path file, DatasetFormat format, boolean skipInvalid, boolean strict) {
    List<ChatRecord> records = new ArrayList<>();
    List<String> skipped = new ArrayList<>();
    java.util.function.Consumer<JsonLines.Entry> each =
        e -> {
          String origin = file.getFileName() + ":" + e.line();
          String error = e.parseError();
          if (error == null) {
            try {
              records.add(RecordParser.parse(e.node(), format, origin, strict));
              return;
            } catch (RecordParser.RecordError r) {
              error = r.getMessage();
            }
          }
          String line =
              file
                  + ":"
                  + e.line()
                  + ": record "
                  + (records.size() + skipped.size() + 1)
                  + ": "
                  + error;
          if (!skipInvalid) {
            throw new DatasetException(line + " (or pass --skip-invalid to skip bad records)");
          }
          skipped.add(line);
        };
    if (ParquetRecords.isParquet(file)) {
      ParquetRecords.read(file).forEach(each);
    } else {
      JsonLines.forEach(file, each); // streamed: one record in memory at a time
    }
    if (records.isEmpty()) {
      throw new DatasetException(
          file
              + ": no usable record"
              + (skipped.isEmpty()
                  ? ""
                  : " (" + skipped.size() + " skipped; first: " + skipped.get(0) + ")"));
    }
    return new LoadedDataset(records, skipped.size(), skipped);
  }
}
