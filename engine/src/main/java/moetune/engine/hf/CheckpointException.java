package moetune.engine.hf;

import java.nio.file.Path;

/**
 * A checkpoint, safetensors file or model config that moetune cannot read or write. The message is
 * one line: the file, the tensor or field, what is wrong and, where there is one, how to fix it:
 * {@code "model.safetensors: tensor 'lm_head.weight': data_offsets [0, 12] end past the data area
 * (8 bytes); the file is truncated or the header is wrong"}.
 */
public class CheckpointException extends RuntimeException {
  private final Path file;
  private final String subject;

  /**
   * @param file the file the problem is in (null when there is none, e.g. a config built in code)
   * @param subject what in the file: {@code "tensor 'x'"}, {@code "field 'rope_parameters'"},
   *     {@code "header"}; null when the whole file is meant
   * @param problem what is wrong and how to fix it
   */
  public CheckpointException(Path file, String subject, String problem) {
    this(file, subject, problem, null);
  }

  public CheckpointException(Path file, String subject, String problem, Throwable cause) {
    super(format(file, subject, problem), cause);
    this.file = file;
    this.subject = subject;
  }

  /** The file the problem is in, or null. */
  public Path file() {
    return file;
  }

  /** The tensor, field or part of the file, or null. */
  public String subject() {
    return subject;
  }

  /** Formats one line: {@code file: subject: problem}, newlines flattened. */
  static String format(Path file, String subject, String problem) {
    StringBuilder sb = new StringBuilder();
    if (file != null) {
      sb.append(file).append(": ");
    }
    if (subject != null) {
      sb.append(subject).append(": ");
    }
    sb.append(problem);
    return sb.toString().replace('\n', ' ').replace('\r', ' ');
  }

  /** {@code "tensor 'name'"} */
  public static String tensor(String name) {
    return "tensor '" + name + "'";
  }

  /** {@code "field 'name'"} */
  public static String field(String name) {
    return "field '" + name + "'";
  }
}
