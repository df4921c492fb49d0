package moetune.engine.hf;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class MixtralConfigTest {
  static Path fixture() {
    return Path.of(System.getProperty("moetune.fixtures", "../fixtures"), "tiny-mixtral");
  }

  @Test
  void fixtureConfigRoundTripsByteForByte() throws Exception {
    Path f = fixture().resolve("config.json");
    MixtralConfig c = MixtralConfig.load(f);
    assertEquals(Files.readString(f), c.toJson());
  }

  @Test
  void fixtureGenerationConfigRoundTripsByteForByte() throws Exception {
    Path f = fixture().resolve("generation_config.json");
    GenerationConfig g = GenerationConfig.load(f);
    assertEquals(Files.readString(f), g.toJson());
    assertEquals(java.util.List.of(2), g.eosTokenIds());
  }
}
