package moetune.app.run;

import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import moetune.engine.generate.Generator;
import moetune.templates.ChatFormat;
import moetune.templates.Message;
import moetune.templates.Role;

/**
 * Generation from a prompt as {@code moetune generate} and the desktop app do it: the prompt
 * becomes one user turn of the template (with the given or the template's default system message)
 * followed by an open assistant turn, or is used as it is without a template; the reply stops at
 * EOS (the model's and the tokenizer's) or the template's stop string, which is not part of the
 * returned text.
 */
public final class ChatGeneration {
  private ChatGeneration() {}

  /** The reply, how many tokens were generated and why generation stopped. */
  public record Reply(String text, int tokens, Generator.Stop stop) {}

  /**
   * Generates a reply to {@code prompt}. {@code template} may be null (the prompt is used as it
   * is); {@code system} null means the template's default. {@code onText} receives the reply as it
   * grows, piece by piece (it may be a no-op).
   */
  public static Reply generate(
      LoadedModel lm,
      ChatFormat template,
      String system,
      String prompt,
      Generator.Settings settings,
      Consumer<String> onText) {
    String text =
        template == null
            ? prompt
            : template
                .render(system, List.of(Message.user(prompt), new Message(Role.ASSISTANT, null)))
                .text();
    String stop = template == null ? null : template.stopStr();
    Set<Integer> eos = new LinkedHashSet<>(lm.model().config().eosTokenIds);
    eos.add(lm.tokenizer().eosId());
    StringBuilder shown = new StringBuilder();
    Generator.Result r =
        Generator.generate(
            lm.model(),
            lm.tokenizer().encode(text, template == null || !template.textHasSpecialTokens()).ids(),
            settings,
            eos,
            sofar -> {
              String now = lm.tokenizer().decode(sofar);
              if (now.startsWith(shown.toString()) && now.length() > shown.length()) {
                onText.accept(now.substring(shown.length()));
                shown.setLength(0);
                shown.append(now);
              }
              return stop != null && now.contains(stop);
            });
    String out = lm.tokenizer().decode(r.tokens());
    if (stop != null && out.contains(stop)) {
      out = out.substring(0, out.indexOf(stop));
    }
    return new Reply(out, r.tokens().length, r.stop());
  }
}
