package moetune.app.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * {@code moetune bench}: the product's benchmarks. Each one prints a table whose reference (cuBLAS,
 * PyTorch, transformers) is measured in the same run, so every speed claim is a ratio.
 */
@Command(
    name = "bench",
    mixinStandardHelpOptions = true,
    description =
        "Benchmarks that print moetune's time next to a reference measured in the same run.",
    subcommands = {
      BenchAttentionCommand.class,
      BenchMoeCommand.class,
      BenchStepCommand.class,
      BenchKernelsCommand.class,
      CommandLine.HelpCommand.class
    })
public final class BenchCommand implements Runnable {

  @Spec CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }
}
