package moetune.templates;

import java.nio.file.Path;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/** Templates by name: the built-ins, plus any read from user template files. */
public final class TemplateRegistry {
  private final Map<String, ConversationTemplate> byName;

  private TemplateRegistry(Map<String, ConversationTemplate> byName) {
    this.byName = byName;
  }

  /** The built-in templates only. */
  public static TemplateRegistry builtin() {
    return new TemplateRegistry(BuiltinTemplates.all());
  }

  /**
   * A registry with this one's templates and those of {@code file} (see {@link TemplateFile}). A
   * name already registered is an error, as in FastChat's {@code register_conv_template}.
   */
  public TemplateRegistry with(Path file) {
    Map<String, ConversationTemplate> m = new LinkedHashMap<>(byName);
    for (ConversationTemplate t : TemplateFile.read(file)) {
      if (m.containsKey(t.name())) {
        throw new TemplateException(
            file + ": template '" + t.name() + "' is already registered; give it another name");
      }
      m.put(t.name(), t);
    }
    return new TemplateRegistry(m);
  }

  /** The template of this name; the error lists the known names. */
  public ConversationTemplate get(String name) {
    ConversationTemplate t = byName.get(name);
    if (t == null) {
      throw new TemplateException(
          "unknown template '"
              + name
              + "'; known templates: "
              + String.join(", ", byName.keySet()));
    }
    return t;
  }

  public boolean contains(String name) {
    return byName.containsKey(name);
  }

  /** Every template, built-ins first, in registration order. */
  public Collection<ConversationTemplate> all() {
    return Collections.unmodifiableCollection(byName.values());
  }
}
