package moetune.app.run;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import moetune.app.config.DatasetSpec;
import moetune.app.config.RunConfig;
import moetune.datasets.AddedTokens;
import moetune.datasets.ChatTokenizer;
import moetune.datasets.TokenizedText;
import moetune.files.AtomicFiles;
import moetune.templates.ChatFormat;
import moetune.templates.ConversationTemplate;
import moetune.templates.FastChatJinja;
import moetune.templates.RoleMarkers;
import moetune.templates.TemplateRegistry;
import moetune.templates.hf.HfChatTemplate;

/**
 * What a run tells about its chat template in its first lines, and the chat template it exports.
 *
 * <ul>
 *   <li>The default system prompt a FastChat template injects into conversations without one.
 *   <li>A warning for each role marker that the tokenizer splits into several tokens.
 *   <li>The tokenizer files every checkpoint (and so every export) carries get a {@code
 *       chat_template} reproducing the template the model was trained with: for a FastChat
 *       template, {@link FastChatJinja} (with {@code bos_token} first when the tokenizer adds BOS,
 *       as it did in training); for a {@code .jinja} file, that file. A run with {@code hf} keeps
 *       the model's own. They are written to {@code OUT/tokenizer/} (temp file + rename).
 * </ul>
 */
public final class ChatTemplateNotes {
  private ChatTemplateNotes() {}

  /**
   * Logs the notes and returns the tokenizer files to copy into checkpoints.
   *
   * @param files the model's tokenizer files
   */
  public static List<Path> apply(
      RunConfig cfg,
      TemplateRegistry templates,
      ChatTokenizer tok,
      List<Path> files,
      Path out,
      Consumer<String> log)
      throws IOException {
    Set<String> names = new LinkedHashSet<>();
    List<DatasetSpec> all = new ArrayList<>(cfg.resolvedDatasets());
    all.addAll(cfg.resolvedEvalDatasets());
    all.forEach(d -> names.add(d.template()));
    ChatFormat trained = null;
    for (String name : names) {
      ChatFormat f = templates.format(name, tok.directory());
      if (trained == null) {
        trained = f;
      }
      if (!f.systemMessage().isEmpty()) {
        log.accept(
            "template: "
                + name
                + " puts the default system prompt \""
                + f.systemMessage().replace("\n", "\\n")
                + "\" into every conversation that has none");
      }
      for (String w : markerWarnings(f, tok)) {
        log.accept("warning: " + w);
      }
    }
    if (names.size() != 1 || trained instanceof HfChatTemplate && names.contains("hf")) {
      if (names.size() > 1) {
        log.accept(
            "export: the datasets use several templates ("
                + String.join(", ", names)
                + "); the exported tokenizer keeps the model's own chat_template");
      }
      return files;
    }
    String jinja =
        trained instanceof ConversationTemplate t
            ? FastChatJinja.of(t, addsBos(tok))
            : ((HfChatTemplate) trained).source();
    log.accept(
        "export: tokenizer_config.json gets a chat_template that renders as template "
            + names.iterator().next());
    return withChatTemplate(files, jinja, out.resolve("tokenizer"));
  }

  /**
   * {@code --add-special-tokens}: the role markers of the run's templates that the tokenizer splits
   * become special tokens of a tokenizer copy in {@code OUT/tokenizer}, and the model's vocabulary
   * grows to hold them ({@link ModelSetup#withAddedTokens}).
   */
  static ModelSetup addSpecialTokens(
      RunConfig cfg, TemplateRegistry templates, ModelSetup setup, Path out, Consumer<String> log)
      throws IOException {
    try (ChatTokenizer tok = ChatTokenizer.load(setup.tokenizerDir())) {
      Set<String> missing = new LinkedHashSet<>();
      List<DatasetSpec> all = new ArrayList<>(cfg.resolvedDatasets());
      all.addAll(cfg.resolvedEvalDatasets());
      for (DatasetSpec d : all) {
        ChatFormat f = templates.format(d.template(), tok.directory());
        if (f.name().equals(HfChatTemplate.NAME)) {
          continue; // the model's own markers stay as its training split them
        }
        for (String m : RoleMarkers.of(f)) {
          if (tok.encode(m, false).length() > 1) {
            missing.add(m);
          }
        }
      }
      if (missing.isEmpty()) {
        log.accept("tokens: every role marker is already one token; nothing added");
        return setup;
      }
      AddedTokens.Result r = AddedTokens.write(tok, out.resolve("tokenizer"), List.copyOf(missing));
      int vocab = Math.max(setup.config().vocabSize, r.vocabSize());
      StringBuilder b = new StringBuilder("tokens: added");
      int k = 0;
      for (String m : missing) {
        b.append(k == 0 ? " " : ", ")
            .append(m)
            .append(" (id ")
            .append(r.ids().get(k++))
            .append(')');
      }
      log.accept(
          b
              + "; embedding and lm_head grow from "
              + setup.config().vocabSize
              + " to "
              + vocab
              + " rows, the new rows at the mean of the old ones");
      return setup.withAddedTokens(vocab, r.dir(), ModelSetup.tokenizerFiles(r.dir()));
    }
  }

  /**
   * One line for each marker of {@code f} that {@code tok} does not know as one token. None for the
   * model's own chat template: its markers are split exactly as in the model's training (Mistral's
   * [INST] never was a token).
   */
  public static List<String> markerWarnings(ChatFormat f, ChatTokenizer tok) {
    List<String> out = new ArrayList<>();
    if (f.name().equals(HfChatTemplate.NAME)) {
      return out;
    }
    for (String m : RoleMarkers.of(f)) {
      TokenizedText tt = tok.encode(m, false);
      if (tt.length() > 1) {
        out.add(
            "template "
                + f.name()
                + ": the marker "
                + m
                + " is "
                + tt.length()
                + " tokens of this tokenizer ("
                + String.join(" ", tt.tokens())
                + "), not one; the model must learn it piece by piece. Add it with"
                + " --add-special-tokens, or pick a template made for this model (--template hf"
                + " uses its own chat_template)");
      }
    }
    return out;
  }

  /** True when the tokenizer's post-processor writes BOS (as it did for FastChat prompts). */
  static boolean addsBos(ChatTokenizer tok) {
    TokenizedText tt = tok.encode("a", true);
    return tok.bosId() >= 0 && tt.length() > 0 && tt.ids()[0] == tok.bosId();
  }

  /**
   * Copies of the tokenizer files in {@code dir} with {@code chat_template} set: in
   * tokenizer_config.json (created if the model had none) and in chat_template.jinja where the
   * model has one (transformers reads that file first).
   */
  static List<Path> withChatTemplate(List<Path> files, String jinja, Path dir) throws IOException {
    Files.createDirectories(dir);
    ObjectMapper mapper = new ObjectMapper();
    ObjectNode config = mapper.createObjectNode();
    List<Path> out = new ArrayList<>();
    for (Path f : files) {
      String n = f.getFileName().toString();
      if (n.equals("tokenizer_config.json")) {
        config = (ObjectNode) mapper.readTree(f.toFile());
      } else if (n.equals("chat_template.jinja")) {
        out.add(write(dir.resolve(n), jinja));
      } else {
        out.add(f);
      }
    }
    config.put("chat_template", jinja);
    out.add(
        write(
            dir.resolve("tokenizer_config.json"),
            mapper.writerWithDefaultPrettyPrinter().writeValueAsString(config) + "\n"));
    return out;
  }

  private static Path write(Path p, String text) throws IOException {
    AtomicFiles.writeString(p, text);
    return p;
  }
}
