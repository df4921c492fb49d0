package moetune.app.run;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import moetune.app.config.RunConfig;
import moetune.app.config.RunConfigParser;
import moetune.datasets.ChatTokenizer;
import moetune.templates.Message;
import moetune.templates.TemplateRegistry;
import moetune.templates.hf.HfChatTemplate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A run's first lines about its template (the injected system prompt, role markers the tokenizer
 * splits) and the chat_template its checkpoints carry: rendered by the model's tokenizer_config
 * after export, it gives the training prompt (with BOS, which training got from the tokenizer).
 */
class ChatTemplateNotesTest {
  static final Path TINY = Path.of(System.getProperty("moetune.fixtures"), "tiny-mixtral");

  @Test
  void chatmlOnMistralTokenizerStatesSystemPromptWarnsAndExportsTemplate(@TempDir Path tmp)
      throws Exception {
    Path data = Files.writeString(tmp.resolve("d.jsonl"), "{}\n");
    Path f = tmp.resolve("run.yaml");
    Files.writeString(f, "model: m\nout: o\ntemplate: chatml\ndatasets:\n  - " + data + "\n");
    RunConfig cfg = RunConfigParser.parse(f, Map.of());
    List<String> log = new ArrayList<>();
    try (ChatTokenizer tok = ChatTokenizer.load(TINY)) {
      List<Path> files =
          ChatTemplateNotes.apply(
              cfg,
              TemplateRegistry.builtin(),
              tok,
              List.of(TINY.resolve("tokenizer.json"), TINY.resolve("tokenizer_config.json")),
              tmp,
              log::add);
      assertTrue(
          log.get(0)
              .equals(
                  "template: chatml puts the default system prompt \"You are a helpful"
                      + " assistant.\" into every conversation that has none"),
          log.toString());
      assertTrue(
          log.stream()
              .anyMatch(
                  l ->
                      l.startsWith(
                          "warning: template chatml: the marker <|im_start|> is 7 tokens of"
                              + " this tokenizer")),
          log.toString());
      assertEquals(TINY.resolve("tokenizer.json"), files.get(0));
      Path config = tmp.resolve("tokenizer").resolve("tokenizer_config.json");
      assertEquals(config, files.get(1));
      var tc = new ObjectMapper().readTree(config.toFile());
      assertEquals("<s>", tc.get("bos_token").asText(), "the model's fields are kept");
      HfChatTemplate exported = HfChatTemplate.load(tmp.resolve("tokenizer"));
      var chat = List.of(Message.user("Hi"), Message.assistant("Hello"));
      String fastchat = TemplateRegistry.builtin().get("chatml").prompt(null, chat);
      assertEquals(
          "<s>" + fastchat, exported.apply(HfChatTemplate.messages(null, chat), null, false));
      // BOS once: the encoder tokenizes chat-template text without the post-processor
      assertEquals(
          List.of(tok.encode(fastchat).tokens()).toString(),
          List.of(tok.encode("<s>" + fastchat, false).tokens()).toString());
    }
  }
}
