package moetune.templates.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import moetune.templates.ChatFormat;
import moetune.templates.Message;
import moetune.templates.RenderedPrompt;
import moetune.templates.Role;
import moetune.templates.Span;
import moetune.templates.SpanKind;
import moetune.templates.TemplateException;

/**
 * A model's own Jinja {@code chat_template} (the template named {@code hf}), rendered exactly as
 * transformers' {@code apply_chat_template(messages, tools=..., add_generation_prompt=...,
 * tokenize=False)}: the same environment ({@link TransformersJinja}) and the same variables ({@code
 * messages}, {@code tools}, {@code add_generation_prompt} and the tokenizer's special tokens {@code
 * bos_token}, {@code eos_token}, ...).
 *
 * <p><b>Which text is trained.</b> Where the template marks assistant text with {@code {%
 * generation %}} blocks, those characters are {@link SpanKind#ASSISTANT} (transformers' {@code
 * return_assistant_tokens_mask}). Otherwise the conversation is rendered by growing prefixes: for
 * the i-th assistant reply, the text of messages {@code [0, i)} with the generation prompt and the
 * text of messages {@code [0, i]} without it; what the second adds to the first is the reply as the
 * model must produce it. Its content is {@link SpanKind#ASSISTANT}, what follows up to the last
 * non-blank character ({@code </s>}, {@code <|im_end|>}, {@code <|eot_id|>}) is {@link
 * SpanKind#END_OF_REPLY}, and trailing blanks are layout. Each prefix must begin the whole
 * rendering; a template that rewrites earlier turns (Mistral v0.3 puts the system message into the
 * last user turn) is refused for training with a line that says so.
 */
public final class HfChatTemplate implements ChatFormat {
  /** The name of this template among the FastChat ones. */
  public static final String NAME = "hf";

  private static final TransformersJinja JINJA = new TransformersJinja();
  private static final ObjectMapper MAPPER = new ObjectMapper();
  private static final Pattern GENERATION_TAG = Pattern.compile("\\{%-?\\s*generation\\s*-?%\\}");
  private static final List<String> SPECIAL_KEYS =
      List.of("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token");

  private final String name;
  private final String source;
  private final String origin;
  private final Map<String, Object> specialTokens;
  private final boolean tracksGeneration;

  /**
   * @param source the Jinja text
   * @param specialTokens the template variables transformers passes from the tokenizer ({@code
   *     bos_token}, ...); absent ones are undefined in the template
   * @param origin the file it came from, for messages
   */
  public HfChatTemplate(String source, Map<String, Object> specialTokens, String origin) {
    this(NAME, source, specialTokens, origin);
  }

  private HfChatTemplate(
      String name, String source, Map<String, Object> specialTokens, String origin) {
    this.name = name;
    this.source = source;
    this.origin = origin;
    this.specialTokens = Map.copyOf(specialTokens);
    this.tracksGeneration = GENERATION_TAG.matcher(source).find();
  }

  /**
   * The chat template of a model directory: {@code chat_template.jinja} if present (as transformers
   * v5 saves it), else {@code tokenizer_config.json}'s {@code chat_template} (a string, or a list
   * of named templates of which the one named {@code default} is taken).
   */
  public static HfChatTemplate load(Path modelDir) {
    Path config = modelDir.resolve("tokenizer_config.json");
    JsonNode tc = Files.isRegularFile(config) ? readJson(config) : MAPPER.createObjectNode();
    Map<String, Object> tokens = specialTokens(tc);
    Path jinja = modelDir.resolve("chat_template.jinja");
    if (Files.isRegularFile(jinja)) {
      return new HfChatTemplate(readText(jinja), tokens, jinja.toString());
    }
    JsonNode t = tc.get("chat_template");
    if (t != null && t.isArray()) {
      for (JsonNode named : t) {
        if ("default".equals(named.path("name").asText())) {
          t = named.get("template");
          break;
        }
      }
    }
    if (t == null || !t.isTextual()) {
      throw new TemplateException(
          config
              + ": no chat_template (and no chat_template.jinja beside it); the template 'hf'"
              + " needs the model's own chat template: pick a FastChat template instead, e.g."
              + " --template chatml, or give a .jinja file with --template-file");
    }
    return new HfChatTemplate(t.asText(), tokens, config.toString());
  }

  /** A user's {@code .jinja} file, with the special tokens of {@code modelDir} (may be null). */
  public static HfChatTemplate fromFile(Path jinjaFile, Path modelDir) {
    Map<String, Object> tokens = Map.of();
    if (modelDir != null && Files.isRegularFile(modelDir.resolve("tokenizer_config.json"))) {
      tokens = specialTokens(readJson(modelDir.resolve("tokenizer_config.json")));
    }
    return new HfChatTemplate(
        jinjaFile.toString(), readText(jinjaFile), tokens, jinjaFile.toString());
  }

  /** The special-token variables of a tokenizer_config.json (strings or {"content": ...}). */
  static Map<String, Object> specialTokens(JsonNode tc) {
    Map<String, Object> m = new LinkedHashMap<>();
    for (String k : SPECIAL_KEYS) {
      JsonNode v = tc.get(k);
      if (v != null && v.isObject()) {
        v = v.get("content");
      }
      if (v != null && v.isTextual()) {
        m.put(k, v.asText());
      }
    }
    JsonNode extra = tc.get("additional_special_tokens");
    if (extra != null && extra.isArray()) {
      List<String> l = new ArrayList<>();
      extra.forEach(e -> l.add(e.isObject() ? e.path("content").asText() : e.asText()));
      m.put("additional_special_tokens", l);
    }
    return m;
  }

  /** {@code hf} for the model's own template, the file's path for a user's .jinja file. */
  @Override
  public String name() {
    return name;
  }

  /** The Jinja text. */
  public String source() {
    return source;
  }

  /** Where the template was read from. */
  public String origin() {
    return origin;
  }

  /** True if the template marks assistant text with {@code {% generation %}} blocks. */
  public boolean tracksGeneration() {
    return tracksGeneration;
  }

  @Override
  public String stopStr() {
    return null;
  }

  /** Any default system prompt is the template's own business (Qwen2 writes one). */
  @Override
  public String systemMessage() {
    return "";
  }

  @Override
  public boolean textHasSpecialTokens() {
    return true;
  }

  /**
   * {@code apply_chat_template(messages, tools=tools, add_generation_prompt=..., tokenize=False)}.
   *
   * @param messages JSON-like maps ({@code role}, {@code content}, {@code tool_calls}, ...)
   * @param tools tool schemas, or null
   * @throws TemplateException naming the origin when the template raises or cannot render
   */
  public String apply(
      List<Map<String, Object>> messages, List<Object> tools, boolean addGenerationPrompt) {
    return renderTracked(messages, tools, addGenerationPrompt).text();
  }

  TransformersJinja.Result renderTracked(
      List<Map<String, Object>> messages, List<Object> tools, boolean addGenerationPrompt) {
    Map<String, Object> ctx = new LinkedHashMap<>(specialTokens);
    ctx.put("messages", messages);
    ctx.put("tools", tools);
    ctx.put("documents", null);
    ctx.put("add_generation_prompt", addGenerationPrompt);
    try {
      return JINJA.render(source, ctx, origin);
    } catch (TransformersJinja.TemplateRaised e) {
      throw new TemplateException(
          origin + ": the chat_template refuses this conversation: " + e.getMessage());
    }
  }

  /** The conversation as the maps a template sees: the system message first, if any. */
  public static List<Map<String, Object>> messages(String system, List<Message> messages) {
    List<Map<String, Object>> out = new ArrayList<>();
    if (system != null) {
      out.add(message("system", system));
    }
    for (Message m : messages) {
      out.add(message(m.role() == Role.USER ? "user" : "assistant", m.content()));
    }
    return out;
  }

  private static Map<String, Object> message(String role, String content) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("role", role);
    m.put("content", content);
    return m;
  }

  @Override
  public RenderedPrompt render(String system, List<Message> messages) {
    for (Message m : messages) {
      refuseMarkers(m.content());
    }
    refuseMarkers(system);
    boolean open = !messages.isEmpty() && messages.getLast().content() == null;
    List<Message> turns = open ? messages.subList(0, messages.size() - 1) : messages;
    for (int i = 0; i < turns.size(); i++) {
      if (turns.get(i).content() == null) {
        throw new TemplateException(
            origin + ": message " + i + " has no content; only the last may be open (null)");
      }
    }
    int offset = system == null ? 0 : 1;
    List<Map<String, Object>> maps = messages(system, turns);
    TransformersJinja.Result whole = renderTracked(maps, null, open);
    String text = whole.text();
    SpanKind[] kind = new SpanKind[text.length()];
    int[] owner = new int[text.length()];
    java.util.Arrays.fill(kind, SpanKind.TEMPLATE);
    java.util.Arrays.fill(owner, -1);
    if (tracksGeneration) {
      markGenerationBlocks(whole.generation(), turns, kind, owner);
    } else {
      for (int i = 0; i < turns.size(); i++) {
        if (turns.get(i).role() == Role.ASSISTANT) {
          markReply(maps, offset, i, turns.get(i).content(), text, kind, owner);
        }
      }
    }
    markContent(system, turns, text, kind, owner);
    return new RenderedPrompt(text, spans(kind, owner));
  }

  /** The k-th generation block belongs to the k-th assistant turn. */
  private static void markGenerationBlocks(
      List<int[]> ranges, List<Message> turns, SpanKind[] kind, int[] owner) {
    int k = 0;
    for (int i = 0; i < turns.size() && k < ranges.size(); i++) {
      if (turns.get(i).role() == Role.ASSISTANT) {
        int[] r = ranges.get(k++);
        for (int c = r[0]; c < r[1]; c++) {
          kind[c] = SpanKind.ASSISTANT;
          owner[c] = i;
        }
      }
    }
    for (; k < ranges.size(); k++) { // blocks beyond the turns: still assistant text
      int[] r = ranges.get(k);
      for (int c = r[0]; c < r[1]; c++) {
        kind[c] = SpanKind.ASSISTANT;
      }
    }
  }

  /** Growing prefixes: the text that assistant turn {@code i} adds (see the class comment). */
  private void markReply(
      List<Map<String, Object>> maps,
      int offset,
      int i,
      String content,
      String text,
      SpanKind[] kind,
      int[] owner) {
    String before = renderTracked(maps.subList(0, offset + i), null, true).text();
    String after = renderTracked(maps.subList(0, offset + i + 1), null, false).text();
    if (!after.startsWith(before) || !text.startsWith(after)) {
      throw new TemplateException(
          origin
              + ": the chat_template renders message "
              + i
              + " differently once later messages follow, so its reply cannot be located by"
              + " rendering prefixes; train with a template that marks replies with {%"
              + " generation %} blocks, or a FastChat template");
    }
    int start = before.length();
    int end = after.length();
    int contentEnd = start;
    String[] candidates = {content, PythonMethods.strip(content, null, true, true)};
    for (String cand : candidates) {
      int at = cand.isEmpty() ? -1 : after.indexOf(cand, start);
      if (at >= 0) {
        contentEnd = at + cand.length();
        break;
      }
    }
    int lastNonBlank = end;
    while (lastNonBlank > start && PythonMethods.isSpace(after.charAt(lastNonBlank - 1))) {
      lastNonBlank--;
    }
    if (contentEnd == start) { // content not found verbatim: the whole reply is assistant text
      contentEnd = lastNonBlank;
    }
    for (int c = start; c < lastNonBlank; c++) {
      kind[c] = c < contentEnd ? SpanKind.ASSISTANT : SpanKind.END_OF_REPLY;
      owner[c] = i;
    }
  }

  /** System and user contents, found in order where the text still counts as layout. */
  private static void markContent(
      String system, List<Message> turns, String text, SpanKind[] kind, int[] owner) {
    int cursor = 0;
    if (system != null && !system.isEmpty()) {
      cursor = mark(text, system, cursor, SpanKind.SYSTEM, -1, kind, owner);
    }
    for (int i = 0; i < turns.size(); i++) {
      Message m = turns.get(i);
      if (m.role() == Role.USER && !m.content().isEmpty()) {
        cursor = mark(text, m.content(), cursor, SpanKind.USER, i, kind, owner);
      } else if (m.role() == Role.ASSISTANT) {
        for (int c = cursor; c < text.length(); c++) {
          if (owner[c] == i) {
            cursor = c;
            break;
          }
        }
      }
    }
  }

  private static int mark(
      String text, String s, int from, SpanKind k, int msg, SpanKind[] kind, int[] owner) {
    int at = text.indexOf(s, from);
    if (at < 0) {
      return from;
    }
    for (int c = at; c < at + s.length(); c++) {
      if (kind[c] == SpanKind.TEMPLATE) {
        kind[c] = k;
        owner[c] = msg;
      }
    }
    return at + s.length();
  }

  private static List<Span> spans(SpanKind[] kind, int[] owner) {
    List<Span> spans = new ArrayList<>();
    int start = 0;
    for (int c = 1; c <= kind.length; c++) {
      if (c == kind.length || kind[c] != kind[start] || owner[c] != owner[start]) {
        spans.add(new Span(kind[start], start, c, owner[start]));
        start = c;
      }
    }
    return spans;
  }

  private void refuseMarkers(String s) {
    if (s != null
        && (s.indexOf(TransformersJinja.GEN_START) >= 0
            || s.indexOf(TransformersJinja.GEN_END) >= 0)) {
      throw new TemplateException(
          origin + ": a message holds the Unicode noncharacter U+FDD0 or U+FDD1; remove it");
    }
  }

  private static JsonNode readJson(Path p) {
    try {
      return MAPPER.readTree(p.toFile());
    } catch (IOException e) {
      throw new TemplateException(
          p + ": bad JSON: " + e.getMessage().lines().findFirst().orElse("") + "; fix the file");
    }
  }

  private static String readText(Path p) {
    try {
      return Files.readString(p, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new TemplateException(p + ": cannot read the chat template: " + e.getMessage());
    }
  }
}
