package moetune.app.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.RecordComponent;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The typed RunConfig record against the field list it is read through. */
class RunConfigRecordTest {

  /** The key in camel case, as the record names its component: micro-batch -> microBatch. */
  private static String camel(String key) {
    String[] parts = key.split("-");
    StringBuilder sb = new StringBuilder(parts[0]);
    for (int i = 1; i < parts.length; i++) {
      sb.append(Character.toUpperCase(parts[i].charAt(0))).append(parts[i].substring(1));
    }
    return sb.toString();
  }

  @Test
  void everyFieldIsOneComponentOfItsTypeInFieldOrder() {
    List<String> names = new ArrayList<>();
    for (RecordComponent c : RunConfig.class.getRecordComponents()) {
      names.add(c.getName());
    }
    List<String> want = RunConfigFields.keys().stream().map(RunConfigRecordTest::camel).toList();
    assertEquals(want, names, "RunConfig's components and RunConfigFields.ALL must match");
    RunConfig d = RunConfig.defaults();
    for (RecordComponent c : RunConfig.class.getRecordComponents()) {
      Class<?> t = c.getType();
      ConfigField f = RunConfigFields.get(RunConfigFields.keys().get(names.indexOf(c.getName())));
      Class<?> expected =
          switch (f.type()) {
            case STRING, CHOICE -> String.class;
            case BOOL -> boolean.class;
            case INT -> int.class;
            case LONG -> long.class;
            case DOUBLE -> f.defaultValue() == null ? Double.class : double.class;
            case LIST, DATASETS -> List.class;
          };
      assertEquals(expected, t, f.key());
      assertEquals(f.defaultValue(), d.get(f.key()), f.key() + " default");
    }
  }

  @Test
  void typedValuesComeFromTheFileAndTheFlags(@TempDir Path tmp) throws Exception {
    Path f = tmp.resolve("run.yaml");
    Files.writeString(
        f,
        "model: m\ndatasets: [a.jsonl]\nout: o\nmicro_batch_size: 3\nlearning_rate: 2e-4\n"
            + "freeze: [router]\n");
    RunConfig c = RunConfigParser.parse(f, Map.of("max-steps", "7", "packing", "false"));
    assertEquals(3, c.microBatch());
    assertEquals(2e-4, c.lr());
    assertEquals(7L, c.maxSteps());
    assertEquals(false, c.packing());
    assertEquals(List.of("router"), c.freeze());
    assertTrue(c.freezeSpec().router());
    assertEquals(c, RunConfig.fromValues(new LinkedHashMap<>(c.values())));
  }

  @Test
  void aValuesMapWithoutAFieldIsRefusedByName() {
    Map<String, Object> v = new LinkedHashMap<>(RunConfig.defaults().values());
    v.remove("seed");
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> RunConfig.fromValues(v));
    assertEquals("run config: no value for field 'seed'", e.getMessage());
  }
}
