package moetune.datasets;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

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
    Streamed s = stream(file, format, skipInvalid, strict, records::add);
    return new LoadedDataset(records, s.skipReasons().size(), s.skipReasons());
  }

  /**
   * What {@link #stream} read: how many good records went to the sink, and one line per skipped
   * record ("file:line: reason", in file order).
   */
  public record Streamed(long records, List<String> skipReasons) {}

  /**
   * Hands every good record of {@code file} to {@code sink} in file order, one record in memory at
   * a time, with the checks and errors of {@link #load}: a caller that keeps only what it makes of
   * each record (tokens) never holds the file's text whole.
   */
  public static Streamed stream(
      Path file, DatasetFormat format, boolean skipInvalid, Consumer<ChatRecord> sink) {
    return stream(file, format, skipInvalid, true, sink);
  }

  private static Streamed stream(
      Path file,
      DatasetFormat format,
      boolean skipInvalid,
      boolean strict,
      Consumer<ChatRecord> sink) {
    long[] good = {0};
    List<String> skipped = new ArrayList<>();
    Consumer<JsonLines.Entry> each =
        e -> {
          String origin = file.getFileName() + ":" + e.line();
          String error = e.parseError();
          ChatRecord record = null;
          if (error == null) {
            try {
              record = RecordParser.parse(e.node(), format, origin, strict);
            } catch (RecordParser.RecordError r) {
              error = r.getMessage();
            }
          }
          if (record != null) {
            good[0]++;
            sink.accept(record);
            return;
          }
          String line =
              file + ":" + e.line() + ": record " + (good[0] + skipped.size() + 1) + ": " + error;
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
    if (good[0] == 0) {
      throw new DatasetException(
          file
              + ": no usable record"
              + (skipped.isEmpty()
                  ? ""
                  : " (" + skipped.size() + " skipped; first: " + skipped.get(0) + ")"));
    }
    return new Streamed(good[0], skipped);
  }
}
