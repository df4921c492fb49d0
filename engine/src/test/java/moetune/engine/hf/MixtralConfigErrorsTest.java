package moetune.engine.hf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** config.json variants: older forms load, unsupported values are refused by name. */
class MixtralConfigErrorsTest {
  private static final Path FILE = Path.of("some/model/config.json");

  private static String fixtureJson() throws Exception {
    return Files.readString(MixtralConfigTest.fixture().resolve("config.json"));
  }

  /** The fixture config with one top-level field's JSON text replaced (or added). */
  private static String with(String key, String valueJson) throws Exception {
    com.fasterxml.jackson.databind.ObjectMapper m =
        new com.fasterxml.jackson.databind.ObjectMapper();
    var o = (com.fasterxml.jackson.databind.node.ObjectNode) m.readTree(fixtureJson());
    if (valueJson == null) {
      o.remove(key);
    } else {
      o.set(key, m.readTree(valueJson));
    }
    return m.writeValueAsString(o);
  }

  private static void refused(String json, String field, String... mention) {
    CheckpointException e =
        assertThrows(CheckpointException.class, () -> MixtralConfig.parse(json, FILE));
    String m = e.getMessage();
    System.out.println("expected error: " + m);
    assertFalse(m.contains("\n"), m);
    assertTrue(m.startsWith(FILE + ": field '" + field + "': "), m);
    for (String s : mention) {
      assertTrue(m.contains(s), "should mention '" + s + "': " + m);
    }
  }

  @ParameterizedTest(name = "{0} = {1}")
  @CsvSource(
      delimiter = '|',
      value = {
        "model_type | \"llama\" | model_type | llama",
        "hidden_act | \"gelu\" | hidden_act | gelu",
        "num_experts_per_tok | 5 | num_experts_per_tok | more than num_local_experts 4",
        "num_key_value_heads | 3 | num_key_value_heads | does not divide",
        "head_dim | 7 | head_dim | even",
        "hidden_size | \"32\" | hidden_size | must be an integer",
        "vocab_size | 0 | vocab_size | positive",
        "rms_norm_eps | -1 | rms_norm_eps | positive",
        "tie_word_embeddings | 1 | tie_word_embeddings | true or false",
        "attention_dropout | 0.1 | attention_dropout | dropout",
        "router_jitter_noise | 1.5 | router_jitter_noise | [0, 1)",
        "sliding_window | 0 | sliding_window | positive",
        "eos_token_id | \"x\" | eos_token_id | list of integers",
        "bos_token_id | 40000 | bos_token_id | vocabulary",
        "rope_scaling | {\"type\": \"linear\", \"factor\": 2.0} | rope_scaling | linear",
        "rope_scaling | {\"rope_type\": \"yarn\", \"factor\": 4.0} | rope_scaling | yarn",
        "rope_parameters | {\"rope_theta\": 10000.0, \"rope_type\": \"llama3\"} |"
            + " rope_parameters.rope_type | llama3",
        "rope_parameters | {\"rope_theta\": 10000.0, \"rope_type\": \"default\", \"factor\": 2.0} |"
            + " rope_parameters.factor | default",
        "rope_parameters | [1] | rope_parameters | object",
        "quantization_config | {\"quant_method\": \"fp8\"} | quantization_config | quantized",
        "rope_theta | 10000.0 | rope_theta | 1000000.0",
      })
  void refusedByName(String key, String value, String field, String mention) throws Exception {
    refused(with(key, value), field, mention);
  }

  @Test
  void invalidJsonNamesTheFile() {
    CheckpointException e =
        assertThrows(CheckpointException.class, () -> MixtralConfig.parse("{\"a\": ", FILE));
    assertTrue(e.getMessage().startsWith(FILE + ": not valid JSON"), e.getMessage());
  }

  @Test
  void olderFormsLoad() throws Exception {
    // rope_theta at the top level, rope_scaling null, torch_dtype, no head_dim, eos as a list
    String old = with("rope_parameters", null);
    old =
        old.replace(
            "{",
            "{\"rope_theta\": 500000.0, \"rope_scaling\": null, \"torch_dtype\": \"bfloat16\", ");
    old = old.replace("\"dtype\":\"float32\",", "");
    String json =
        new com.fasterxml.jackson.databind.ObjectMapper()
            .writeValueAsString(new com.fasterxml.jackson.databind.ObjectMapper().readTree(old));
    json =
        json.replace("\"eos_token_id\":2", "\"eos_token_id\":[2,5]")
            .replace("\"head_dim\":null,", "");
    MixtralConfig c = MixtralConfig.parse(json, FILE);
    assertEquals(500000.0, c.ropeTheta);
    assertEquals("bfloat16", c.dtype);
    assertEquals(List.of(2, 5), c.eosTokenIds);
    assertNull(c.headDimField);
    assertEquals(8, c.headDim());
    String written = c.toJson();
    assertTrue(
        written.contains(
            "\"rope_parameters\": {\n"
                + "    \"rope_theta\": 500000.0,\n"
                + "    \"rope_type\": \"default\"\n"
                + "  },"),
        written);
    assertTrue(written.contains("\"dtype\": \"bfloat16\""), written);
    assertFalse(written.contains("torch_dtype") || written.contains("rope_scaling"), written);
    assertTrue(written.contains("\"eos_token_id\": [\n    2,\n    5\n  ],"), written);
    // the written form parses to the same values
    MixtralConfig again = MixtralConfig.parse(written, FILE);
    assertEquals(written, again.toJson());
  }

  @Test
  void defaultsFollowTransformers() throws Exception {
    MixtralConfig c = MixtralConfig.parse("{\"model_type\": \"mixtral\"}", FILE);
    assertEquals(32000, c.vocabSize);
    assertEquals(4096, c.hiddenSize);
    assertEquals(14336, c.intermediateSize);
    assertEquals(32, c.numHiddenLayers);
    assertEquals(32, c.numAttentionHeads);
    assertEquals(8, c.numKeyValueHeads);
    assertEquals(128, c.headDim());
    assertEquals(4096 * 32, c.maxPositionEmbeddings);
    assertEquals(1e6, c.ropeTheta);
    assertEquals(1e-5, c.rmsNormEps);
    assertEquals(8, c.numLocalExperts);
    assertEquals(2, c.numExpertsPerTok);
    assertEquals(0.001, c.routerAuxLossCoef);
    assertEquals(1, c.bosTokenId);
    assertEquals(List.of(2), c.eosTokenIds);
    assertNull(c.padTokenId);
    assertNull(c.slidingWindow);
    assertFalse(c.tieWordEmbeddings);
    // num_key_value_heads null means one kv head per head, as transformers does
    assertEquals(32, MixtralConfig.parse("{\"num_key_value_heads\": null}", FILE).numKeyValueHeads);
    // the alias num_experts sets num_local_experts
    assertEquals(6, MixtralConfig.parse("{\"num_experts\": 6}", FILE).numLocalExperts);
  }

  @Test
  void unknownFieldsRoundTrip() throws Exception {
    String json = with("custom_note", "{\"b\": [1, 2.5, \"\u00e9\"], \"a\": null}");
    json = json.replace("\"sliding_window\":null", "\"sliding_window\":4096");
    MixtralConfig c = MixtralConfig.parse(json, FILE);
    assertEquals(4096, c.slidingWindow);
    String out = c.toJson();
    assertTrue(
        out.contains(
            "\"custom_note\": {\n"
                + "    \"a\": null,\n"
                + "    \"b\": [\n"
                + "      1,\n"
                + "      2.5,\n"
                + "      \"\\u00e9\"\n"
                + "    ]\n"
                + "  },"),
        out);
    assertEquals(out, MixtralConfig.parse(out, FILE).toJson());
  }

  @Test
  void pythonFloatRepr() {
    String[][] cases = {
      {"1e-05", "1.0E-5"},
      {"0.0001", "1.0E-4"},
      {"1000000.0", "1000000.0"},
      {"0.02", "0.02"},
      {"1e+16", "1.0E16"},
      {"1000000000000000.0", "1.0E15"},
      {"-2.5e-07", "-2.5E-7"},
      {"0.1", "0.1"},
      {"123.456", "123.456"},
      {"0.0", "0.0"},
      {"1.7976931348623157e+308", "1.7976931348623157E308"},
    };
    for (String[] c : cases) {
      assertEquals(c[0], moetune.engine.hf.PyJson.floatRepr(Double.parseDouble(c[1])), c[1]);
    }
  }
}
