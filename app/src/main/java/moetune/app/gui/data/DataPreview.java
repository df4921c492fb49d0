package moetune.app.gui.data;

import java.util.List;
import moetune.datasets.ChatRecord;
import moetune.datasets.DatasetStats;
import moetune.datasets.EncodedChat;

/**
 * What the Data screen shows after a load: every record as read ({@link ChatRecord}) and as the
 * trainer will see it (tokens and labels, {@link EncodedChat}), in the same order; the datasets
 * module's statistics; and the bad records skipped, each as "file:line: reason" (never dropped
 * silently).
 */
public record DataPreview(
    List<ChatRecord> records, List<EncodedChat> encoded, DatasetStats stats, List<String> errors) {

  public DataPreview {
    records = List.copyOf(records);
    encoded = List.copyOf(encoded);
    errors = List.copyOf(errors);
    if (records.size() != encoded.size()) {
      throw new IllegalArgumentException(
          records.size() + " records but " + encoded.size() + " encoded");
    }
  }
}
