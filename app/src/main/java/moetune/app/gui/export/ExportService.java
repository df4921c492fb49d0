package moetune.app.gui.export;

import java.nio.file.Path;
import java.util.function.Consumer;
import java.util.function.DoubleConsumer;

/**
 * The Export screen's view of the engine's HF export and generation, the same code paths as
 * `moetune export` and `moetune generate`.
 */
public interface ExportService {

  /** Export dtypes, first the default. */
  java.util.List<String> dtypes();

  /**
   * Writes {@code checkpoint} as an HF directory into {@code target} (atomically: a failed export
   * leaves nothing half-written there) and returns the directory written.
   *
   * @param progress fraction done in [0, 1], called from the export's thread
   */
  Path export(Path checkpoint, Path target, String dtype, long shardBytes, DoubleConsumer progress)
      throws Exception;

  /**
   * Writes the LoRA adapter of {@code checkpoint} (a LoRA run's) as a PEFT adapter directory into
   * {@code target} (atomically) and returns the directory written.
   */
  default Path exportAdapter(Path checkpoint, Path target) throws Exception {
    throw new UnsupportedOperationException("this export service writes merged models only");
  }

  /**
   * Generates a reply to {@code prompt} with the model in {@code modelDir} (a checkpoint or an HF
   * directory), rendered with {@code template}; streams pieces to {@code onText} and returns the
   * whole reply.
   */
  String generate(
      Path modelDir,
      String template,
      String prompt,
      int maxNewTokens,
      double temperature,
      double topP,
      Consumer<String> onText)
      throws Exception;
}
