package moetune.app.gui.data;

import java.nio.file.Path;
import java.util.List;

/**
 * The Data screen's view of the templates and datasets modules. The app's implementation
 * delegates to their readers, renderer and tokenizer; this interface exists so the
 * ViewModel can be tested without files.
 */
public interface DatasetService {

  /** Dataset formats the readers know, first the default. */
  List<String> formats();

  /** Registered template names, first the default. */
  List<String> templates();

  /**
   * Reads, renders with {@code template} and tokenizes with the tokenizer in
   * {@code tokenizerDir}; bad records are returned in {@link DataPreview#errors()} when
   * {@code skipBad}, else the first one fails the load.
   */
  DataPreview load(List<Path> files, String format, String template, Path tokenizerDir,
      int maxLength, boolean skipBad) throws Exception;
}
