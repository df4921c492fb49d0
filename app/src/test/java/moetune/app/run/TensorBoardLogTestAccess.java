package moetune.app.run;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/** The test reader of {@link TensorBoardLogTest} for tests in other packages. */
public final class TensorBoardLogTestAccess {
  private TensorBoardLogTestAccess() {}

  /** The file_version string and the scalars (Scalar[step=, tag=, value=]) of an event file. */
  public static List<Object> read(Path file) throws IOException {
    return TensorBoardLogTest.read(file);
  }
}
