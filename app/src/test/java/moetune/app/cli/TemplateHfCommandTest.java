package moetune.app.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code template render --template hf --model DIR}: the model's chat_template, rendered as
 * transformers renders it (expected texts from tools/make_hf_template_renderings.py), and a
 * template's raise_exception as one line with a non-zero exit and no output file.
 */
class TemplateHfCommandTest {
  static final String QWEN2 =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
          + "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
          + "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' +"
          + " '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
          + "{% endif %}";
  static final String GEMMA =
      "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role"
          + " not supported') }}{% endif %}{% for message in messages %}{{ '<start_of_turn>' +"
          + " message['role'] + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
          + "{% endfor %}";

  @TempDir Path dir;

  private Path model(String template) throws Exception {
    Path m = Files.createDirectories(dir.resolve("model"));
    ObjectMapper mapper = new ObjectMapper();
    var tc = mapper.createObjectNode().put("bos_token", "<bos>").put("eos_token", "<eos>");
    tc.put("chat_template", template);
    Files.writeString(m.resolve("tokenizer_config.json"), mapper.writeValueAsString(tc));
    return m;
  }

  @Test
  void rendersTheModelsChatTemplateWithGenerationPrompt() throws Exception {
    Path m = model(QWEN2);
    Path in =
        Files.writeString(
            dir.resolve("in.jsonl"),
            "{\"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}, {\"role\":"
                + " \"assistant\", \"content\": \"Hi\"}, {\"role\": \"user\", \"content\":"
                + " \"More?\"}, {\"role\": \"assistant\", \"content\": null}]}\n");
    Path out = dir.resolve("out.jsonl");
    CliRunner r =
        CliRunner.run(
            "template",
            "render",
            "--template",
            "hf",
            "--model",
            m.toString(),
            "--input",
            in.toString(),
            "--output",
            out.toString());
    assertEquals(0, r.code(), r.err());
    List<String> lines = Files.readAllLines(out);
    assertEquals(
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello"
            + "<|im_end|>\n<|im_start|>assistant\nHi<|im_end|>\n<|im_start|>user\nMore?"
            + "<|im_end|>\n<|im_start|>assistant\n",
        new ObjectMapper().readTree(lines.get(0)).get("prompt").asText());
  }

  @Test
  void raiseExceptionIsOneLineAndNothingIsWritten() throws Exception {
    Path m = model(GEMMA);
    Path in =
        Files.writeString(
            dir.resolve("in.jsonl"),
            "{\"system\": \"Be brief.\", \"messages\": [{\"role\": \"user\", \"content\":"
                + " \"Hi\"}]}\n");
    Path out = dir.resolve("out.jsonl");
    CliRunner r =
        CliRunner.run(
            "template",
            "render",
            "--template",
            "hf",
            "--model",
            m.toString(),
            "--input",
            in.toString(),
            "--output",
            out.toString());
    assertEquals(2, r.code(), r.err());
    assertEquals(1, r.err().strip().lines().count(), r.err());
    assertTrue(r.err().contains("System role not supported"), r.err());
    assertTrue(r.err().contains("in.jsonl:1"), r.err());
    assertFalse(Files.exists(out));
  }
}
