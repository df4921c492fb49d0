package moetune.app.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.concurrent.Callable;
import moetune.datasets.DatasetException;
import moetune.templates.TemplateException;

/**
 * Runs a command body and turns user errors (bad files, names, options) into one line on
 * stderr and exit code 1, instead of a stack trace. Programming errors still propagate.
 */
final class UserErrors {
  private UserErrors() {}

  static int run(Callable<Integer> body) throws Exception {
    try {
      return body.call();
    } catch (DatasetException | TemplateException e) {
      System.err.println("moetune: " + e.getMessage());
      return 1;
    } catch (IOException | UncheckedIOException e) {
      System.err.println("moetune: " + e.getMessage());
      return 1;
    }
  }
}
