package moetune.engine.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import moetune.engine.hf.CheckpointException;
import moetune.engine.hf.PyJson;

/**
 * {@code model.safetensors.index.json}: {@code {"metadata": {"total_size": bytes, ...},
 * "weight_map": {tensor name: shard file name}}}, as transformers writes it for a sharded
 * checkpoint.
 */
public record SafetensorsIndex(
    Map<String, String> weightMap, long totalSize, long totalParameters) {
  public static final String FILE_NAME = "model.safetensors.index.json";

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

  public SafetensorsIndex {
    weightMap = Collections.unmodifiableMap(new LinkedHashMap<>(weightMap));
  }

  /** Reads and checks an index file; shard names must be plain file names in its directory. */
  public static SafetensorsIndex load(Path file) {
    JsonNode root;
    try {
      root = JSON.readTree(Files.readString(file, StandardCharsets.UTF_8));
    } catch (NoSuchFileException e) {
      throw new CheckpointException(file, null, "file not found", e);
    } catch (JsonProcessingException e) {
      throw new CheckpointException(file, null, "not valid JSON: " + e.getOriginalMessage(), e);
    } catch (IOException e) {
      throw new CheckpointException(file, null, "cannot read: " + e, e);
    }
    if (root == null || !root.isObject()) {
      throw new CheckpointException(file, null, "must hold a JSON object");
    }
    JsonNode wm = root.get("weight_map");
    if (wm == null || !wm.isObject()) {
      throw new CheckpointException(
          file, CheckpointException.field("weight_map"), "is missing or not an object");
    }
    Map<String, String> map = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> f : wm.properties()) {
      JsonNode v = f.getValue();
      if (!v.isTextual()
          || v.textValue().isEmpty()
          || v.textValue().contains("/")
          || v.textValue().contains("\\")
          || v.textValue().equals("..")) {
        throw new CheckpointException(
            file,
            "weight_map " + CheckpointException.tensor(f.getKey()),
            "shard " + v + " must be a file name in the same directory");
      }
      map.put(f.getKey(), v.textValue());
    }
    long total = -1;
    long params = -1;
    JsonNode meta = root.get("metadata");
    if (meta != null && meta.isObject()) {
      JsonNode ts = meta.get("total_size");
      if (ts != null && ts.canConvertToLong()) {
        total = ts.longValue();
      }
      JsonNode tp = meta.get("total_parameters");
      if (tp != null && tp.canConvertToLong()) {
        params = tp.longValue();
      }
    }
    return new SafetensorsIndex(map, total, params);
  }

  /** The index file text as transformers writes it (sorted keys, trailing newline). */
  public String toJson() {
    ObjectNode root = JSON.createObjectNode();
    ObjectNode meta = root.putObject("metadata");
    if (totalParameters >= 0) {
      meta.put("total_parameters", totalParameters);
    }
    meta.put("total_size", totalSize);
    ObjectNode wm = root.putObject("weight_map");
    weightMap.forEach(wm::put);
    return PyJson.dumps(root) + "\n";
  }
}
