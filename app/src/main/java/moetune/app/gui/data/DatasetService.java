package moetune.app.gui.data;

import java.nio.file.Path;
import java.util.List;
import moetune.datasets.TokenView;

/**
 * The Data screen's way to the templates and datasets modules (readers, renderer, tokenizer,
 * statistics). The app's implementation is {@link EngineDatasetService}; the ViewModel only sees
 * this so its tests need no tokenizer.
 */
public interface DatasetService {

  /** Dataset formats the readers know, the run config's default first. */
  List<String> formats();

  /** Registered template names, the run config's default first. */
  List<String> templates();

  /** Label modes (which tokens carry the loss), the run config's default first. */
  List<String> labelModes();

  /**
   * Reads every file, renders each record with {@code template} and tokenizes it with the tokenizer
   * in {@code tokenizerDir}, as training will. With {@code skipBad}, bad records are listed in
   * {@link DataPreview#errors()}; without, the first one fails the load.
   */
  DataPreview load(
      List<Path> files,
      String format,
      String template,
      String labels,
      Path tokenizerDir,
      int maxLength,
      boolean skipBad)
      throws Exception;

  /**
   * Record {@code index} of the last load token by token (spelling, id, label), for the record
   * browser.
   */
  List<TokenView> tokens(int index) throws Exception;
}
