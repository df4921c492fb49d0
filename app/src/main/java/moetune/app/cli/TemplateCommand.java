package moetune.app.cli;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import moetune.datasets.AtomicFiles;
import moetune.datasets.ChatRecord;
import moetune.datasets.ChatRequests;
import moetune.datasets.DatasetFormat;
import moetune.datasets.DatasetLoader;
import moetune.templates.ChatFormat;
import moetune.templates.ConversationTemplate;
import moetune.templates.TemplateException;
import moetune.templates.TemplateRegistry;
import moetune.templates.hf.HfChatTemplate;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code moetune template list|render}: the FastChat conversation templates. */
@Command(
    name = "template",
    description = "List conversation templates or render conversations with one.",
    mixinStandardHelpOptions = true,
    subcommands = {
      TemplateCommand.ListCommand.class,
      TemplateCommand.RenderCommand.class,
      TemplateCommand.JinjaCommand.class
    })
public final class TemplateCommand implements Runnable {
  @Override
  public void run() {
    new picocli.CommandLine(this).usage(System.out);
  }

  static TemplateRegistry registry(Path templateFile) {
    TemplateRegistry reg = TemplateRegistry.builtin();
    return templateFile == null ? reg : reg.with(templateFile);
  }

  /** {@code template list}. */
  @Command(
      name = "list",
      description = "List the built-in (and user) templates.",
      mixinStandardHelpOptions = true)
  static final class ListCommand implements Callable<Integer> {
    @Option(names = "--template-file", description = "JSON file with user templates.")
    Path templateFile;

    @Override
    public Integer call() throws Exception {
      return UserErrors.run(
          "template list",
          () -> {
            System.out.printf(
                "%-32s %-22s %s%n",
                HfChatTemplate.NAME,
                "JINJA",
                "the model's own chat_template (--model DIR), or a .jinja file");
            for (ConversationTemplate t : registry(templateFile).all()) {
              String sys = t.systemMessage().replace("\n", "\\n");
              if (sys.length() > 50) {
                sys = sys.substring(0, 47) + "...";
              }
              System.out.printf(
                  "%-32s %-22s %s%n",
                  t.name(), t.sepStyle(), sys.isEmpty() ? "(no default system message)" : sys);
            }
            return 0;
          });
    }
  }

  /** {@code template render}: one {"prompt": ...} line per input conversation. */
  @Command(
      name = "render",
      mixinStandardHelpOptions = true,
      description = {
        "Render conversations exactly as FastChat's get_prompt() does.",
        "Input: one JSON per line, {\"system\": str|null, \"messages\": [{\"role\":"
            + " \"user\"|\"assistant\", \"content\": str|null}]} (null content = open turn,"
            + " null system = the template's default), or ShareGPT records, or a JSON array.",
        "Output: one {\"prompt\": str} per line, same order, written atomically.",
        "--template hf renders the chat_template of --model DIR (tokenizer_config.json or"
            + " chat_template.jinja) as transformers' apply_chat_template; its input lines may"
            + " also carry tool_calls, tool messages and \"tools\"."
      })
  static final class RenderCommand implements Callable<Integer> {
    @Option(names = "--template", required = true, description = "Template name.")
    String template;

    @Option(names = "--input", required = true, description = "Conversations (JSONL or JSON).")
    Path input;

    @Option(names = "--output", required = true, description = "Prompts (JSONL).")
    Path output;

    @Option(names = "--template-file", description = "JSON file with user templates.")
    Path templateFile;

    @Option(
        names = "--model",
        paramLabel = "DIR",
        description = "Model directory whose chat template 'hf' renders.")
    Path model;

    @Override
    public Integer call() throws Exception {
      return UserErrors.run(
          "template render",
          () -> {
            ChatFormat f = registry(templateFile).format(template, model);
            if (f instanceof HfChatTemplate hf) {
              return renderHf(hf);
            }
            ConversationTemplate t = (ConversationTemplate) f;
            var records = DatasetLoader.loadForRendering(input, DatasetFormat.AUTO).records();
            var mapper = new com.fasterxml.jackson.databind.ObjectMapper();
            StringBuilder out = new StringBuilder();
            for (ChatRecord r : records) {
              var line =
                  mapper.createObjectNode().put("prompt", t.prompt(r.system(), r.messages()));
              out.append(mapper.writeValueAsString(line)).append('\n');
            }
            AtomicFiles.write(output, out.toString().getBytes(StandardCharsets.UTF_8));
            System.err.println(
                "rendered " + records.size() + " conversations with " + t.name() + " to " + output);
            return 0;
          });
    }

    /** apply_chat_template for every line; the first refusal is one line and nothing written. */
    private int renderHf(HfChatTemplate hf) throws Exception {
      var requests = ChatRequests.read(input);
      var mapper = new com.fasterxml.jackson.databind.ObjectMapper();
      StringBuilder out = new StringBuilder();
      for (ChatRequests.Request r : requests) {
        String text;
        try {
          text = hf.apply(r.messages(), r.tools(), r.addGenerationPrompt());
        } catch (TemplateException e) {
          throw new TemplateException(input + " (" + r.origin() + "): " + e.getMessage(), e);
        }
        out.append(mapper.writeValueAsString(mapper.createObjectNode().put("prompt", text)));
        out.append('\n');
      }
      AtomicFiles.write(output, out.toString().getBytes(StandardCharsets.UTF_8));
      System.err.println(
          "rendered "
              + requests.size()
              + " conversations with the chat template of "
              + hf.origin()
              + " to "
              + output);
      return 0;
    }
  }

  /** {@code template jinja}: the chat_template an export writes for a FastChat template. */
  @Command(
      name = "jinja",
      mixinStandardHelpOptions = true,
      description = {
        "Print a Jinja chat_template (for tokenizer_config.json) that renders exactly as the",
        "FastChat template does; exports of runs trained with it carry the same text."
      })
  static final class JinjaCommand implements Callable<Integer> {
    @Option(names = "--template", required = true, description = "FastChat template name.")
    String template;

    @Option(names = "--template-file", description = "JSON file with user templates.")
    Path templateFile;

    @Option(
        names = "--bos",
        description = "Write bos_token first (as the export does when the tokenizer adds BOS).")
    boolean bos;

    @Override
    public Integer call() throws Exception {
      return UserErrors.run(
          "template jinja",
          () -> {
            System.out.print(
                moetune.templates.FastChatJinja.of(registry(templateFile).get(template), bos));
            return 0;
          });
    }
  }
}
