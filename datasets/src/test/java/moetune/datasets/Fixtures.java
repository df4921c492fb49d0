package moetune.datasets;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;

/** The shared test fixtures (system property moetune.fixtures, set by surefire). */
final class Fixtures {
  private Fixtures() {}

  static Path tinyMixtral() {
    Path p = Path.of(System.getProperty("moetune.fixtures", "../fixtures")).resolve("tiny-mixtral");
    Assumptions.assumeTrue(
        Files.isRegularFile(p.resolve("tokenizer.json")), "fixture tokenizer missing at " + p);
    return p;
  }

  private static ChatTokenizer mistral;

  /** The Mistral tokenizer of the fixture, loaded once (it is immutable). */
  static synchronized ChatTokenizer mistral() {
    if (mistral == null) {
      mistral = ChatTokenizer.load(tinyMixtral());
    }
    return mistral;
  }
}
