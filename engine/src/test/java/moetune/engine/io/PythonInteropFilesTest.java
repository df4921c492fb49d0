package moetune.engine.io;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import moetune.engine.tensor.DType;
import org.junit.jupiter.api.Test;

/**
 * Writes moetune-saved copies of the fixture (F32 sharded, BF16 single file, F16 sharded) with a
 * manifest each under engine/target/safetensors-check/, for tools/check_safetensors.py to read with
 * the Python safetensors library on a machine that has it: {@code python3
 * tools/check_safetensors.py engine/target/safetensors-check/bf16
 * engine/target/safetensors-check/bf16.manifest.json}.
 */
class PythonInteropFilesTest {
  @Test
  void writeDirectoriesAndManifests() throws Exception {
    Path root = Path.of("target", "safetensors-check");
    Files.createDirectories(root);
    Object[][] variants = {
      {"f32", DType.F32, "1MB"}, {"bf16", DType.BF16, "5GB"}, {"f16", DType.F16, "3MB"}
    };
    try (MixtralCheckpoint src = MixtralCheckpoint.load(Fixtures.tinyMixtral())) {
      for (Object[] v : variants) {
        Path dir = root.resolve((String) v[0]);
        DType dtype = (DType) v[1];
        src.save(dir, dtype, SafetensorsWriter.parseSize((String) v[2]));
        ObjectNode manifest = new ObjectMapper().createObjectNode();
        ObjectNode tensors = manifest.putObject("tensors");
        try (MixtralCheckpoint back = MixtralCheckpoint.load(dir)) {
          for (String n : back.names()) {
            float[] x = back.floats(n);
            ObjectNode t = tensors.putObject(n);
            t.put("dtype", dtype.safetensorsName());
            ArrayNode shape = t.putArray("shape");
            for (long d : back.shape(n)) {
              shape.add(d);
            }
            double sum = 0;
            for (float f : x) {
              sum += f;
            }
            t.put("sum", sum);
            ArrayNode first = t.putArray("first");
            for (int i = 0; i < Math.min(4, x.length); i++) {
              first.add((double) x[i]);
            }
          }
          assertEquals(src.names().size(), tensors.size());
        }
        Files.writeString(root.resolve(v[0] + ".manifest.json"), manifest.toPrettyString());
      }
    }
  }
}
