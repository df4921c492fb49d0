package moetune.app.gui.data;

import java.util.List;
import moetune.datasets.DatasetStats;
import moetune.datasets.EncodedChat;

/**
 * What the Data screen shows after a load: every record as the trainer will see it (tokens and
 * labels, {@link EncodedChat}), the datasets module's statistics, and the bad records skipped,
 * each as "file:line: reason" (never dropped silently).
 */
public record DataPreview(List<EncodedChat> records, DatasetStats stats, List<String> errors) {

  public DataPreview {
    records = List.copyOf(records);
    errors = List.copyOf(errors);
  }

  /** One token as the record browser shows it; {@code trainable} when its label is not -100. */
  public record Token(int id, String text, boolean trainable) {}
}
