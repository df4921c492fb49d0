package moetune.app;

import java.util.Properties;
import moetune.app.cli.EvalCommand;
import moetune.app.cli.ExportCommand;
import moetune.app.cli.GenerateCommand;
import moetune.app.cli.TrainCommand;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** The moetune command line. Each subcommand lives in its own class under moetune.app.cli. */
@Command(
    name = "moetune",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description = "Finetune mixture-of-experts (Mixtral) models with ScatterMoE kernels.")
public final class Main implements Runnable {
  @Spec CommandSpec spec;

  /** The version Maven wrote into version.properties when the jar was built. */
  public static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      return new String[] {"moetune " + version()};
    }

    /** The build's version, or "unknown" for classes not built by Maven. */
    public static String version() {
      try (var in = Main.class.getResourceAsStream("version.properties")) {
        if (in == null) {
          return "unknown";
        }
        Properties p = new Properties();
        p.load(in);
        String v = p.getProperty("version", "unknown");
        return v.startsWith("${") ? "unknown" : v;
      } catch (java.io.IOException e) {
        return "unknown";
      }
    }
  }

  /**
   * The whole command line: every subcommand in the order {@code --help} lists them (train is built
   * here because its options are generated from the run config fields).
   */
  public static CommandLine commandLine() {
    CommandLine cl = new CommandLine(new Main());
    cl.addSubcommand("help", new CommandLine.HelpCommand());
    cl.addSubcommand("train", TrainCommand.commandLine());
    cl.addSubcommand(new EvalCommand());
    cl.addSubcommand(new GenerateCommand());
    cl.addSubcommand(new ExportCommand());
    cl.addSubcommand(new moetune.app.cli.TemplateCommand());
    cl.addSubcommand(new moetune.app.cli.DataCommand());
    cl.addSubcommand(new moetune.app.cli.BenchCommand());
    cl.addSubcommand(new moetune.app.gui.GuiCommand());
    cl.addSubcommand(new moetune.app.cli.CompletionCommand());
    cl.setParameterExceptionHandler(Main::badArguments);
    return cl;
  }

  public static void main(String[] args) {
    // DJL's tokenizer logs through SLF4J, which warns on stderr that no logger is bound.
    System.setProperty("slf4j.internal.verbosity", "ERROR");
    moetune.app.cli.OutOfMemory.install();
    int code;
    try {
      code = run(args);
    } catch (OutOfMemoryError e) {
      moetune.app.cli.OutOfMemory.halt(System.err);
      return;
    }
    System.exit(code);
  }

  /** Runs the command line and returns the exit code (tests call this instead of main). */
  public static int run(String... args) {
    if (args.length > 0
        && args[0].equals("--train")) { // `moetune --train ...` = `moetune train ...`
      args = args.clone();
      args[0] = "train";
    }
    if (args.length > 0 && args[0].equals("train")) {
      args = snakeFlagsToKebab(args);
    }
    return commandLine().execute(args);
  }

  /**
   * A bad flag or value: one line naming it, picocli's suggestion when it has one, and where help
   * is; not the usage dump (train's has a hundred lines).
   */
  static int badArguments(CommandLine.ParameterException ex, String[] args) {
    CommandLine c = ex.getCommandLine();
    String name = c.getCommandSpec().qualifiedName();
    String hint = "";
    if (ex instanceof CommandLine.UnmatchedArgumentException u && !u.getSuggestions().isEmpty()) {
      hint = " (did you mean " + String.join(" or ", u.getSuggestions()) + "?)";
    }
    String msg = ex.getMessage() == null ? "bad arguments" : ex.getMessage().strip();
    c.getErr()
        .println(
            name
                + ": "
                + msg.lines().findFirst().orElse(msg)
                + hint
                + "; see '"
                + name
                + " --help'");
    c.getErr().flush();
    return c.getCommandSpec().exitCodeOnInvalidInput();
  }

  /**
   * train's flags may be written in snake case as axolotl and transformers write them ({@code
   * --learning_rate}): the name part of every {@code --flag} is read with {@code -} for {@code _}.
   * Values are left alone.
   */
  static String[] snakeFlagsToKebab(String[] args) {
    String[] out = args.clone();
    for (int i = 1; i < out.length; i++) {
      String a = out[i];
      if (a.equals("--")) {
        break;
      }
      if (a.startsWith("--")) { // values of train's flags never start with "--"
        int eq = a.indexOf('=');
        String name = eq < 0 ? a : a.substring(0, eq);
        out[i] = name.replace('_', '-') + (eq < 0 ? "" : a.substring(eq));
      }
    }
    return out;
  }

  /** No subcommand: open the desktop app when there is a display, else print usage. */
  @Override
  public void run() {
    if (moetune.app.gui.GuiCommand.hasDisplay() && moetune.app.gui.GuiCommand.hasJavaFx()) {
      new moetune.app.gui.GuiCommand().call();
    } else {
      spec.commandLine().usage(System.out); // the full listing, train included
    }
  }
}
