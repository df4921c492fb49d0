package moetune.app.cli;

import java.util.concurrent.Callable;
import picocli.AutoComplete;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * {@code moetune completion}: the bash/zsh completion script picocli generates from the commands
 * and options themselves, so it never falls behind them.
 */
@Command(
    name = "completion",
    mixinStandardHelpOptions = true,
    description = {
      "Print a bash/zsh completion script for moetune.",
      "Try it:     source <(moetune completion)",
      "Keep it:    moetune completion > ~/.local/share/bash-completion/completions/moetune",
      "zsh:        autoload -U +X bashcompinit && bashcompinit; source <(moetune completion)"
    })
public final class CompletionCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    System.out.print(AutoComplete.bash("moetune", spec.root().commandLine()));
    System.out.flush();
    return 0;
  }
}
