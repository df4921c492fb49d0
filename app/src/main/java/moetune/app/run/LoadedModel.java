package moetune.app.run;

import java.nio.file.Path;
import java.util.function.Consumer;
import moetune.datasets.ChatTokenizer;
import moetune.engine.backend.Backend;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.ModelOptions;

/**
 * A model directory opened for inference: its tokenizer, a backend for the chosen device and the
 * model on it at the device's natural precision (bf16 on a GPU, fp32 on the CPU). What {@code
 * generate}, {@code eval} and the desktop app's prompt box share. Closing it frees all three, the
 * model first.
 */
public record LoadedModel(ChatTokenizer tokenizer, Backend backend, MixtralModel model)
    implements AutoCloseable {

  /**
   * Opens {@code dir} (a HuggingFace model directory with its tokenizer) on {@code device} (cpu,
   * cuda, cuda:N or auto); {@code seed} seeds the model's router jitter. Device choices and
   * problems are reported to {@code log}; whatever was opened is closed again on failure.
   */
  public static LoadedModel open(Path dir, String device, long seed, Consumer<String> log) {
    ChatTokenizer tok = ChatTokenizer.load(dir);
    Backend be = null;
    try {
      be = Devices.open(device, log);
      MixtralModel m =
          MixtralModel.load(dir, be, new ModelOptions(Devices.precision("auto", be), seed));
      return new LoadedModel(tok, be, m);
    } catch (RuntimeException e) {
      if (be != null) {
        be.close();
      }
      tok.close();
      throw e;
    }
  }

  @Override
  public void close() {
    try (ChatTokenizer t = tokenizer;
        Backend b = backend) {
      model.close();
    }
  }
}
