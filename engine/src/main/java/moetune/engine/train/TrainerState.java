package moetune.engine.train;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import moetune.engine.hf.CheckpointException;

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
 * @param skippedSteps steps skipped so far for non-finite numbers (absent in older files: 0)
 */
public record TrainerState(
    long step,
    long totalSteps,
    long seed,
    int trainSequences,
    long sequencesPerStep,
    long dataCursor,
    EvalMetrics firstEval,
    EvalMetrics lastEval,
    long skippedSteps) {

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
    o.put("skipped_steps", skippedSteps);
    Files.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n");
  }

  /**
   * Reads a trainer-state.json.
   *
   * @throws CheckpointException (one line naming the file and field) when it is not JSON, not a
   *     moetune trainer state, or misses a field
   */
  public static TrainerState read(Path file) throws IOException {
    JsonNode o;
    try {
      o = JSON.readTree(file.toFile());
    } catch (JsonProcessingException e) {
      throw new CheckpointException(
          file,
          null,
          "not readable JSON ("
              + e.getOriginalMessage().lines().findFirst().orElse("")
              + "); the checkpoint is damaged: resume from an older step-N directory");
    }
    if (o == null || !o.isObject()) {
      throw new CheckpointException(
          file, null, "not a JSON object; the checkpoint is damaged: resume from an older one");
    }
    if (!"moetune-trainer-state-1".equals(o.path("format").asText())) {
      throw new CheckpointException(
          file,
          CheckpointException.field("format"),
          "is not moetune-trainer-state-1; not a moetune checkpoint");
    }
    return new TrainerState(
        requiredLong(file, o, "step"),
        requiredLong(file, o, "total_steps"),
        requiredLong(file, o, "seed"),
        Math.toIntExact(requiredLong(file, o, "train_sequences")),
        requiredLong(file, o, "sequences_per_step"),
        requiredLong(file, o, "data_cursor"),
        readEval(o.get("first_eval")),
        readEval(o.get("last_eval")),
        o.path("skipped_steps").asLong(0));
  }

  private static long requiredLong(Path file, JsonNode o, String key) {
    JsonNode n = o.get(key);
    if (n == null || !n.canConvertToLong() || n.asLong() < 0) {
      throw new CheckpointException(
          file,
          CheckpointException.field(key),
          (n == null ? "is missing" : "is " + n + ", not a whole number >= 0")
              + "; the checkpoint is damaged: resume from an older step-N directory");
    }
    return n.asLong();
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
