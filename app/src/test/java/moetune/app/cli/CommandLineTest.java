package moetune.app.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.util.regex.Pattern;
import moetune.app.gui.GuiCommand;
import org.junit.jupiter.api.Test;

/** The command line as a whole: version, usage listings, completion, consistent option names. */
class CommandLineTest {

  @Test
  void versionComesFromTheBuild() throws Exception {
    CliRunner r = CliRunner.run("--version");
    assertEquals(0, r.code());
    // the pom's version, filtered into version.properties by Maven
    String pom =
        java.nio.file.Files.readString(
            java.nio.file.Path.of(System.getProperty("user.dir"), "pom.xml"));
    var m = Pattern.compile("<parent>.*?<version>([^<]+)</version>", Pattern.DOTALL).matcher(pom);
    assertTrue(m.find());
    assertEquals("moetune " + m.group(1) + "\n", r.out());
  }

  @Test
  void everyUsageListingNamesTrain() {
    CliRunner help = CliRunner.run("--help");
    assertTrue(help.out().contains("\n  train "), help.out());
    assumeFalse(GuiCommand.hasDisplay(), "with a display, no arguments opens the app");
    CliRunner none = CliRunner.run();
    assertEquals(0, none.code());
    assertTrue(none.out().contains("\n  train "), none.out());
    assertEquals(help.out(), none.out());
  }

  @Test
  void completionScriptCoversTheCommandsAndTheirOptions() {
    CliRunner r = CliRunner.run("completion");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("complete -F _complete_moetune"), r.out().substring(0, 300));
    for (String s : new String[] {"train", "eval", "--learning-rate", "--skip-invalid", "--data"}) {
      assertTrue(r.out().contains(s), "completion lacks " + s);
    }
  }

  @Test
  void dataOptionsAreNamedAlikeAcrossCommands() {
    // --data and --datasets work in train, eval and the data commands alike
    for (String cmd : new String[] {"train", "eval"}) {
      CliRunner h = CliRunner.run(cmd, "--help");
      assertTrue(h.out().contains("--data") && h.out().contains("--datasets"), cmd + h.out());
      assertTrue(h.out().contains("--skip-invalid"), cmd);
      assertTrue(h.out().contains("--max-length"), cmd);
    }
    CliRunner d = CliRunner.run("data", "stats", "--help");
    assertTrue(d.out().contains("--data, --datasets"), d.out());
    assertTrue(
        d.out()
            .replaceAll("\\s+", " ")
            .contains(
                "--max-length=<maxLength> Truncate conversations"
                    + " to this many tokens (default: 512)"),
        "one --max-length default: " + d.out());
  }

  @Test
  void guiInABuildWithoutJavaFxIsOneLine() throws Exception {
    // the GPU-server tarball's class path: everything but JavaFX's jars
    String cp =
        String.join(
            java.io.File.pathSeparator,
            java.util.Arrays.stream(
                    System.getProperty("java.class.path").split(java.io.File.pathSeparator))
                .filter(e -> !e.contains("javafx") && !e.contains("openjfx"))
                .toList());
    String javaBin = ProcessHandle.current().info().command().orElseThrow();
    Process p =
        new ProcessBuilder(javaBin, "-cp", cp, "moetune.app.Main", "gui")
            .redirectErrorStream(true)
            .start();
    String out =
        new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
    assertEquals(2, p.waitFor(), out);
    assertEquals(GuiCommand.NO_GUI + "\n", out.replaceAll("(?m)^SLF4J.*\n", ""));
    assertTrue(GuiCommand.hasJavaFx(), "the test class path has JavaFX");
  }

  @Test
  void evalSkipsInvalidRecordsWhenAskedAndSaysHowMany(
      @org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws Exception {
    java.nio.file.Path f = tmp.resolve("chats.jsonl");
    moetune.datasets.SampleData.writeShareGpt(f, moetune.datasets.SampleData.arithmetic(5, 6));
    java.util.List<String> lines = new java.util.ArrayList<>(java.nio.file.Files.readAllLines(f));
    lines.add(2, "{\"conversations\": \"not a list\"}");
    java.nio.file.Files.write(f, lines);
    String model =
        java.nio.file.Path.of(System.getProperty("moetune.fixtures"), "tiny-mixtral").toString();
    CliRunner strict =
        CliRunner.run("eval", "--model", model, "--data", f.toString(), "--device", "cpu");
    assertEquals(2, strict.code());
    String last = strict.err().lines().reduce((a, b) -> b).orElse(""); // after the device line
    assertTrue(last.startsWith("moetune eval: " + f + ":3: record 3: "), strict.err());
    assertTrue(strict.err().contains("(or pass --skip-invalid to skip bad records)"));
    CliRunner skip =
        CliRunner.run(
            "eval",
            "--model",
            model,
            "--datasets",
            f.toString(),
            "--device",
            "cpu",
            "--skip-invalid");
    assertEquals(0, skip.code(), skip.err());
    assertTrue(skip.out().contains("(6 conversations)"), skip.out());
    assertTrue(skip.out().contains(f + ": 1 invalid record skipped"), skip.out());
  }
}
