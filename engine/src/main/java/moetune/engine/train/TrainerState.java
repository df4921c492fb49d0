package moetune.engine.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What besides the model and optimizer a checkpoint must hold to continue a run exactly: the step
 * and everything that fixes the data order from there on. Written as {@code trainer-state.json},
 * the last file of every checkpoint (its presence marks it complete).
 *
 * <p>The data position is {@code step * sequencesPerStep} elements into the {@link DataOrder}
 * stream of (seed, trainSequences); it is stored too so a mismatch shows.
 *
 * @param step optimizer steps taken
 * @param totalSteps the run's planned total
 * @param seed the data-order seed
 * @param trainSequences training sequences the run was started with
 * @param sequencesPerStep micro-batch * accumulation
 * @param dataCursor stream elements consumed
 * @param firstEval the evaluation before training, or null
 * @param lastEval the most recent evaluation, or null
 */
public record TrainerState(
    long step,
    long totalSteps,
    long seed,
    int trainSequences,
    long sequencesPerStep,
    long dataCursor,
    EvalMetrics firstEval,
    EvalMetrics lastEval) {

  private static final ObjectMapper JSON = new ObjectMapper();

  public void write(Path file) throws IOException {
    ObjectNode o = JSON.createObjectNode();
    o.put("format", "moetune-trainer-state-1");
    o.put("step", step);
    o.put("total_steps", totalSteps);
    o.put("seed", seed);
    o.put("train_sequences", trainSequences);
    o.put("sequences_per_step", sequencesPerStep);
    o.put("data_cursor", dataCursor);
    putEval(o, "first_eval", firstEval);
    putEval(o, "last_eval", lastEval);
    Files.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n");
  }

  public static TrainerState read(Path file) throws IOException {
    JsonNode o;
    try {
      o = JSON.readTree(file.toFile());
    } catch (IOException e) {
      throw new IOException(
          file + ": not readable JSON (" + e.getMessage().lines().findFirst().orElse("") + ")", e);
    }
    if (!"moetune-trainer-state-1".equals(o.path("format").asText())) {
      throw new IOException(
          file + ": field 'format' is not moetune-trainer-state-1; not a moetune checkpoint");
    }
    return new TrainerState(
        o.path("step").asLong(),
        o.path("total_steps").asLong(),
        o.path("seed").asLong(),
        o.path("train_sequences").asInt(),
        o.path("sequences_per_step").asLong(),
        o.path("data_cursor").asLong(),
        readEval(o.get("first_eval")),
        readEval(o.get("last_eval")));
  }

  private static void putEval(ObjectNode o, String key, EvalMetrics e) {
    if (e == null) {
      o.putNull(key);
      return;
    }
    ObjectNode n = o.putObject(key);
    n.put("step", e.step());
    n.put("loss", e.loss());
    n.put("tokens", e.tokens());
  }

  private static EvalMetrics readEval(JsonNode n) {
    if (n == null || n.isNull()) {
      return null;
    }
    double loss = n.path("loss").asDouble();
    return new EvalMetrics(
        n.path("step").asLong(), loss, Math.exp(loss), n.path("tokens").asLong());
  }
}
