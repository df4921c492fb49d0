package moetune.app.cli;

import java.io.PrintStream;
import java.io.UncheckedIOException;
import moetune.app.config.ConfigException;
import moetune.datasets.DatasetException;
import moetune.engine.hf.CheckpointException;
import moetune.templates.TemplateException;

/**
 * How commands report failures: a user's mistake (config, flag, file, dataset, template) as one
 * line and exit code 2; anything else as one line plus the stack trace and exit code 1.
 */
final class CliErrors {
  private CliErrors() {}

  static int report(String command, Throwable e, PrintStream err) {
    if (OutOfMemory.isGpuOutOfMemory(e)) {
      err.println(OutOfMemory.gpuAdvice(e));
      return OutOfMemory.EXIT_CODE;
    }
    if (OutOfMemory.isOutOfMemory(e)) { // an OOM wrapped in an exception (a pool task's)
      err.println(OutOfMemory.hostAdvice());
      return OutOfMemory.EXIT_CODE;
    }
    Throwable io = e instanceof UncheckedIOException u ? u.getCause() : e;
    if (io instanceof java.nio.file.FileSystemException f
        && !(io instanceof java.nio.file.NoSuchFileException)) {
      // Permissions, a read-only or full file system: the user's to fix, named in one line.
      err.println(
          "moetune "
              + command
              + ": "
              + f.getFile()
              + ": "
              + (f.getReason() != null ? f.getReason() : f.getClass().getSimpleName())
              + "; check permissions and free space (files written before are intact)");
      return 2;
    }
    if (io instanceof java.io.IOException x
        && x.getMessage() != null
        && x.getMessage().contains("No space left on device")) {
      err.println(
          "moetune "
              + command
              + ": the disk is full ("
              + x.getMessage()
              + "); free space, then continue with --resume (the latest checkpoint is intact)");
      return 2;
    }
    if (e instanceof moetune.engine.dist.GroupBrokenException) {
      // another rank died: its own output has the cause; this rank's part is one line
      err.println("moetune " + command + ": " + e.getMessage());
      return 1;
    }
    if (isUserError(e)) {
      err.println("moetune " + command + ": " + e.getMessage());
      return 2;
    }
    err.println("moetune " + command + ": failed: " + e);
    e.printStackTrace(err);
    return 1;
  }

  static boolean isUserError(Throwable e) {
    return e instanceof ConfigException
        || e instanceof DatasetException
        || e instanceof CheckpointException
        || e instanceof TemplateException
        || e instanceof UncheckedIOException
        || e instanceof java.nio.file.NoSuchFileException
        || e instanceof IllegalArgumentException;
  }
}
