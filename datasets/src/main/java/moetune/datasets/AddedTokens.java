package moetune.datasets;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * A copy of a model's tokenizer with new special tokens ({@code --add-special-tokens}): each is
 * appended to tokenizer.json's {@code added_tokens} (special, not normalized, so it is matched
 * whole before the model splits the text) and to tokenizer_config.json's {@code
 * added_tokens_decoder}, with ids after the largest existing one, as transformers' {@code
 * add_special_tokens} does. The embedding and LM-head rows for them are grown by the run.
 * tokenizer.model (SentencePiece) is not copied: it cannot hold the new tokens, and transformers
 * reads tokenizer.json first.
 */
public final class AddedTokens {
  private AddedTokens() {}

  /** The new tokenizer directory and the ids given to the tokens, in order. */
  public record Result(Path dir, List<Integer> ids, int vocabSize) {}

  static final List<String> COPIED = List.of("special_tokens_map.json", "chat_template.jinja");

  /**
   * Writes {@code to}/tokenizer.json and tokenizer_config.json (and copies the small tokenizer
   * files) with {@code tokens} added; tokens the tokenizer already has are an error.
   */
  public static Result write(ChatTokenizer from, Path to, List<String> tokens) throws IOException {
    Path dir = from.directory();
    ObjectNode tj = (ObjectNode) JsonLines.MAPPER.readTree(dir.resolve("tokenizer.json").toFile());
    ArrayNode added =
        tj.has("added_tokens") ? (ArrayNode) tj.get("added_tokens") : tj.putArray("added_tokens");
    int next = from.vocabSize();
    Path configFile = dir.resolve("tokenizer_config.json");
    ObjectNode tc =
        Files.isRegularFile(configFile)
            ? (ObjectNode) JsonLines.MAPPER.readTree(configFile.toFile())
            : JsonLines.MAPPER.createObjectNode();
    ObjectNode decoder =
        tc.has("added_tokens_decoder")
            ? (ObjectNode) tc.get("added_tokens_decoder")
            : tc.putObject("added_tokens_decoder");
    List<Integer> ids = new ArrayList<>();
    for (String t : tokens) {
      for (JsonNode a : added) {
        if (a.path("content").asText().equals(t)) {
          throw new DatasetException(
              dir.resolve("tokenizer.json")
                  + ": already has the token "
                  + t
                  + " (id "
                  + a.path("id").asInt()
                  + ")");
        }
      }
      int id = next++;
      ObjectNode a = added.addObject();
      a.put("id", id)
          .put("content", t)
          .put("single_word", false)
          .put("lstrip", false)
          .put("rstrip", false)
          .put("normalized", false)
          .put("special", true);
      ObjectNode d = decoder.putObject(String.valueOf(id));
      d.put("content", t)
          .put("lstrip", false)
          .put("normalized", false)
          .put("rstrip", false)
          .put("single_word", false)
          .put("special", true);
      ids.add(id);
    }
    Files.createDirectories(to);
    write(to.resolve("tokenizer.json"), JsonLines.MAPPER.writeValueAsString(tj));
    write(
        to.resolve("tokenizer_config.json"),
        JsonLines.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(tc) + "\n");
    for (String n : COPIED) {
      if (Files.isRegularFile(dir.resolve(n))) {
        Files.copy(dir.resolve(n), to.resolve(n), StandardCopyOption.REPLACE_EXISTING);
      }
    }
    return new Result(to, ids, next);
  }

  private static void write(Path p, String text) throws IOException {
    Path tmp = p.resolveSibling(p.getFileName() + ".tmp");
    Files.writeString(tmp, text, StandardCharsets.UTF_8);
    Files.move(tmp, p, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }
}
