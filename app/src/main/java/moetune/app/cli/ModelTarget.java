package moetune.app.cli;

import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The options of commands that run a trained model: which model, on which device. */
final class ModelTarget {
  @Option(
      names = "--model",
      required = true,
      paramLabel = "DIR",
      description = "model directory or train output")
  Path model;

  @Option(
      names = "--device",
      defaultValue = "auto",
      paramLabel = "D",
      description = "cpu, cuda, cuda:N or auto (default: ${DEFAULT-VALUE})")
  String device;
}
