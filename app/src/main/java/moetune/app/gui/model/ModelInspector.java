package moetune.app.gui.model;

import java.nio.file.Path;

/**
 * The Model screen's view of the engine: reads a model's facts and lists GPUs. The app's
 * implementation ({@link EngineModelInspector}) delegates to the engine's config and backend APIs;
 * this interface only exists so the ViewModel can be tested without files or devices.
 */
public interface ModelInspector {

  /** Reads an HF model directory (config.json and its safetensors). */
  ModelFacts inspectDirectory(Path dir) throws Exception;

  /** Reads a bare config.json for a model that will be freshly initialised. */
  ModelFacts inspectNewConfig(Path configJson) throws Exception;

  /**
   * A folder with the tokenizer a new model gets when the run config names none: the generated
   * byte-level one `train` writes to out/base, for the Data screen's preview.
   */
  Path newModelTokenizer() throws Exception;

  /** The CUDA devices found with their free memory, or why there is none. */
  GpuInfo.Report gpus();
}
