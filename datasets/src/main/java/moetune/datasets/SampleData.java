package moetune.datasets;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import moetune.files.AtomicFiles;
import moetune.templates.Message;

/**
 * A dataset moetune makes itself, so a demo run needs no download: short arithmetic chats whose
 * answers are exactly computable, so a model that learns them shows it by a falling loss. The same
 * seed and count always give the same records (java.util.Random's sequence is specified).
 */
public final class SampleData {
  private static final String[] ASK = {
    "What is %d %s %d?", "Compute %d %s %d.", "Please calculate %d %s %d.", "%d %s %d = ?"
  };

  private SampleData() {}

  /**
   * {@code count} conversations: one question and answer, and about one in four goes on with a
   * follow-up that uses the previous result.
   */
  public static List<ChatRecord> arithmetic(long seed, int count) {
    Random r = new Random(seed);
    List<ChatRecord> out = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      List<Message> m = new ArrayList<>();
      int a = r.nextInt(100);
      int b = r.nextInt(100);
      char op = "+-*".charAt(r.nextInt(3));
      int result = apply(a, op, b);
      m.add(Message.user(String.format(ASK[r.nextInt(ASK.length)], a, op, b)));
      m.add(Message.assistant(a + " " + op + " " + b + " = " + result + "."));
      if (r.nextInt(4) == 0) {
        int c = 1 + r.nextInt(9);
        char op2 = "+-*".charAt(r.nextInt(3));
        m.add(
            Message.user(
                "Now "
                    + (op2 == '+'
                        ? "add " + c + " to"
                        : op2 == '-' ? "subtract " + c + " from" : "multiply by " + c)
                    + " that."));
        m.add(
            Message.assistant(result + " " + op2 + " " + c + " = " + apply(result, op2, c) + "."));
      }
      out.add(new ChatRecord(null, m, "arithmetic:" + (i + 1)));
    }
    return out;
  }

  private static int apply(int a, char op, int b) {
    return switch (op) {
      case '+' -> a + b;
      case '-' -> a - b;
      default -> a * b;
    };
  }

  /** Writes records as ShareGPT JSONL ({@code conversations: [{from, value}]}), atomically. */
  public static void writeShareGpt(Path file, List<ChatRecord> records) throws IOException {
    StringBuilder b = new StringBuilder();
    for (ChatRecord rec : records) {
      ObjectNode o = JsonLines.MAPPER.createObjectNode();
      ArrayNode conv = o.putArray("conversations");
      if (rec.system() != null) {
        conv.addObject().put("from", "system").put("value", rec.system());
      }
      for (Message m : rec.messages()) {
        conv.addObject()
            .put("from", m.role() == moetune.templates.Role.USER ? "human" : "gpt")
            .put("value", m.content());
      }
      b.append(JsonLines.MAPPER.writeValueAsString(o)).append('\n');
    }
    AtomicFiles.writeFile(file, b.toString().getBytes(StandardCharsets.UTF_8));
  }
}
