package moetune.templates.hf;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.lib.tag.Tag;
import com.hubspot.jinjava.objects.date.StrftimeFormatter;
import com.hubspot.jinjava.tree.Node;
import com.hubspot.jinjava.tree.TagNode;
import java.time.ZonedDateTime;
import java.util.List;
import java.util.Map;
import jinjava.javax.el.CompositeELResolver;
import moetune.templates.TemplateException;

/**
 * The Jinja environment transformers renders chat templates in ({@code
 * _cached_compile_jinja_template} in transformers' chat_template_utils), rebuilt on jinjava:
 * trim_blocks and lstrip_blocks on, no trailing newline kept, loop controls ({@code break} / {@code
 * continue}), the globals {@code raise_exception} and {@code strftime_now}, its {@code tojson}
 * (json.dumps with ensure_ascii=False and the indent / separators / sort_keys options), the {@code
 * {% generation %}} tag that marks assistant text, and Python's str methods.
 *
 * <p>Generation blocks are rendered between two Unicode noncharacters that no tokenizer input holds
 * (inputs containing them are refused); {@link #render} takes them out and reports the ranges they
 * enclosed, as transformers' AssistantTracker does.
 */
final class TransformersJinja {
  static final char GEN_START = '\uFDD0';
  static final char GEN_END = '\uFDD1';

  private static final ThreadLocal<String> RAISED = new ThreadLocal<>();

  private final Jinjava jinjava;

  TransformersJinja() {
    CompositeELResolver resolver = new CompositeELResolver();
    resolver.add(new PythonMethods());
    resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_WRITE);
    JinjavaConfig config =
        JinjavaConfig.newBuilder()
            .withTrimBlocks(true)
            .withLstripBlocks(true)
            .withKeepTrailingNewline(true) // Jinja drops the source's last newline: see render
            .withFailOnUnknownTokens(false)
            .withElResolver(resolver)
            .withNestedInterpretationEnabled(false) // message text is data, never a template
            .withLegacyOverrides(
                // Jinja2's (Python's) behaviour wherever jinjava keeps an older one
                LegacyOverrides.newBuilder()
                    .withEvaluateMapKeys(true)
                    .withIterateOverMapKeys(true)
                    .withUsePyishObjectMapper(true)
                    .withUseNaturalOperatorPrecedence(true)
                    .withParseWhitespaceControlStrictly(true)
                    .withAllowAdjacentTextNodes(true)
                    .withUseTrimmingForNotesAndExpressions(true)
                    .withKeepNullableLoopValues(true)
                    .withHandleBackslashInQuotesOnly(true)
                    .build())
            .build();
    jinjava = new Jinjava(config);
    jinjava.registerFunction(
        new ELFunctionDefinition(
            "", "raise_exception", TransformersJinja.class, "raiseException", Object.class));
    jinjava.registerFunction(
        new ELFunctionDefinition(
            "", "strftime_now", TransformersJinja.class, "strftimeNow", String.class));
    jinjava.registerFilter(new ToJson());
    jinjava.registerTag(new Generation());
  }

  /** The text and the generation ranges [start, end) in UTF-16 chars of one rendering. */
  record Result(String text, List<int[]> generation) {}

  /**
   * Renders {@code source} with {@code context}.
   *
   * @throws TemplateRaised when the template calls {@code raise_exception}
   * @throws TemplateException when the template cannot be parsed or evaluated
   */
  Result render(String source, Map<String, Object> context, String origin) {
    RAISED.remove();
    RenderResult r;
    try {
      r = jinjava.renderForResult(prepare(source), context);
    } finally {
      String raised = RAISED.get();
      RAISED.remove();
      if (raised != null) {
        throw new TemplateRaised(raised);
      }
    }
    for (TemplateError e : r.getErrors()) {
      if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
        throw new TemplateException(
            origin
                + ": chat_template line "
                + e.getLineno()
                + ": "
                + e.getMessage()
                + " (the template cannot be rendered; fix it or pick a FastChat template)");
      }
    }
    return strip(r.getOutput());
  }

  /**
   * The source as Jinja2 parses it: without one trailing newline (keep_trailing_newline=False drops
   * the template's, never the output's) and with unary {@code not} bracketed ({@link
   * NotPrecedence}).
   */
  static String prepare(String source) {
    String s = source;
    if (s.endsWith("\r\n")) {
      s = s.substring(0, s.length() - 2);
    } else if (s.endsWith("\n") || s.endsWith("\r")) {
      s = s.substring(0, s.length() - 1);
    }
    return NotPrecedence.rewrite(s);
  }

  private static Result strip(String marked) {
    StringBuilder b = new StringBuilder(marked.length());
    List<int[]> ranges = new java.util.ArrayList<>();
    int open = -1;
    for (int i = 0; i < marked.length(); i++) {
      char c = marked.charAt(i);
      if (c == GEN_START) {
        open = b.length();
      } else if (c == GEN_END) {
        if (open >= 0 && b.length() > open) {
          ranges.add(new int[] {open, b.length()});
        }
        open = -1;
      } else {
        b.append(c);
      }
    }
    return new Result(b.toString(), ranges);
  }

  /** The template's {@code raise_exception(message)}. */
  public static String raiseException(Object message) {
    String m = String.valueOf(message);
    if (RAISED.get() == null) {
      RAISED.set(m);
    }
    throw new TemplateRaised(m);
  }

  /** The template's {@code strftime_now(format)}: local time, Python strftime codes. */
  public static String strftimeNow(String format) {
    return StrftimeFormatter.format(ZonedDateTime.now(), format);
  }

  /** A template's own {@code raise_exception}: the conversation does not fit the template. */
  static final class TemplateRaised extends RuntimeException {
    TemplateRaised(String message) {
      super(message);
    }
  }

  /** transformers' tojson: json.dumps(x, ensure_ascii=False, indent, separators, sort_keys). */
  static final class ToJson implements Filter {
    @Override
    public String getName() {
      return "tojson";
    }

    @Override
    public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
      return filter(var, interpreter, (Object[]) args, Map.of());
    }

    @Override
    public Object filter(
        Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
      Object indent = kwargs.getOrDefault("indent", args.length > 1 ? args[1] : null);
      if (indent instanceof String s && s.matches("-?\\d+")) {
        indent = Integer.valueOf(s);
      }
      Object seps = kwargs.get("separators");
      Object sort = kwargs.getOrDefault("sort_keys", args.length > 3 ? args[3] : false);
      boolean sortKeys =
          sort instanceof Boolean b ? b : "true".equalsIgnoreCase(String.valueOf(sort));
      return PyJson.dumps(var, indent, seps instanceof List<?> l ? l : null, sortKeys);
    }
  }

  /** {@code {% generation %}...{% endgeneration %}}: the body between the two markers. */
  static final class Generation implements Tag {
    @Override
    public String getName() {
      return "generation";
    }

    @Override
    public String getEndTagName() {
      return "endgeneration";
    }

    @Override
    public String interpret(TagNode tagNode, JinjavaInterpreter interpreter) {
      StringBuilder b = new StringBuilder().append(GEN_START);
      for (Node child : tagNode.getChildren()) {
        b.append(child.render(interpreter).getValue());
      }
      return b.append(GEN_END).toString();
    }
  }
}
