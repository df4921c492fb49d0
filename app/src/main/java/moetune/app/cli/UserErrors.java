package moetune.app.cli;

import java.util.concurrent.Callable;

/**
 * Runs a command body with the command line's one error policy ({@link CliErrors}): a user's
 * mistake (bad file, name or option) becomes one line naming the command, and exit code 2; anything
 * else one line, the stack trace and exit code 1.
 */
final class UserErrors {
  private UserErrors() {}

  static int run(String command, Callable<Integer> body) {
    try {
      return body.call();
    } catch (Exception e) {
      return CliErrors.report(command, e, System.err);
    }
  }
}
