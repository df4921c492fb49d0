package moetune.engine.hf;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A HuggingFace {@code generation_config.json}: moetune reads the special token ids (bos, eos, pad;
 * eos may be an int or a list) and keeps every other field unchanged, so writing it back gives the
 * file transformers wrote.
 */
public final class GenerationConfig {
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

  private final ObjectNode fields; // the whole file; bos/eos/pad are read from it

  private GenerationConfig(ObjectNode fields) {
    this.fields = fields;
  }

  /** What transformers writes for a model without a generation config of its own. */
  public static GenerationConfig fromModelConfig(MixtralConfig c) {
    ObjectNode o = JSON.createObjectNode();
    o.put("_from_model_config", true);
    putId(o, "bos_token_id", c.bosTokenId);
    if (c.eosIsList) {
      ArrayNode a = o.putArray("eos_token_id");
      c.eosTokenIds.forEach(a::add);
    } else {
      putId(o, "eos_token_id", c.eosTokenIds.isEmpty() ? null : c.eosTokenIds.get(0));
    }
    if (c.padTokenId != null) {
      o.put("pad_token_id", c.padTokenId);
    }
    o.put("output_attentions", false);
    o.put("output_hidden_states", false);
    o.put("transformers_version", c.transformersVersion == null ? "5.17.0" : c.transformersVersion);
    o.put("use_cache", c.useCache);
    return new GenerationConfig(o);
  }

  private static void putId(ObjectNode o, String key, Integer v) {
    if (v != null) {
      o.put(key, v);
    }
  }

  /** Reads {@code dir/generation_config.json} or the given file. */
  public static GenerationConfig load(Path file) {
    if (Files.isDirectory(file)) {
      file = file.resolve("generation_config.json");
    }
    try {
      return parse(Files.readString(file, StandardCharsets.UTF_8), file);
    } catch (NoSuchFileException e) {
      throw new CheckpointException(file, null, "file not found", e);
    } catch (IOException e) {
      throw new CheckpointException(file, null, "cannot read: " + e, e);
    }
  }

  public static GenerationConfig parse(String json, Path file) {
    JsonNode root;
    try {
      root = JSON.readTree(json);
    } catch (JsonProcessingException e) {
      throw new CheckpointException(file, null, "not valid JSON: " + e.getOriginalMessage(), e);
    }
    if (root == null || !root.isObject()) {
      throw new CheckpointException(file, null, "generation_config.json must hold a JSON object");
    }
    GenerationConfig g = new GenerationConfig((ObjectNode) root);
    g.id("bos_token_id", file);
    g.id("pad_token_id", file);
    g.eosTokenIds(file);
    return g;
  }

  public Integer bosTokenId() {
    return id("bos_token_id", null);
  }

  public Integer padTokenId() {
    return id("pad_token_id", null);
  }

  /** eos_token_id as a list: empty when absent or null, one entry for an int. */
  public List<Integer> eosTokenIds() {
    return eosTokenIds(null);
  }

  /** A copy of every field. */
  public ObjectNode fields() {
    return fields.deepCopy();
  }

  /** generation_config.json text as transformers writes it (sorted keys, trailing newline). */
  public String toJson() {
    return PyJson.dumps(fields) + "\n";
  }

  private Integer id(String key, Path file) {
    JsonNode v = fields.get(key);
    if (v == null || v.isNull()) {
      return null;
    }
    if (!v.isIntegralNumber() || !v.canConvertToInt() || v.intValue() < 0) {
      throw new CheckpointException(
          file, CheckpointException.field(key), "must be a non-negative integer or null, got " + v);
    }
    return v.intValue();
  }

  private List<Integer> eosTokenIds(Path file) {
    JsonNode v = fields.get("eos_token_id");
    List<Integer> out = new ArrayList<>();
    if (v == null || v.isNull()) {
      return out;
    }
    if (v.isArray()) {
      for (JsonNode x : v) {
        if (!x.isIntegralNumber() || !x.canConvertToInt()) {
          throw new CheckpointException(
              file,
              CheckpointException.field("eos_token_id"),
              "must be an integer or a list of integers, got " + v);
        }
        out.add(x.intValue());
      }
      return out;
    }
    return List.of(id("eos_token_id", file));
  }
}
