package moetune.templates;

import java.nio.file.Path;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import moetune.templates.hf.HfChatTemplate;

/**
 * Templates by name: the built-ins, any read from user template files, and {@code hf}, the model's
 * own chat template (or a user's {@code .jinja} file).
 */
public final class TemplateRegistry {
  private final Map<String, ConversationTemplate> byName;
  private final Path jinjaFile; // a user's chat template for "hf", or null: the model's

  /** axolotl's name ({@code chat_template: tokenizer_default}) for what moetune calls hf. */
  public static final String TOKENIZER_DEFAULT = "tokenizer_default";

  private TemplateRegistry(Map<String, ConversationTemplate> byName, Path jinjaFile) {
    this.byName = byName;
    this.jinjaFile = jinjaFile;
  }

  /** The built-in templates only. */
  public static TemplateRegistry builtin() {
    return new TemplateRegistry(BuiltinTemplates.all(), null);
  }

  /**
   * A registry with this one's templates and those of {@code file}: a JSON file of FastChat
   * templates (see {@link TemplateFile}; a name already registered is an error, as in FastChat's
   * {@code register_conv_template}), or a Jinja chat template ({@code *.jinja}) that the template
   * {@code hf} then renders instead of the model's own.
   */
  public TemplateRegistry with(Path file) {
    if (file.getFileName().toString().endsWith(".jinja")) {
      if (!java.nio.file.Files.isRegularFile(file)) {
        throw new TemplateException(file + ": not found; give an existing .jinja chat template");
      }
      return new TemplateRegistry(byName, file);
    }
    Map<String, ConversationTemplate> m = new LinkedHashMap<>(byName);
    for (ConversationTemplate t : TemplateFile.read(file)) {
      if (m.containsKey(t.name())) {
        throw new TemplateException(
            file + ": template '" + t.name() + "' is already registered; give it another name");
      }
      if (t.name().equals(HfChatTemplate.NAME)) {
        throw new TemplateException(
            file + ": the name 'hf' is the model's own chat template; give yours another name");
      }
      m.put(t.name(), t);
    }
    return new TemplateRegistry(m, jinjaFile);
  }

  /**
   * The format of this name: {@code hf} is the chat template of {@code modelDir} (or this
   * registry's .jinja file, with {@code modelDir}'s special tokens); other names are FastChat
   * templates.
   *
   * @param modelDir the model (tokenizer) directory; may be null where no {@code hf} is asked for
   */
  public ChatFormat format(String name, Path modelDir) {
    if (name.endsWith(".jinja")) {
      Path file = Path.of(name);
      if (!java.nio.file.Files.isRegularFile(file)) {
        throw new TemplateException(file + ": not found; give an existing .jinja chat template");
      }
      return HfChatTemplate.fromFile(file, modelDir);
    }
    if (HfChatTemplate.NAME.equals(name) || TOKENIZER_DEFAULT.equals(name)) {
      if (jinjaFile != null) {
        return HfChatTemplate.fromFile(jinjaFile, modelDir);
      }
      if (modelDir == null) {
        throw new TemplateException(
            "template 'hf' renders the model's own chat template: give the model directory"
                + " (--model), or a .jinja file with --template-file");
      }
      return HfChatTemplate.load(modelDir);
    }
    return get(name);
  }

  /** Every name {@link #format} accepts: {@code hf} and the FastChat templates. */
  public List<String> names() {
    return Stream.concat(Stream.of(HfChatTemplate.NAME), byName.keySet().stream()).toList();
  }

  /** The template of this name; the error lists the known names. */
  public ConversationTemplate get(String name) {
    ConversationTemplate t = byName.get(name);
    if (t == null) {
      throw new TemplateException(
          "unknown template '" + name + "'; known templates: " + String.join(", ", names()));
    }
    return t;
  }

  /** True for the FastChat templates, {@code hf} and a path to a {@code .jinja} file. */
  public boolean contains(String name) {
    return HfChatTemplate.NAME.equals(name)
        || TOKENIZER_DEFAULT.equals(name)
        || byName.containsKey(name)
        || (name.endsWith(".jinja") && java.nio.file.Files.isRegularFile(Path.of(name)));
  }

  /** Every template, built-ins first, in registration order. */
  public Collection<ConversationTemplate> all() {
    return Collections.unmodifiableCollection(byName.values());
  }
}
